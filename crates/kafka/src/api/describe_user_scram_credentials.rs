//! DescribeUserScramCredentials (KIP-554): per user the mechanisms and iteration counts it
//! has, never key material. A null user list means every user; a named user without
//! credentials gets RESOURCE_NOT_FOUND, a name asked twice DUPLICATE_RESOURCE, as in Kafka.

use super::str_bytes;
use crate::error_codes::{DUPLICATE_RESOURCE, NONE, RESOURCE_NOT_FOUND};
use crate::sasl::credentials::Credentials;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use std::collections::{BTreeMap, HashMap};

pub fn handle(
    credentials: &Credentials,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let users: BTreeMap<String, Vec<(crate::sasl::scram::ScramMechanism, u32)>> =
        credentials.list().into_iter().collect();
    let mut response = DescribeUserScramCredentialsResponse::default();
    response.error_code = NONE;
    response.results = match request.users {
        None => users.iter().map(|(user, infos)| found(user, infos)).collect(),
        Some(asked) => {
            let mut times: HashMap<String, usize> = HashMap::new();
            for user in &asked {
                *times.entry(user.name.to_string()).or_default() += 1;
            }
            let mut seen = std::collections::HashSet::new();
            asked
                .iter()
                .map(|u| u.name.to_string())
                .filter(|name| seen.insert(name.clone()))
                .map(|name| match (times.get(&name).copied().unwrap_or(0) > 1, users.get(&name)) {
                    (true, _) => failed(
                        &name,
                        DUPLICATE_RESOURCE,
                        format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                        ),
                    ),
                    (false, Some(infos)) => found(&name, infos),
                    (false, None) => failed(
                        &name,
                        RESOURCE_NOT_FOUND,
                        format!("Attempt to describe a user credential that does not exist: {name}"),
                    ),
                })
                .collect()
        }
    };
    response
}

fn found(user: &str, infos: &[(crate::sasl::scram::ScramMechanism, u32)]) -> DescribeUserScramCredentialsResult {
    let mut result = DescribeUserScramCredentialsResult::default();
    result.user = str_bytes(user);
    result.error_code = NONE;
    result.credential_infos = infos
        .iter()
        .map(|(mechanism, iterations)| {
            let mut info = CredentialInfo::default();
            info.mechanism = mechanism.kafka_type();
            info.iterations = i32::try_from(*iterations).unwrap_or(i32::MAX);
            info
        })
        .collect();
    result
}

fn failed(user: &str, code: i16, message: String) -> DescribeUserScramCredentialsResult {
    let mut result = DescribeUserScramCredentialsResult::default();
    result.user = str_bytes(user);
    result.error_code = code;
    result.error_message = Some(str_bytes(&message));
    result
}
