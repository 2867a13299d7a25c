//! `/api/node` (who this node is and its effective settings) and `/api/overview` (node-wide
//! counts and cumulative traffic, from which the console derives rates).

use super::error::ApiResult;
use super::ok;
use crate::AppState;
use axum::extract::State;
use serde::Serialize;
use sluice_broker::clients::Protocol;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// What the binary tells the API about the node beyond the broker itself: its listeners and
/// the settings it resolved (flags, environment, file, defaults).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub kafka_addr: String,
    pub nsq_tcp_addr: String,
    pub http_addr: String,
    /// Milliseconds since the epoch when the process started serving.
    pub started_at_ms: i64,
    /// Every effective setting by its flag name (underscores), rendered as text.
    pub settings: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Listeners<'a> {
    kafka: &'a str,
    nsq_tcp: &'a str,
    http: &'a str,
}

#[derive(Serialize)]
struct Node<'a> {
    node_id: i32,
    cluster_id: &'a str,
    version: &'static str,
    started_at_ms: i64,
    uptime_ms: i64,
    data_dir: String,
    listeners: Listeners<'a>,
    config: &'a BTreeMap<String, String>,
}

pub async fn node(State(s): State<AppState>) -> ApiResult {
    let broker = s.channels.broker();
    let info = &s.config.node;
    let started_at_ms = if info.started_at_ms > 0 { info.started_at_ms } else { s.start_time * 1000 };
    Ok(ok(&Node {
        node_id: broker.node_id(),
        cluster_id: broker.cluster_id(),
        version: env!("CARGO_PKG_VERSION"),
        started_at_ms,
        uptime_ms: (now_ms() - started_at_ms).max(0),
        data_dir: broker.config().data_dir.display().to_string(),
        listeners: Listeners { kafka: &info.kafka_addr, nsq_tcp: &info.nsq_tcp_addr, http: &info.http_addr },
        config: &info.settings,
    }))
}

#[derive(Serialize, Default)]
struct Connections {
    kafka: usize,
    nsq: usize,
}

#[derive(Serialize, Default)]
struct Overview {
    now_ms: i64,
    topics: usize,
    partitions: usize,
    groups: usize,
    nsq_channels: usize,
    connections: Connections,
    size_bytes: u64,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

pub async fn overview(State(s): State<AppState>) -> ApiResult {
    let broker = s.channels.broker();
    let clients = broker.clients();
    let mut o = Overview {
        now_ms: now_ms(),
        groups: broker.groups().list().len(),
        nsq_channels: s.channels.topics().iter().map(|t| t.channels().len()).sum(),
        connections: Connections { kafka: clients.open_count(Protocol::Kafka), nsq: clients.open_count(Protocol::Nsq) },
        ..Overview::default()
    };
    for topic in broker.topics() {
        o.topics += 1;
        for p in topic.partitions() {
            o.partitions += 1;
            o.size_bytes += p.size_bytes();
            o.messages_in += p.traffic.messages_in.load(Ordering::Relaxed);
            o.bytes_in += p.traffic.bytes_in.load(Ordering::Relaxed);
            o.messages_out += p.traffic.messages_out.load(Ordering::Relaxed);
            o.bytes_out += p.traffic.bytes_out.load(Ordering::Relaxed);
        }
    }
    Ok(ok(&o))
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
