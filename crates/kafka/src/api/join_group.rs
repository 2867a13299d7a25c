//! JoinGroup: hands the request to the group coordinator; a join that must wait for
//! the rebalance to complete is answered from a task woken by the coordinator.
//! `MEMBER_ID_REQUIRED` is only for v4+: older joins get their member id at once.

use super::str_bytes;
use crate::dispatch::{later, DispatchError, Reply, RequestMeta};
use crate::error_codes::group_code_of;
use crate::server::Context;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use sluice_broker::group::{GroupError, JoinReply, JoinRequest, JoinResult};
use std::sync::Arc;
use std::time::Duration;

pub fn handle(
    ctx: &Arc<Context>,
    request: JoinGroupRequest,
    meta: RequestMeta,
    client_id: String,
) -> Result<Reply, DispatchError> {
    let session_ms = request.session_timeout_ms;
    // v0 has no rebalance timeout: Kafka uses the session timeout for it.
    let rebalance_ms =
        if meta.version >= 1 && request.rebalance_timeout_ms > 0 { request.rebalance_timeout_ms } else { session_ms };
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id,
        client_host: String::new(),
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        session_timeout: millis(session_ms),
        rebalance_timeout: millis(rebalance_ms),
        require_known_member_id: meta.version >= 4,
    };
    match ctx.broker.groups().join(join) {
        JoinReply::Now(result) => meta.respond(&response(result, meta.version)).map(Reply::Now),
        JoinReply::Wait(rx) => Ok(later(async move {
            let member_id = String::new();
            let result = rx.await.unwrap_or_else(|_| JoinResult::failed(GroupError::RebalanceInProgress, &member_id));
            meta.respond(&response(result, meta.version)).map(Some)
        })),
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = group_code_of(result.error);
    r.generation_id = result.generation;
    if version >= 7 {
        r.protocol_type = result.protocol_type.as_deref().map(str_bytes);
        r.protocol_name = result.protocol_name.as_deref().map(str_bytes);
    } else {
        r.protocol_name = Some(str_bytes(result.protocol_name.as_deref().unwrap_or("")));
    }
    r.leader = str_bytes(&result.leader);
    r.member_id = str_bytes(&result.member_id);
    if version >= 9 {
        r.skip_assignment = result.skip_assignment;
    }
    r.members = result
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = str_bytes(&m.member_id);
            if version >= 5 {
                member.group_instance_id = m.instance_id.as_deref().map(str_bytes);
            }
            member.metadata = m.metadata;
            member
        })
        .collect();
    r
}
