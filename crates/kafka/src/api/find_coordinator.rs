//! FindCoordinator: this node coordinates every consumer group. v4+ batches keys.
//! Transactions are not supported, so transaction coordinators are not available.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{COORDINATOR_NOT_AVAILABLE, NONE};
use crate::listener::ListenerInfo;
use crate::server::Context;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

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
    c.key = key;
    if served {
        c.error_code = NONE;
        c.node_id = BrokerId(ctx.broker.node_id());
        c.host = str_bytes(&listener.advertised_host);
        c.port = i32::from(listener.advertised_port);
    } else {
        c.error_code = COORDINATOR_NOT_AVAILABLE;
        c.error_message = Some(str_bytes("transactions are not supported"));
        c.node_id = BrokerId(-1);
        c.host = str_bytes("");
        c.port = -1;
    }
    c
}
