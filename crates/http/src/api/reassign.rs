//! Moving partitions and removing nodes: `POST /api/topics/{topic}/partitions/{p}/reassign`
//! (`{"replicas": [1,2,4]}`, or `null` to cancel), `GET /api/reassignments`, and
//! `DELETE /api/cluster/nodes/{id}` (moves every replica off the node, then removes it). The
//! cluster runtime does the work; a single node answers 404 as for `/api/cluster`.

use super::error::{ApiError, ApiResult};
use super::{body, ok, partition_index};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_broker::cluster_view::ClusterView;
use sluice_broker::reassignment::AdminError;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wanted {
    /// None (JSON null): cancel the move under way. Required: a missing field is a 400, so
    /// a forgotten list never cancels by accident.
    #[serde(deserialize_with = "Option::deserialize")]
    replicas: Option<Vec<i32>>,
}

#[derive(Serialize)]
struct Recorded<'a> {
    topic: &'a str,
    partition: i32,
    replicas: Option<Vec<i32>>,
}

pub async fn reassign(
    State(s): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Path((topic, index)) = path?;
    let partition = partition_index(&index)?;
    let wanted: Wanted = body(&raw?)?;
    let cluster = cluster(&s)?;
    cluster.reassign(&topic, partition, wanted.replicas.clone()).await.map_err(admin_error)?;
    Ok(ok(&Recorded { topic: &topic, partition, replicas: wanted.replicas }))
}

pub async fn list(State(s): State<AppState>) -> ApiResult {
    Ok(ok(&cluster(&s)?.reassignments()))
}

pub async fn add_node(State(s): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let node = node_id(path)?;
    let moved = cluster(&s)?.add_node(node).await.map_err(admin_error)?;
    Ok(ok(&serde_json::json!({ "added": node, "partitions_moved": moved })))
}

pub async fn drain(State(s): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let node = node_id(path)?;
    Ok(ok(&cluster(&s)?.drain(node).await.map_err(admin_error)?))
}

pub async fn remove_node(State(s): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let node = node_id(path)?;
    cluster(&s)?.remove_node(node).await.map_err(admin_error)?;
    Ok(ok(&serde_json::json!({ "removed": node })))
}

fn node_id(path: Result<Path<String>, PathRejection>) -> Result<i32, ApiError> {
    let Path(id) = path?;
    id.parse().map_err(|_| ApiError::bad_request(format!("node id must be an integer, not '{id}'")))
}

fn cluster(s: &AppState) -> Result<Arc<dyn ClusterView>, ApiError> {
    s.channels
        .broker()
        .cluster()
        .cloned()
        .ok_or_else(|| ApiError::not_found("this node is not part of a cluster (started without --node-id)"))
}

fn admin_error(e: AdminError) -> ApiError {
    let status = match e {
        AdminError::UnknownTopicOrPartition => StatusCode::NOT_FOUND,
        AdminError::InvalidReplicaAssignment(_) => StatusCode::BAD_REQUEST,
        AdminError::NoReassignmentInProgress | AdminError::ElectionNotNeeded | AdminError::Refused(_) => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}
