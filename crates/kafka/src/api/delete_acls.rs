//! DeleteAcls (v0–3): removes what each filter matches and names it; needs ALTER on the
//! cluster.

use super::str_bytes;
use crate::acl::{pattern, AclFilter, Acls};
use crate::error_codes::{NONE, UNKNOWN_SERVER_ERROR};
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

pub fn handle(acls: &Acls, request: DeleteAclsRequest, version: i16) -> DeleteAclsResponse {
    let filters: Vec<AclFilter> = request
        .filters
        .iter()
        .map(|f| AclFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref().map(|n| n.to_string()),
            pattern_type: if version >= 1 { f.pattern_type_filter } else { pattern::LITERAL },
            principal: f.principal_filter.as_ref().map(|p| p.to_string()),
            host: f.host_filter.as_ref().map(|h| h.to_string()),
            operation: f.operation,
            permission: f.permission_type,
        })
        .collect();
    let mut response = DeleteAclsResponse::default();
    response.filter_results = match acls.delete(&filters) {
        Ok(removed) => removed
            .into_iter()
            .map(|bindings| {
                let mut result = DeleteAclsFilterResult::default();
                result.error_code = NONE;
                result.matching_acls = bindings
                    .into_iter()
                    .map(|b| {
                        let mut acl = DeleteAclsMatchingAcl::default();
                        acl.error_code = NONE;
                        acl.resource_type = b.resource_type;
                        acl.resource_name = str_bytes(&b.resource_name);
                        acl.pattern_type = b.pattern_type;
                        acl.principal = str_bytes(&b.principal);
                        acl.host = str_bytes(&b.host);
                        acl.operation = b.operation;
                        acl.permission_type = b.permission;
                        acl
                    })
                    .collect();
                result
            })
            .collect(),
        Err(e) => filters
            .iter()
            .map(|_| {
                let mut result = DeleteAclsFilterResult::default();
                result.error_code = UNKNOWN_SERVER_ERROR;
                result.error_message = Some(str_bytes(&e));
                result
            })
            .collect(),
    };
    response
}
