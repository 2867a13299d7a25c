//! DescribeAcls (v0–3): the bindings a filter matches, grouped by resource pattern; needs
//! DESCRIBE on the cluster.

use super::str_bytes;
use crate::acl::{pattern, AclFilter, Acls};
use crate::error_codes::NONE;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

pub fn filter(request: &DescribeAclsRequest, version: i16) -> AclFilter {
    AclFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.as_ref().map(|n| n.to_string()),
        pattern_type: if version >= 1 { request.pattern_type_filter } else { pattern::LITERAL },
        principal: request.principal_filter.as_ref().map(|p| p.to_string()),
        host: request.host_filter.as_ref().map(|h| h.to_string()),
        operation: request.operation,
        permission: request.permission_type,
    }
}

pub fn handle(acls: &Acls, request: DescribeAclsRequest, version: i16) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    response.error_code = NONE;
    for binding in acls.describe(&filter(&request, version)) {
        let key = (binding.resource_type, binding.resource_name.clone(), binding.pattern_type);
        let at = response
            .resources
            .iter()
            .position(|r| (r.resource_type, r.resource_name.to_string(), r.pattern_type) == key);
        let resource = match at {
            Some(i) => &mut response.resources[i],
            None => {
                let mut resource = DescribeAclsResource::default();
                resource.resource_type = binding.resource_type;
                resource.resource_name = str_bytes(&binding.resource_name);
                resource.pattern_type = binding.pattern_type;
                response.resources.push(resource);
                let last = response.resources.len() - 1;
                &mut response.resources[last]
            }
        };
        let mut acl = AclDescription::default();
        acl.principal = str_bytes(&binding.principal);
        acl.host = str_bytes(&binding.host);
        acl.operation = binding.operation;
        acl.permission_type = binding.permission;
        resource.acls.push(acl);
    }
    response
}
