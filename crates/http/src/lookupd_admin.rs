//! nsqlookupd's write endpoints, on the `--lookupd-http-addr` listener only. nsqlookupd keeps
//! registrations, not data: nsqadmin deletes a topic by removing its registrations at every
//! lookupd and then calling `/topic/delete` on each nsqd that has it. Sluice is its own
//! lookupd, so removing a registration (`/topic/delete`, `/channel/delete`, `/topic/tombstone`)
//! changes nothing here and the nsqd call that follows does the deleting; creating registers
//! the topic or channel, which here means creating it.

use crate::reply::{self, channel_param, error, topic_param, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

fn failed(e: sluice_broker::BrokerError) -> axum::response::Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, &format!("INTERNAL_ERROR {e}"))
}

pub async fn topic_create(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let topic = topic_param(&p)?;
    s.channels.topic_or_create(&topic).map_err(failed)?;
    Ok(reply::empty())
}

pub async fn channel_create(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    s.channels.channel_or_create(&topic, &channel).map_err(failed)?;
    Ok(reply::empty())
}

/// nsqlookupd answers 200 whether or not the topic was registered.
pub async fn topic_delete(Query(p): Params) -> HttpResult {
    p.get("topic").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_TOPIC"))?;
    Ok(reply::empty())
}

/// nsqlookupd answers 404 for a channel it has no registration of.
pub async fn channel_delete(State(s): State<AppState>, Query(p): Params) -> HttpResult {
    let (topic, channel) = (topic_param(&p)?, channel_param(&p)?);
    s.channels.existing_channel(&topic, &channel).map_err(|_| error(StatusCode::NOT_FOUND, "CHANNEL_NOT_FOUND"))?;
    Ok(reply::empty())
}

pub async fn topic_tombstone(Query(p): Params) -> HttpResult {
    p.get("topic").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_TOPIC"))?;
    p.get("node").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_NODE"))?;
    Ok(reply::empty())
}
