//! `/api/groups…`: consumer groups with members, assignments, committed offsets and lag;
//! offset reset and deletion (both only while the group has no members, as Kafka).

use super::error::{ApiError, ApiResult};
use super::group_forward::to_coordinator;
use super::{body, no_content, ok};
use crate::AppState;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_broker::group::assignment::assigned_partitions;
use sluice_broker::group::cluster_listing::cluster_groups;
use sluice_broker::group::reset::{reset_offsets as reset, ResetTo};
use sluice_broker::group::{GroupDescription, GroupState};
use sluice_broker::Broker;

#[derive(Serialize)]
struct GroupListing {
    group_id: String,
    state: &'static str,
    protocol_type: String,
    members: usize,
    lag: i64,
}

#[derive(Serialize)]
struct Assignment {
    topic: String,
    partitions: Vec<i32>,
}

#[derive(Serialize)]
struct Member {
    member_id: String,
    client_id: String,
    client_host: String,
    assignments: Vec<Assignment>,
}

#[derive(Serialize)]
struct CommittedOffset {
    topic: String,
    partition: i32,
    committed_offset: i64,
    /// None when the topic or partition no longer exists.
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    metadata: Option<String>,
}

#[derive(Serialize)]
struct GroupDetail {
    group_id: String,
    state: &'static str,
    protocol_type: String,
    protocol: String,
    generation: i32,
    members: Vec<Member>,
    offsets: Vec<CommittedOffset>,
}

/// Every group of the cluster, whichever node is asked (`group::cluster_listing`).
pub async fn list(State(s): State<AppState>) -> ApiResult {
    let listing: Vec<GroupListing> = cluster_groups(s.channels.broker())
        .await
        .into_iter()
        .filter(|g| g.state != GroupState::Dead)
        .map(|g| GroupListing {
            state: g.state.name(),
            protocol_type: g.protocol_type,
            members: g.members,
            lag: g.lag,
            group_id: g.group_id,
        })
        .collect();
    Ok(ok(&listing))
}

/// The group, or 404 when the coordinator knows neither members nor offsets of it.
fn described(broker: &Broker, group: &str) -> Result<GroupDescription, ApiError> {
    let description = broker.groups().describe(group).map_err(|e| ApiError::group(e, group))?;
    if description.state == GroupState::Dead {
        return Err(ApiError::not_found(format!("unknown group '{group}'")));
    }
    Ok(description)
}

fn committed_offsets(broker: &Broker, group: &str) -> Result<Vec<CommittedOffset>, ApiError> {
    let committed = broker.groups().fetch_offsets(group, None).map_err(|e| ApiError::group(e, group))?;
    let mut offsets: Vec<CommittedOffset> = committed
        .into_iter()
        .filter_map(|(topic, partition, c)| {
            let c = c?;
            let log_end_offset = broker.partition(&topic, partition).ok().map(|p| p.log_end_offset());
            Some(CommittedOffset {
                lag: log_end_offset.map(|end| (end - c.offset).max(0)),
                topic,
                partition,
                committed_offset: c.offset,
                log_end_offset,
                metadata: c.metadata,
            })
        })
        .collect();
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(offsets)
}

pub async fn describe(
    State(s): State<AppState>,
    (method, uri, headers): (Method, Uri, HeaderMap),
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(group) = path?;
    let broker = s.channels.broker();
    if let Some(answer) = to_coordinator(broker, &group, &method, &uri, &headers, &[]).await {
        return Ok(answer);
    }
    let d = described(broker, &group)?;
    let members = d
        .members
        .into_iter()
        .map(|m| Member {
            assignments: assigned_partitions(&m.assignment)
                .into_iter()
                .map(|(topic, partitions)| Assignment { topic, partitions })
                .collect(),
            member_id: m.member_id,
            client_id: m.client_id,
            client_host: m.client_host,
        })
        .collect();
    Ok(ok(&GroupDetail {
        offsets: committed_offsets(broker, &group)?,
        group_id: d.group_id,
        state: d.state.name(),
        protocol_type: d.protocol_type,
        protocol: d.protocol,
        generation: d.generation,
        members,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    Earliest,
    Latest,
    Timestamp,
    Offset,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    topic: String,
    partitions: Option<Vec<i32>>,
    to: Target,
    timestamp_ms: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
struct ResetOffset {
    topic: String,
    partition: i32,
    committed_offset: i64,
}

#[derive(Serialize)]
struct ResetDone {
    offsets: Vec<ResetOffset>,
}

/// Like `kafka-consumer-groups --reset-offsets`, an unknown group is created with the offsets.
pub async fn reset_offsets(
    State(s): State<AppState>,
    (method, uri, headers): (Method, Uri, HeaderMap),
    path: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Path(group) = path?;
    let raw = raw?;
    if let Some(answer) = to_coordinator(s.channels.broker(), &group, &method, &uri, &headers, &raw).await {
        return Ok(answer);
    }
    let r: Reset = body(&raw)?;
    let to = match r.to {
        Target::Earliest => ResetTo::Earliest,
        Target::Latest => ResetTo::Latest,
        Target::Timestamp => ResetTo::Timestamp(
            r.timestamp_ms.ok_or_else(|| ApiError::bad_request("to \"timestamp\" needs timestamp_ms"))?,
        ),
        Target::Offset => ResetTo::Offset(r.offset.ok_or_else(|| ApiError::bad_request("to \"offset\" needs offset"))?),
    };
    let broker = s.channels.broker().clone();
    let (group_id, topic) = (group.clone(), r.topic.clone());
    // Finding a timestamp reads the log, and the commit writes the offsets log: blocking work.
    let done = tokio::task::spawn_blocking(move || reset(&broker, &group_id, &topic, r.partitions.as_deref(), to))
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("reset failed: {e}")))?
        .map_err(|e| ApiError::reset(e, &group, &r.topic))?;
    let offsets = done
        .into_iter()
        .map(|(partition, committed_offset)| ResetOffset { topic: r.topic.clone(), partition, committed_offset })
        .collect();
    Ok(ok(&ResetDone { offsets }))
}

pub async fn delete(
    State(s): State<AppState>,
    (method, uri, headers): (Method, Uri, HeaderMap),
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(group) = path?;
    if let Some(answer) = to_coordinator(s.channels.broker(), &group, &method, &uri, &headers, &[]).await {
        return Ok(answer);
    }
    s.channels.broker().groups().delete_group(&group).map_err(|e| ApiError::group(e, &group))?;
    Ok(no_content())
}
