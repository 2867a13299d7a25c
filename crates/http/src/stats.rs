//! `/info` and `/stats` (`format=json` as nsqadmin and nsq_stat read it, or `format=text`).

use crate::reply::{self, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use sluice_broker::channel::{Channel, ClientInfo, NsqTopic};
use sluice_broker::clients::Protocol;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[derive(Serialize)]
struct Info<'a> {
    version: &'static str,
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: u16,
    tcp_port: u16,
    start_time: i64,
    /// Go durations, in nanoseconds, as nsqd 1.3 reports them.
    max_heartbeat_interval: u64,
    max_output_buffer_size: usize,
    max_output_buffer_timeout: u64,
    max_deflate_level: u32,
    topology_zone: &'static str,
    topology_region: &'static str,
}

pub async fn info(State(s): State<AppState>) -> HttpResult {
    Ok(reply::json(&Info {
        version: sluice_nsq::NSQD_VERSION,
        broadcast_address: &s.config.broadcast_address,
        hostname: &s.config.hostname,
        http_port: s.config.http_port,
        tcp_port: s.config.tcp_port,
        start_time: s.start_time,
        max_heartbeat_interval: s.config.nsq.max_heartbeat_interval.as_nanos() as u64,
        max_output_buffer_size: s.config.nsq.max_output_buffer_size,
        max_output_buffer_timeout: s.config.nsq.max_output_buffer_timeout.as_nanos() as u64,
        max_deflate_level: s.config.nsq.max_deflate_level,
        topology_zone: "",
        topology_region: "",
    }))
}

#[derive(Serialize)]
struct Latency {
    count: u64,
    percentiles: Option<Vec<f64>>,
}

const NO_LATENCY: Latency = Latency { count: 0, percentiles: None };

#[derive(Serialize)]
struct ClientStats {
    client_id: String,
    hostname: String,
    version: &'static str,
    remote_address: String,
    state: i32,
    ready_count: i64,
    in_flight_count: i64,
    message_count: u64,
    finish_count: u64,
    requeue_count: u64,
    connect_ts: i64,
    sample_rate: i32,
    deflate: bool,
    snappy: bool,
    user_agent: String,
    topology_zone: &'static str,
    topology_region: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    authed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    auth_identity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    auth_identity_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub_counts: Vec<PubCount>,
    tls: bool,
    tls_cipher_suite: String,
    tls_version: String,
    tls_negotiated_protocol: &'static str,
    tls_negotiated_protocol_is_mutual: bool,
}

#[derive(Serialize)]
struct PubCount {
    topic: String,
    count: u64,
}

#[derive(Serialize)]
struct ChannelStats {
    channel_name: String,
    depth: i64,
    backend_depth: i64,
    in_flight_count: usize,
    deferred_count: usize,
    message_count: u64,
    requeue_count: u64,
    timeout_count: u64,
    client_count: usize,
    clients: Vec<ClientStats>,
    paused: bool,
    e2e_processing_latency: Latency,
}

#[derive(Serialize)]
struct TopicStats {
    topic_name: String,
    channels: Vec<ChannelStats>,
    depth: i64,
    backend_depth: i64,
    message_count: u64,
    message_bytes: u64,
    paused: bool,
    e2e_processing_latency: Latency,
}

#[derive(Serialize)]
struct Stats {
    version: &'static str,
    health: &'static str,
    start_time: i64,
    topics: Vec<TopicStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryStats>,
    /// `null` when there are none or clients are left out, as nsqd's nil slice.
    producers: Option<Vec<ClientStats>>,
}

/// nsqd's `memory` block names Go runtime figures. Sluice has no garbage collector: the heap
/// in use is the process's resident memory (`/proc/self/statm`), the GC figures are 0.
#[derive(Serialize, Default)]
struct MemoryStats {
    heap_objects: u64,
    heap_idle_bytes: u64,
    heap_in_use_bytes: u64,
    heap_released_bytes: u64,
    gc_pause_usec_100: u64,
    gc_pause_usec_99: u64,
    gc_pause_usec_95: u64,
    next_gc_bytes: u64,
    gc_total_runs: u32,
}

/// Page size of the resident-set figure in `/proc/self/statm` (4 KiB on the platforms served).
const STATM_PAGE_BYTES: u64 = 4096;

fn memory_stats() -> MemoryStats {
    let resident_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .unwrap_or(0);
    MemoryStats { heap_in_use_bytes: resident_pages * STATM_PAGE_BYTES, ..MemoryStats::default() }
}

/// nsqd's producers: NSQ TCP connections that published, with their `pub_counts` (only the
/// asked-for topic's when `topic` is given).
fn producer_stats(s: &AppState, topic: Option<&str>) -> Vec<ClientStats> {
    let clients = s.channels.broker().clients().list();
    clients
        .into_iter()
        .filter(|c| c.protocol == Protocol::Nsq && !c.details.published.is_empty())
        .map(|c| {
            let pub_counts = c
                .details
                .published
                .iter()
                .filter(|(name, _)| topic.is_none_or(|t| t == name.as_str()))
                .map(|(name, count)| PubCount { topic: name.clone(), count: *count })
                .collect();
            ClientStats {
                client_id: c.details.client_id.clone(),
                hostname: c.details.hostname.clone(),
                version: "V2",
                remote_address: c.peer.clone(),
                state: CLIENT_STATE_INIT,
                ready_count: 0,
                in_flight_count: 0,
                message_count: 0,
                finish_count: 0,
                requeue_count: 0,
                connect_ts: c.connected_at_ms / 1000,
                sample_rate: 0,
                deflate: false,
                snappy: false,
                user_agent: c.details.user_agent.clone(),
                topology_zone: "",
                topology_region: "",
                pub_counts,
                authed: false,
                auth_identity: String::new(),
                auth_identity_url: String::new(),
                tls: false,
                tls_cipher_suite: String::new(),
                tls_version: String::new(),
                tls_negotiated_protocol: "",
                tls_negotiated_protocol_is_mutual: false,
            }
        })
        .collect()
}

/// nsqd's boolean query values; anything else takes the default.
fn bool_param(value: Option<&String>, default: bool) -> bool {
    match value.map(String::as_str) {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        _ => default,
    }
}

/// nsqd's client state numbers: a producer never leaves Init, a consumer is Subscribed.
const CLIENT_STATE_INIT: i32 = 0;
const CLIENT_STATE_SUBSCRIBED: i32 = 3;

fn client_stats(c: &ClientInfo) -> ClientStats {
    ClientStats {
        client_id: c.client_id.clone(),
        hostname: c.hostname.clone(),
        version: "V2",
        remote_address: c.remote_address.clone(),
        state: CLIENT_STATE_SUBSCRIBED,
        ready_count: c.ready_count.load(Ordering::Relaxed),
        in_flight_count: c.in_flight_count.load(Ordering::Relaxed),
        message_count: c.message_count.load(Ordering::Relaxed),
        finish_count: c.finish_count.load(Ordering::Relaxed),
        requeue_count: c.requeue_count.load(Ordering::Relaxed),
        connect_ts: c.connect_ts,
        sample_rate: c.sample_rate,
        deflate: c.deflate,
        snappy: c.snappy,
        user_agent: c.user_agent.clone(),
        topology_zone: "",
        topology_region: "",
        pub_counts: Vec::new(),
        authed: c.auth_identity.is_some(),
        auth_identity: c.auth_identity.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
        auth_identity_url: c.auth_identity.as_ref().map(|a| a.1.clone()).unwrap_or_default(),
        tls: !c.tls_version.is_empty(),
        tls_cipher_suite: c.tls_cipher_suite.clone(),
        tls_version: c.tls_version.clone(),
        tls_negotiated_protocol: "",
        tls_negotiated_protocol_is_mutual: false,
    }
}

fn channel_stats(c: &Channel, include_clients: bool) -> ChannelStats {
    let s = c.stats();
    ChannelStats {
        channel_name: c.name.to_string(),
        depth: s.depth,
        backend_depth: s.depth,
        in_flight_count: s.in_flight_count,
        deferred_count: s.deferred_count,
        message_count: s.message_count,
        requeue_count: s.requeue_count,
        timeout_count: s.timeout_count,
        client_count: s.clients.len(),
        clients: if include_clients { s.clients.iter().map(|c| client_stats(c)).collect() } else { Vec::new() },
        paused: s.paused,
        e2e_processing_latency: NO_LATENCY,
    }
}

fn topic_stats(t: &NsqTopic, channel: Option<&str>, include_clients: bool) -> TopicStats {
    let s = t.stats();
    let channels = t
        .channels()
        .iter()
        .filter(|c| channel.is_none_or(|name| &*c.name == name))
        .map(|c| channel_stats(c, include_clients))
        .collect();
    TopicStats {
        topic_name: t.name.to_string(),
        channels,
        depth: s.depth,
        backend_depth: s.depth,
        message_count: s.message_count,
        message_bytes: s.message_bytes,
        paused: s.paused,
        e2e_processing_latency: NO_LATENCY,
    }
}

pub async fn stats(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> HttpResult {
    let topic = p.get("topic").map(String::as_str);
    let channel = p.get("channel").map(String::as_str);
    let include_clients = bool_param(p.get("include_clients"), true);
    let include_mem = bool_param(p.get("include_mem"), true);
    let topics: Vec<Arc<NsqTopic>> =
        s.channels.topics().into_iter().filter(|t| topic.is_none_or(|name| &*t.name == name)).collect();
    let stats = Stats {
        version: sluice_nsq::NSQD_VERSION,
        health: "OK",
        start_time: s.start_time,
        topics: topics.iter().map(|t| topic_stats(t, channel, include_clients)).collect(),
        memory: include_mem.then(memory_stats),
        producers: Some(producer_stats(&s, topic)).filter(|p| include_clients && !p.is_empty()),
    };
    if p.get("format").map(String::as_str) == Some("json") {
        return Ok(reply::json(&stats));
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], as_text(&stats)).into_response())
}

/// nsqd's text stats layout.
fn as_text(stats: &Stats) -> String {
    let mut out =
        format!("nsqd v{} (sluice)\nstart_time {}\n\nHealth: {}\n", stats.version, stats.start_time, stats.health);
    if stats.topics.is_empty() {
        out.push_str("\nNO_TOPICS\n");
        return out;
    }
    for t in &stats.topics {
        let paused = if t.paused { " *P " } else { "    " };
        let _ = writeln!(
            out,
            "\n[{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%:{paused}",
            t.topic_name, t.depth, t.backend_depth, t.message_count
        );
        for c in &t.channels {
            let paused = if c.paused { " *P " } else { "    " };
            let _ = writeln!(
                out,
                "    [{:<15}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} e2e%:{paused}",
                c.channel_name, c.depth, c.backend_depth, c.in_flight_count, c.deferred_count, c.requeue_count,
                c.timeout_count, c.message_count
            );
            for cl in &c.clients {
                let _ = writeln!(
                    out,
                    "        [V2 {:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: {}",
                    cl.client_id, cl.state, cl.in_flight_count, cl.ready_count, cl.finish_count, cl.requeue_count,
                    cl.message_count, cl.connect_ts
                );
            }
        }
    }
    out
}
