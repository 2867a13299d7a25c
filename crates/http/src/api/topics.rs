//! `/api/topics…`: list, create, describe, alter config, add partitions, delete, and one
//! partition's offsets, size and segments.

use super::error::{ApiError, ApiResult};
use super::{body, no_content, ok, partition_index};
use crate::AppState;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_broker::browse::segments;
use sluice_broker::{Broker, Partition, Topic};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

#[derive(Serialize)]
struct TopicListing {
    name: String,
    partitions: u32,
    messages: i64,
    size_bytes: u64,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

#[derive(Serialize)]
pub(super) struct PartitionSummary {
    partition: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    size_bytes: u64,
    segments: usize,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

#[derive(Serialize)]
struct ConfigValue {
    name: String,
    value: String,
    /// "default" (broker setting) or "topic" (an override on this topic).
    source: &'static str,
}

#[derive(Serialize)]
struct TopicDetail {
    name: String,
    partitions: Vec<PartitionSummary>,
    config: Vec<ConfigValue>,
}

#[derive(Serialize)]
struct Segment {
    base_offset: i64,
    size_bytes: u64,
}

pub(super) fn summary(p: &Partition) -> PartitionSummary {
    PartitionSummary {
        partition: p.index,
        log_start_offset: p.log_start_offset(),
        log_end_offset: p.log_end_offset(),
        size_bytes: p.size_bytes(),
        segments: p.log().segment_count(),
        messages_in: p.traffic.messages_in.load(Ordering::Relaxed),
        bytes_in: p.traffic.bytes_in.load(Ordering::Relaxed),
        messages_out: p.traffic.messages_out.load(Ordering::Relaxed),
        bytes_out: p.traffic.bytes_out.load(Ordering::Relaxed),
    }
}

fn config_values(broker: &Broker, topic: &Topic) -> Vec<ConfigValue> {
    topic
        .config()
        .entries(&broker.config().log_defaults)
        .into_iter()
        .map(|e| ConfigValue { name: e.name, value: e.value, source: if e.is_default { "default" } else { "topic" } })
        .collect()
}

fn detail(broker: &Broker, topic: &Topic) -> TopicDetail {
    TopicDetail {
        name: topic.name.to_string(),
        partitions: topic.partitions().iter().map(|p| summary(p)).collect(),
        config: config_values(broker, topic),
    }
}

/// The topic named in the path, or 404.
pub(super) fn existing(broker: &Broker, name: &str) -> Result<std::sync::Arc<Topic>, ApiError> {
    broker.topic(name).ok_or_else(|| ApiError::not_found(format!("unknown topic '{name}'")))
}

pub async fn list(State(s): State<AppState>) -> ApiResult {
    let listing: Vec<TopicListing> = s
        .channels
        .broker()
        .topics()
        .iter()
        .map(|t| {
            let parts: Vec<PartitionSummary> = t.partitions().iter().map(|p| summary(p)).collect();
            TopicListing {
                name: t.name.to_string(),
                partitions: parts.len() as u32,
                messages: parts.iter().map(|p| p.log_end_offset - p.log_start_offset).sum(),
                size_bytes: parts.iter().map(|p| p.size_bytes).sum(),
                messages_in: parts.iter().map(|p| p.messages_in).sum(),
                bytes_in: parts.iter().map(|p| p.bytes_in).sum(),
                messages_out: parts.iter().map(|p| p.messages_out).sum(),
                bytes_out: parts.iter().map(|p| p.bytes_out).sum(),
            }
        })
        .collect();
    Ok(ok(&listing))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTopic {
    name: String,
    partitions: Option<u32>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

pub async fn create(State(s): State<AppState>, raw: Result<Bytes, BytesRejection>) -> ApiResult {
    let new: NewTopic = body(&raw?)?;
    let broker = s.channels.broker();
    let what = format!("topic '{}'", new.name);
    let topic =
        broker.create_topic_anywhere(&new.name, new.partitions, new.config).map_err(|e| ApiError::broker(e, &what))?;
    Ok(super::json(StatusCode::CREATED, &detail(broker, &topic)))
}

pub async fn describe(State(s): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let Path(name) = path?;
    let broker = s.channels.broker();
    Ok(ok(&detail(broker, &*existing(broker, &name)?)))
}

/// Body `{key: "value" | null}`: each key set or (null) removed, the rest kept.
pub async fn alter_config(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Path(name) = path?;
    let changes: BTreeMap<String, Option<String>> = body(&raw?)?;
    let broker = s.channels.broker();
    let topic = existing(broker, &name)?;
    let mut overrides = topic.config().overrides;
    for (key, value) in changes {
        match value {
            Some(value) => overrides.insert(key, value),
            None => overrides.remove(&key),
        };
    }
    broker
        .set_topic_config_anywhere(&name, overrides, false)
        .await
        .map_err(|e| ApiError::broker(e, &format!("topic '{name}'")))?;
    Ok(ok(&config_values(broker, &*existing(broker, &name)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionCount {
    count: u32,
}

pub async fn add_partitions(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Path(name) = path?;
    let wanted: PartitionCount = body(&raw?)?;
    let broker = s.channels.broker();
    existing(broker, &name)?;
    broker
        .create_partitions_anywhere(&name, wanted.count, false)
        .await
        .map_err(|e| ApiError::broker(e, &format!("topic '{name}'")))?;
    Ok(ok(&detail(broker, &*existing(broker, &name)?)))
}

/// Deletes the topic (on every node in a cluster); its channels and their state go with it
/// (the broker tells the NSQ registry).
pub async fn delete(State(s): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let Path(name) = path?;
    let broker = s.channels.broker();
    existing(broker, &name)?;
    broker.delete_topic_anywhere(&name).await.map_err(|e| ApiError::broker(e, &format!("topic '{name}'")))?;
    Ok(no_content())
}

pub async fn partition(State(s): State<AppState>, path: Result<Path<(String, String)>, PathRejection>) -> ApiResult {
    let Path((name, index)) = path?;
    let p = existing_partition(s.channels.broker(), &name, &index)?;
    let segments: Vec<Segment> =
        segments(&p).into_iter().map(|s| Segment { base_offset: s.base_offset, size_bytes: s.size_bytes }).collect();
    // The summary's segment count becomes the list of segments.
    let mut detail = serde_json::to_value(summary(&p)).map_err(internal)?;
    detail["segments"] = serde_json::to_value(segments).map_err(internal)?;
    Ok(ok(&detail))
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode answer: {e}"))
}

/// The partition named in the path: 400 if the index is not a number, 404 if unknown.
pub(super) fn existing_partition(
    broker: &Broker,
    topic: &str,
    index: &str,
) -> Result<std::sync::Arc<Partition>, ApiError> {
    let index = partition_index(index)?;
    existing(broker, topic)?
        .partition(index)
        .ok_or_else(|| ApiError::not_found(format!("topic '{topic}' has no partition {index}")))
}
