//! nsqd's HTTP API and nsqlookupd's HTTP API, answered in nsqd/nsqlookupd 1.x shapes (the
//! `application/vnd.nsq; version=1.0` format pynsq, gnsq and go-nsq parse). One router serves
//! both: Sluice is its own lookupd, naming itself as the only producer of every topic.

// Handlers return `Result<Response, Response>` (axum's idiom); errors are rare, size is moot.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod auth;
mod config;
mod console;
mod lookup;
mod lookup_cluster;
mod lookupd_admin;
mod metrics;
mod peer_channels;
mod publish;
mod reply;
mod server;
mod stats;
mod tls_required;

use axum::routing::{get, post, MethodRouter};
use axum::Router;
use sluice_broker::channel::Channels;
use std::sync::Arc;

pub use api::NodeInfo;
pub use auth::{guard_admin, Access, AdminAuthenticator, HttpAuth, Login};
pub use server::{serve, serve_tls, HttpLimits};
pub use tls_required::refuse_plain_nsqd_api;

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
    /// The NSQ protocol's limits, for `/info` and `/config/:opt` as nsqd reports them.
    pub nsq: sluice_nsq::NsqConfig,
    pub tcp_address: String,
    pub http_address: String,
    pub lookupd_tcp_addresses: Vec<String>,
    /// The MQTT listener's state, for the admin API's `/api/mqtt`.
    pub mqtt: sluice_mqtt::MqttStatus,
}

#[derive(Clone)]
struct AppState {
    channels: Arc<Channels>,
    config: Arc<HttpConfig>,
    /// Seconds since the epoch when the server started (`start_time`).
    start_time: i64,
}

fn app_state(channels: Arc<Channels>, config: HttpConfig) -> AppState {
    let start_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    AppState { channels, config: Arc::new(config), start_time }
}

/// The `--lookupd-http-addr` listener: nsqlookupd's API alone, its writes answered as
/// nsqlookupd answers them (`lookupd_admin.rs`), so nsqadmin's actions, which call every
/// lookupd and then every nsqd, succeed on both.
pub fn lookupd_router(channels: Arc<Channels>, config: HttpConfig) -> Router {
    Router::new()
        .route("/ping", nsqd(get(reply::ping)))
        .route("/info", nsqd(get(stats::info)))
        .route("/lookup", nsqd(get(lookup::lookup)))
        .route("/topics", nsqd(get(lookup::topics)))
        .route("/channels", nsqd(get(lookup::channels)))
        .route("/nodes", nsqd(get(lookup::nodes)))
        .route("/topic/create", nsqd(post(lookupd_admin::topic_create)))
        .route("/topic/delete", nsqd(post(lookupd_admin::topic_delete)))
        .route("/topic/tombstone", nsqd(post(lookupd_admin::topic_tombstone)))
        .route("/channel/create", nsqd(post(lookupd_admin::channel_create)))
        .route("/channel/delete", nsqd(post(lookupd_admin::channel_delete)))
        .fallback(reply::not_found)
        .with_state(app_state(channels, config))
}

pub fn router(channels: Arc<Channels>, config: HttpConfig) -> Router {
    let state = app_state(channels, config);
    Router::new()
        .route("/ping", nsqd(get(reply::ping).head(reply::ping)))
        .route("/info", nsqd(get(stats::info)))
        .route("/stats", nsqd(get(stats::stats)))
        .route("/config/:opt", nsqd(get(config::option)))
        .route("/metrics", nsqd(get(metrics::metrics)))
        .route("/pub", nsqd(post(publish::publish)))
        .route("/mpub", nsqd(post(publish::mpub)))
        .route("/topic/create", nsqd(post(admin::topic_create)))
        .route("/topic/delete", nsqd(post(admin::topic_delete)))
        .route("/topic/empty", nsqd(post(admin::topic_empty)))
        .route("/topic/pause", nsqd(post(admin::topic_pause)))
        .route("/topic/unpause", nsqd(post(admin::topic_unpause)))
        .route("/channel/create", nsqd(post(admin::channel_create)))
        .route("/channel/delete", nsqd(post(admin::channel_delete)))
        .route("/channel/empty", nsqd(post(admin::channel_empty)))
        .route("/channel/pause", nsqd(post(admin::channel_pause)))
        .route("/channel/unpause", nsqd(post(admin::channel_unpause)))
        .route("/lookup", nsqd(get(lookup::lookup)))
        .route("/topics", nsqd(get(lookup::topics)))
        .route("/channels", nsqd(get(lookup::channels)))
        .route("/nodes", nsqd(get(lookup::nodes)))
        .route("/", nsqd(get(console::index)))
        .route("/console/:asset", nsqd(get(console::asset)))
        .merge(api::routes())
        .fallback(reply::not_found)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// An nsqd route: other methods get nsqd's 405 `{"message":"METHOD_NOT_ALLOWED"}` (as its
/// router answers), not an empty body.
fn nsqd(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(reply::method_not_allowed)
}
