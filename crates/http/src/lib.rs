//! nsqd's HTTP API and nsqlookupd's HTTP API, answered in nsqd/nsqlookupd 1.x shapes (the
//! `application/vnd.nsq; version=1.0` format pynsq, gnsq and go-nsq parse). One router serves
//! both: Sluice is its own lookupd, naming itself as the only producer of every topic.

// Handlers return `Result<Response, Response>` (axum's idiom); errors are rare, size is moot.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod console;
mod lookup;
mod metrics;
mod publish;
mod reply;
mod server;
mod stats;

use axum::routing::{get, post};
use axum::Router;
use sluice_broker::channel::Channels;
use std::sync::Arc;

pub use api::NodeInfo;
pub use server::{serve, HttpLimits};

/// What `/info` and lookupd's producer entries say about this node.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address NSQ clients are told to connect to (nsqd `--broadcast-address`).
    pub broadcast_address: String,
    pub hostname: String,
    pub tcp_port: u16,
    pub http_port: u16,
    pub max_msg_size: u32,
    pub max_body_size: u32,
    pub max_req_timeout: std::time::Duration,
    /// Listeners and effective settings, for the admin API's `/api/node`.
    pub node: NodeInfo,
}

#[derive(Clone)]
struct AppState {
    channels: Arc<Channels>,
    config: Arc<HttpConfig>,
    /// Seconds since the epoch when the server started (`start_time`).
    start_time: i64,
}

pub fn router(channels: Arc<Channels>, config: HttpConfig) -> Router {
    let start_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let state = AppState { channels, config: Arc::new(config), start_time };
    Router::new()
        .route("/ping", get(reply::ping).head(reply::ping))
        .route("/info", get(stats::info))
        .route("/stats", get(stats::stats))
        .route("/metrics", get(metrics::metrics))
        .route("/pub", post(publish::publish))
        .route("/mpub", post(publish::mpub))
        .route("/topic/create", post(admin::topic_create))
        .route("/topic/delete", post(admin::topic_delete))
        .route("/topic/empty", post(admin::topic_empty))
        .route("/topic/pause", post(admin::topic_pause))
        .route("/topic/unpause", post(admin::topic_unpause))
        .route("/channel/create", post(admin::channel_create))
        .route("/channel/delete", post(admin::channel_delete))
        .route("/channel/empty", post(admin::channel_empty))
        .route("/channel/pause", post(admin::channel_pause))
        .route("/channel/unpause", post(admin::channel_unpause))
        .route("/lookup", get(lookup::lookup))
        .route("/topics", get(lookup::topics))
        .route("/channels", get(lookup::channels))
        .route("/nodes", get(lookup::nodes))
        .route("/", get(console::index))
        .route("/console/:asset", get(console::asset))
        .merge(api::routes())
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}
