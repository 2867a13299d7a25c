//! `/api/cluster`: the cluster as this node sees it (metadata group, nodes, this node's
//! partition replicas with their Raft figures, under-replicated partitions, leaders per node).

use super::error::{ApiError, ApiResult};
use super::ok;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn status(State(s): State<AppState>) -> ApiResult {
    let broker = s.channels.broker();
    let cluster = broker
        .cluster()
        .ok_or_else(|| ApiError::not_found("this node is not part of a cluster (started without --node-id)"))?;
    let status = cluster
        .status()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the cluster node is shutting down"))?;
    Ok(ok(&status))
}
