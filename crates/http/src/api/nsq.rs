//! `/api/nsq/…`: NSQ topics and their channels (depth, in flight, deferred, counters,
//! clients), and the channel actions pause, unpause, empty and delete.

use super::error::{ApiError, ApiResult};
use super::{no_content, ok};
use crate::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use sluice_broker::channel::{Channel, Channels};
use std::sync::Arc;

#[derive(Serialize)]
struct ChannelView {
    topic: String,
    channel: String,
    paused: bool,
    depth: i64,
    in_flight: usize,
    deferred: usize,
    requeued: u64,
    timed_out: u64,
    finished: u64,
    clients: usize,
}

#[derive(Serialize)]
struct TopicView {
    topic: String,
    paused: bool,
    depth: i64,
    message_count: u64,
    channels: Vec<ChannelView>,
}

fn view(c: &Channel) -> ChannelView {
    let s = c.stats();
    ChannelView {
        topic: c.topic.to_string(),
        channel: c.name.to_string(),
        paused: s.paused,
        depth: s.depth,
        in_flight: s.in_flight_count,
        deferred: s.deferred_count,
        requeued: s.requeue_count,
        timed_out: s.timeout_count,
        finished: s.finish_count,
        clients: s.clients.len(),
    }
}

pub async fn topics(State(s): State<AppState>) -> ApiResult {
    let topics: Vec<TopicView> = s
        .channels
        .topics()
        .iter()
        .map(|t| {
            let stats = t.stats();
            TopicView {
                topic: t.name.to_string(),
                paused: stats.paused,
                depth: stats.depth,
                message_count: stats.message_count,
                channels: t.channels().iter().map(|c| view(c)).collect(),
            }
        })
        .collect();
    Ok(ok(&topics))
}

type ChannelPath = Result<Path<(String, String)>, PathRejection>;

fn existing(channels: &Channels, path: ChannelPath) -> Result<(Arc<Channel>, String, String), ApiError> {
    let Path((topic, channel)) = path?;
    let found = channels
        .existing_channel(&topic, &channel)
        .map_err(|_| ApiError::not_found(format!("unknown channel '{channel}' of NSQ topic '{topic}'")))?;
    Ok((found, topic, channel))
}

pub async fn channel(State(s): State<AppState>, path: ChannelPath) -> ApiResult {
    let (c, _, _) = existing(&s.channels, path)?;
    Ok(ok(&view(&c)))
}

pub async fn pause(State(s): State<AppState>, path: ChannelPath) -> ApiResult {
    let (c, _, _) = existing(&s.channels, path)?;
    s.channels.pause_channel(&c, true);
    Ok(ok(&view(&c)))
}

pub async fn unpause(State(s): State<AppState>, path: ChannelPath) -> ApiResult {
    let (c, _, _) = existing(&s.channels, path)?;
    s.channels.pause_channel(&c, false);
    Ok(ok(&view(&c)))
}

pub async fn empty(State(s): State<AppState>, path: ChannelPath) -> ApiResult {
    let (c, _, _) = existing(&s.channels, path)?;
    s.channels.empty_channel(&c);
    Ok(ok(&view(&c)))
}

pub async fn delete_channel(State(s): State<AppState>, path: ChannelPath) -> ApiResult {
    let (_, topic, channel) = existing(&s.channels, path)?;
    s.channels.delete_channel(&topic, &channel).map_err(|e| ApiError::broker(e, &format!("channel '{channel}'")))?;
    Ok(no_content())
}
