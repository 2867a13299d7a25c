//! nsqlookupd's API: this node is the only producer of every topic it holds.

use crate::reply::{self, error, topic_param, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize, Clone)]
struct Producer {
    remote_address: String,
    hostname: String,
    broadcast_address: String,
    tcp_port: u16,
    http_port: u16,
    version: &'static str,
}

#[derive(Serialize)]
struct Node {
    #[serde(flatten)]
    producer: Producer,
    tombstones: Vec<bool>,
    topics: Vec<String>,
}

fn producer(s: &AppState) -> Producer {
    let c = &s.config;
    Producer {
        remote_address: format!("{}:{}", c.broadcast_address, c.tcp_port),
        hostname: c.hostname.clone(),
        broadcast_address: c.broadcast_address.clone(),
        tcp_port: c.tcp_port,
        http_port: c.http_port,
        version: sluice_nsq::NSQD_VERSION,
    }
}

fn topic_names(s: &AppState) -> Vec<String> {
    s.channels.topics().iter().map(|t| t.name.to_string()).collect()
}

pub async fn lookup(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> HttpResult {
    let topic = topic_param(&p)?;
    let Some(t) = s.channels.topic(&topic) else {
        return Err(error(StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND"));
    };
    let channels: Vec<String> = t.channels().iter().map(|c| c.name.to_string()).collect();
    Ok(reply::json(&serde_json::json!({ "channels": channels, "producers": [producer(&s)] })))
}

pub async fn topics(State(s): State<AppState>) -> HttpResult {
    Ok(reply::json(&serde_json::json!({ "topics": topic_names(&s) })))
}

pub async fn channels(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> HttpResult {
    let topic = topic_param(&p)?;
    let channels: Vec<String> =
        s.channels.topic(&topic).map(|t| t.channels().iter().map(|c| c.name.to_string()).collect()).unwrap_or_default();
    Ok(reply::json(&serde_json::json!({ "channels": channels })))
}

pub async fn nodes(State(s): State<AppState>) -> HttpResult {
    let topics = topic_names(&s);
    let node = Node { producer: producer(&s), tombstones: vec![false; topics.len()], topics };
    Ok(reply::json(&serde_json::json!({ "producers": [node] })))
}
