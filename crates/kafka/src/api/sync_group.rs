//! SyncGroup: the leader hands in the assignment, every member gets its own; members
//! that sync before the leader wait in a task woken by the coordinator.

use super::str_bytes;
use crate::dispatch::{later, DispatchError, Reply, RequestMeta};
use crate::error_codes::group_code_of;
use crate::server::Context;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use sluice_broker::group::{GroupError, SyncReply, SyncRequest, SyncResult};
use std::sync::Arc;

pub fn handle(ctx: &Arc<Context>, request: SyncGroupRequest, meta: RequestMeta) -> Result<Reply, DispatchError> {
    let sync = SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        protocol_type: request.protocol_type.map(|s| s.to_string()),
        protocol_name: request.protocol_name.map(|s| s.to_string()),
        assignments: request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    match ctx.broker.groups().sync(sync) {
        SyncReply::Now(result) => meta.respond(&response(result, meta.version)).map(Reply::Now),
        SyncReply::Wait(rx) => Ok(later(async move {
            let result = rx.await.unwrap_or_else(|_| SyncResult::failed(GroupError::RebalanceInProgress));
            meta.respond(&response(result, meta.version)).map(Some)
        })),
    }
}

fn response(result: SyncResult, version: i16) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default();
    r.error_code = group_code_of(result.error);
    if version >= 5 {
        r.protocol_type = result.protocol_type.as_deref().map(str_bytes);
        r.protocol_name = result.protocol_name.as_deref().map(str_bytes);
    }
    r.assignment = result.assignment;
    r
}
