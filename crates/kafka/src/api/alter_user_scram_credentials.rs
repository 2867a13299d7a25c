//! AlterUserScramCredentials (KIP-554): upserts carry the salt, the iteration count and the
//! SaltedPassword the client computed (the password never travels); deletions name a user
//! and mechanism. Checked as Kafka checks them (a known mechanism, 4096 to 16384 iterations,
//! a non-empty name, each user once per request); every user's changes that pass are written
//! to the credentials file together, atomically.

use super::str_bytes;
use crate::error_codes::{
    DUPLICATE_RESOURCE, NONE, RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL, UNKNOWN_SERVER_ERROR,
    UNSUPPORTED_SASL_MECHANISM,
};
use crate::sasl::credentials::{check_user_name, Credentials};
use crate::sasl::scram::{ScramCredential, ScramMechanism, ITERATIONS_MAX, ITERATIONS_MIN};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use std::collections::{BTreeMap, HashMap};

type Upsert = (String, ScramMechanism, ScramCredential);
type Deletion = (String, Option<ScramMechanism>);

pub fn handle(
    credentials: &Credentials,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // A user named twice (in deletions and upserts together, or twice for one mechanism) is
    // refused for all of its changes, as Kafka does.
    let mut seen: HashMap<(String, i8), usize> = HashMap::new();
    for (name, mechanism) in request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(request.upsertions.iter().map(|u| (u.name.to_string(), u.mechanism)))
    {
        *seen.entry((name, mechanism)).or_default() += 1;
    }
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    let mut changes: BTreeMap<String, (Vec<Upsert>, Vec<Deletion>)> = BTreeMap::new();
    let existing = credentials.list();
    for deletion in &request.deletions {
        let name = deletion.name.to_string();
        let check = check_common(&name, deletion.mechanism, &seen).and_then(|mechanism| {
            let has = existing.iter().any(|(user, infos)| *user == name && infos.iter().any(|(m, _)| *m == mechanism));
            match has {
                true => Ok(mechanism),
                false => Err((RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist".into())),
            }
        });
        match check {
            Ok(mechanism) => changes.entry(name).or_default().1.push((deletion.name.to_string(), Some(mechanism))),
            Err(e) => {
                errors.entry(name).or_insert(e);
            }
        }
    }
    for upsert in &request.upsertions {
        let name = upsert.name.to_string();
        let check = check_common(&name, upsert.mechanism, &seen).and_then(|mechanism| {
            let iterations = u32::try_from(upsert.iterations).unwrap_or(0);
            if iterations < ITERATIONS_MIN {
                return Err((UNACCEPTABLE_CREDENTIAL, "Too few iterations".into()));
            }
            if iterations > ITERATIONS_MAX {
                return Err((UNACCEPTABLE_CREDENTIAL, "Too many iterations".into()));
            }
            if upsert.salt.is_empty() || upsert.salted_password.len() != mechanism.hash_len() {
                return Err((UNACCEPTABLE_CREDENTIAL, "Salt and salted password must be set".into()));
            }
            Ok(ScramCredential::from_salted_password(mechanism, &upsert.salted_password, &upsert.salt, iterations))
        });
        match check {
            Ok(credential) => {
                let mechanism = ScramMechanism::from_kafka_type(upsert.mechanism);
                if let Some(mechanism) = mechanism {
                    changes.entry(name.clone()).or_default().0.push((name, mechanism, credential));
                }
            }
            Err(e) => {
                errors.entry(name).or_insert(e);
            }
        }
    }
    let mut upserts = Vec::new();
    let mut deletions = Vec::new();
    for (user, (u, d)) in &changes {
        if !errors.contains_key(user) {
            upserts.extend(u.iter().cloned());
            deletions.extend(d.iter().cloned());
        }
    }
    let written = credentials.apply(upserts, deletions).map_err(|e| e.to_string());
    let mut response = AlterUserScramCredentialsResponse::default();
    response.results = changes
        .keys()
        .chain(errors.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|user| {
            let (code, message) = match (errors.get(user), &written) {
                (Some((code, message)), _) => (*code, Some(message.clone())),
                (None, Ok(())) => (NONE, None),
                (None, Err(e)) => (UNKNOWN_SERVER_ERROR, Some(e.clone())),
            };
            let mut result = AlterUserScramCredentialsResult::default();
            result.user = str_bytes(user);
            result.error_code = code;
            result.error_message = message.as_deref().map(str_bytes);
            result
        })
        .collect();
    for result in &response.results {
        tracing::info!(user = %result.user.as_str(), code = result.error_code, "SCRAM credentials altered");
    }
    response
}

fn check_common(
    name: &str,
    mechanism: i8,
    seen: &HashMap<(String, i8), usize>,
) -> Result<ScramMechanism, (i16, String)> {
    if check_user_name(name).is_err() {
        return Err((UNACCEPTABLE_CREDENTIAL, "Username must not be empty".into()));
    }
    let mechanism = ScramMechanism::from_kafka_type(mechanism)
        .ok_or((UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism".into()))?;
    if seen.get(&(name.to_string(), mechanism.kafka_type())).copied().unwrap_or(0) > 1 {
        return Err((DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request".into()));
    }
    Ok(mechanism)
}

/// Every named user refused with CLUSTER_AUTHORIZATION_FAILED (no ALTER on the cluster).
pub fn refused(request: &AlterUserScramCredentialsRequest) -> AlterUserScramCredentialsResponse {
    let users: std::collections::BTreeSet<String> = request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()))
        .collect();
    let mut response = AlterUserScramCredentialsResponse::default();
    response.results = users
        .into_iter()
        .map(|user| {
            let mut result = AlterUserScramCredentialsResult::default();
            result.user = str_bytes(&user);
            result.error_code = crate::error_codes::CLUSTER_AUTHORIZATION_FAILED;
            result.error_message = Some(str_bytes("Cluster authorization failed."));
            result
        })
        .collect();
    response
}
