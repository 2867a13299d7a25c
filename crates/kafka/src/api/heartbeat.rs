//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub fn handle(ctx: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut r = HeartbeatResponse::default();
    let result = ctx.broker.groups().heartbeat(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    r.error_code = result.err().as_ref().map_or(NONE, group_code);
    r
}
