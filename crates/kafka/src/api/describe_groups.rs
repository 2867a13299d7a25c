//! DescribeGroups: state, chosen protocol, and every member's metadata and assignment.
//! An unknown group is described as Dead with no error, as Kafka does. Authorized
//! operations (v3+, KIP-430), when asked, are all of a group's, as Kafka without an
//! authorizer (with one, `authorize_admin` narrows them to the principal's).

use super::authorized_operations::{self as operations, if_asked};
use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

pub fn handle(ctx: &Context, request: DescribeGroupsRequest, meta: RequestMeta) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for id in request.groups {
        let mut out = DescribedGroup::default();
        match ctx.broker.groups().describe(&id.0) {
            Ok(g) => {
                out.error_code = NONE;
                out.group_state = str_bytes(g.state.name());
                out.protocol_type = str_bytes(&g.protocol_type);
                out.protocol_data = str_bytes(&g.protocol);
                out.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(&m.member_id);
                        if meta.version >= 4 {
                            member.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                        }
                        member.client_id = str_bytes(&m.client_id);
                        member.client_host = str_bytes(&m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            Err(e) => out.error_code = group_code(&e),
        }
        if out.error_code == NONE {
            out.authorized_operations = if_asked(request.include_authorized_operations, operations::GROUP);
        }
        out.group_id = id;
        response.groups.push(out);
    }
    response
}
