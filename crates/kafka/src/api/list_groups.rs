//! ListGroups: every group of this coordinator, filtered by state from v4.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::NONE;
use crate::server::Context;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

pub fn handle(ctx: &Context, request: ListGroupsRequest, meta: RequestMeta) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    response.error_code = NONE;
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    for g in ctx.broker.groups().list() {
        if !states.is_empty() && !states.contains(&g.state.name().to_ascii_lowercase()) {
            continue;
        }
        let mut listed = ListedGroup::default();
        listed.group_id = GroupId(str_bytes(&g.group_id));
        listed.protocol_type = str_bytes(&g.protocol_type);
        if meta.version >= 4 {
            listed.group_state = str_bytes(g.state.name());
        }
        response.groups.push(listed);
    }
    response
}
