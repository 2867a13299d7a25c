//! FindCoordinator: the node that coordinates a group (this one on a single node; in a
//! cluster the leader of the group's `__consumer_offsets` partition). v4+ batches keys.
//! Transactions are not supported, so transaction coordinators are not available.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{group_code, COORDINATOR_NOT_AVAILABLE, NONE};
use crate::listener::ListenerInfo;
use crate::server::Context;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use sluice_broker::group::coordinator_of;

/// `key_type` of a consumer group (1 is a transactional id).
const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(
    ctx: &Context,
    listener: &ListenerInfo,
    request: FindCoordinatorRequest,
    meta: RequestMeta,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    let served = request.key_type == KEY_TYPE_GROUP;
    if meta.version >= 4 {
        response.coordinators =
            request.coordinator_keys.into_iter().map(|key| coordinator(ctx, listener, key, served)).collect();
        return response;
    }
    let c = coordinator(ctx, listener, request.key, served);
    response.error_code = c.error_code;
    response.node_id = c.node_id;
    response.host = c.host;
    response.port = c.port;
    if meta.version >= 1 {
        response.error_message = c.error_message;
    }
    response
}

fn coordinator(
    ctx: &Context,
    listener: &ListenerInfo,
    key: kafka_protocol::protocol::StrBytes,
    served: bool,
) -> Coordinator {
    let mut c = Coordinator::default();
    let found = if served {
        coordinator_of(&ctx.broker, &key).map_err(|e| (group_code(&e), e.to_string()))
    } else {
        Err((COORDINATOR_NOT_AVAILABLE, "transactions are not supported".to_string()))
    };
    c.key = key;
    match found {
        // This node is named by the address of the listener the request came in on.
        Ok(node) if node.node_id == ctx.broker.node_id() => {
            c.error_code = NONE;
            c.node_id = BrokerId(node.node_id);
            c.host = str_bytes(&listener.advertised_host);
            c.port = i32::from(listener.advertised_port);
        }
        Ok(node) => {
            // Another node: by its listener of the same name as this one, as Metadata names it.
            let named = super::brokers(ctx, listener).into_iter().find(|b| b.node_id == node.node_id);
            let node = named.unwrap_or(node);
            c.error_code = NONE;
            c.node_id = BrokerId(node.node_id);
            c.host = str_bytes(&node.host);
            c.port = i32::from(node.port);
        }
        Err((code, message)) => {
            c.error_code = code;
            c.error_message = Some(str_bytes(&message));
            c.node_id = BrokerId(-1);
            c.host = str_bytes("");
            c.port = -1;
        }
    }
    c
}
