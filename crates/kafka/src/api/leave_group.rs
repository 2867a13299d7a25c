//! LeaveGroup: one member (v0–2) or a batch of members by id or instance id (v3+).

use crate::dispatch::RequestMeta;
use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub fn handle(ctx: &Context, request: LeaveGroupRequest, meta: RequestMeta) -> LeaveGroupResponse {
    let mut r = LeaveGroupResponse::default();
    let members: Vec<(String, Option<String>)> = if meta.version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    match ctx.broker.groups().leave(&request.group_id.0, &members) {
        Err(e) => r.error_code = group_code(&e),
        Ok(results) if meta.version < 3 => {
            r.error_code = results.first().and_then(|x| x.err()).as_ref().map_or(NONE, group_code);
        }
        Ok(results) => {
            r.members = request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    let mut out = MemberResponse::default();
                    out.member_id = m.member_id;
                    out.group_instance_id = m.group_instance_id;
                    out.error_code = result.err().as_ref().map_or(NONE, group_code);
                    out
                })
                .collect();
        }
    }
    r
}
