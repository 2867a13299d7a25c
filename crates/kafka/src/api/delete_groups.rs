//! DeleteGroups: removes empty groups and their committed offsets.

use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

pub fn handle(ctx: &Context, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for id in request.groups_names {
        let mut result = DeletableGroupResult::default();
        result.error_code = ctx.broker.groups().delete_group(&id.0).err().as_ref().map_or(NONE, group_code);
        result.group_id = id;
        response.results.push(result);
    }
    response
}
