//! `/topic/*` and `/channel/*`: create, delete, empty, pause, unpause.

use crate::reply::{self, channel_param, error, topic_param, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use sluice_broker::BrokerError;
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

fn failed(e: BrokerError, not_found: &str) -> axum::response::Response {
    match e {
        BrokerError::UnknownTopicOrPartition => error(StatusCode::NOT_FOUND, not_found),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("INTERNAL_ERROR {other}")),
    }
}

pub async fn topic_create(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = reply::topic_to_use(&p)?;
    s.channels.topic_or_create(&topic).map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

/// Deletes the topic (on every node in a cluster); the broker tells the NSQ registry, which
/// drops the topic's channels.
pub async fn topic_delete(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = topic_param(&p)?;
    let log_topic = sluice_broker::channel::storage_topic_name(&topic);
    s.channels.broker().delete_topic_anywhere(&log_topic).await.map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn topic_empty(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = topic_param(&p)?;
    s.channels.empty_topic(&topic).map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn topic_pause(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = topic_param(&p)?;
    s.channels.pause_topic(&topic, true).map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn topic_unpause(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = topic_param(&p)?;
    s.channels.pause_topic(&topic, false).map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn channel_create(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    // As nsqd: the topic must exist already (a channel does not create its topic here).
    if s.channels.topic(&topic).is_none() {
        return Err(error(StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND"));
    }
    s.channels.channel_or_create(&topic, &channel).map_err(|e| failed(e, "TOPIC_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn channel_delete(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    s.channels.delete_channel(&topic, &channel).map_err(|e| failed(e, "CHANNEL_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn channel_empty(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    let c = s.channels.existing_channel(&topic, &channel).map_err(|e| failed(e, "CHANNEL_NOT_FOUND"))?;
    s.channels.empty_channel(&c);
    Ok(reply::empty())
}

pub async fn channel_pause(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    let c = s.channels.existing_channel(&topic, &channel).map_err(|e| failed(e, "CHANNEL_NOT_FOUND"))?;
    s.channels.pause_channel(&c, true);
    Ok(reply::empty())
}

pub async fn channel_unpause(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    let c = s.channels.existing_channel(&topic, &channel).map_err(|e| failed(e, "CHANNEL_NOT_FOUND"))?;
    s.channels.pause_channel(&c, false);
    Ok(reply::empty())
}
