//! CreateAcls (v0–3): needs ALTER on the cluster; each creation is checked as Kafka checks
//! it; the valid ones are written together. Without an authorizer: SECURITY_DISABLED.

use super::str_bytes;
use crate::acl::{pattern, AclBinding, Acls};
use crate::error_codes::{INVALID_REQUEST, NONE, UNKNOWN_SERVER_ERROR};
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

pub fn handle(acls: &Acls, request: CreateAclsRequest, version: i16) -> CreateAclsResponse {
    let mut valid = Vec::new();
    let mut results: Vec<(i16, Option<String>)> = Vec::new();
    for creation in request.creations {
        let binding = AclBinding {
            resource_type: creation.resource_type,
            resource_name: creation.resource_name.to_string(),
            // v0 has no pattern type: every binding is literal.
            pattern_type: if version >= 1 { creation.resource_pattern_type } else { pattern::LITERAL },
            principal: creation.principal.to_string(),
            host: creation.host.to_string(),
            operation: creation.operation,
            permission: creation.permission_type,
        };
        match binding.invalid() {
            Some(reason) => results.push((INVALID_REQUEST, Some(reason.to_string()))),
            None => {
                valid.push(binding);
                results.push((NONE, None));
            }
        }
    }
    let written = acls.create(valid);
    let mut response = CreateAclsResponse::default();
    response.results = results
        .into_iter()
        .map(|(code, message)| {
            let (code, message) = match (&written, code) {
                (Err(e), NONE) => (UNKNOWN_SERVER_ERROR, Some(e.clone())),
                _ => (code, message),
            };
            let mut result = AclCreationResult::default();
            result.error_code = code;
            result.error_message = message.as_deref().map(str_bytes);
            result
        })
        .collect();
    response
}
