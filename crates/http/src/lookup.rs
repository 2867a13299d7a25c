//! nsqlookupd's API. On a single node this node is the only producer of every topic it
//! holds; in a cluster every node answers for the whole cluster (`lookup_cluster.rs`): a
//! topic's producers are the live nodes that lead its partitions.

use crate::lookup_cluster;
use crate::reply::{self, error, topic_param, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize, Clone)]
pub(crate) struct Producer {
    pub remote_address: String,
    pub hostname: String,
    pub broadcast_address: String,
    pub tcp_port: u16,
    pub http_port: u16,
    pub version: &'static str,
}

#[derive(Serialize)]
struct Node {
    #[serde(flatten)]
    producer: Producer,
    tombstones: Vec<bool>,
    topics: Vec<String>,
}

/// This node as lookupd names it.
pub(crate) fn producer(s: &AppState) -> Producer {
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
    let local: Vec<String> = t.channels().iter().map(|c| c.name.to_string()).collect();
    let channels = lookup_cluster::channels(&s, &topic, local).await;
    let producers = match lookup_cluster::nodes(&s) {
        Some(nodes) => nodes.into_iter().filter(|n| n.leads(&topic)).map(|n| n.producer).collect(),
        None => vec![producer(&s)],
    };
    Ok(reply::json(&serde_json::json!({ "channels": channels, "producers": producers })))
}

pub async fn topics(State(s): State<AppState>) -> HttpResult {
    Ok(reply::json(&serde_json::json!({ "topics": topic_names(&s) })))
}

pub async fn channels(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> HttpResult {
    let topic = topic_param(&p)?;
    let local: Vec<String> =
        s.channels.topic(&topic).map(|t| t.channels().iter().map(|c| c.name.to_string()).collect()).unwrap_or_default();
    let channels = lookup_cluster::channels(&s, &topic, local).await;
    Ok(reply::json(&serde_json::json!({ "channels": channels })))
}

pub async fn nodes(State(s): State<AppState>) -> HttpResult {
    let nodes: Vec<Node> = match lookup_cluster::nodes(&s) {
        Some(nodes) => nodes
            .into_iter()
            .map(|n| Node { tombstones: vec![false; n.topics.len()], topics: n.topics, producer: n.producer })
            .collect(),
        None => {
            let topics = topic_names(&s);
            vec![Node { producer: producer(&s), tombstones: vec![false; topics.len()], topics }]
        }
    };
    Ok(reply::json(&serde_json::json!({ "producers": nodes })))
}
