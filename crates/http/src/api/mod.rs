//! The admin JSON API under `/api`: topics and partitions, the message browser, consumer
//! groups, NSQ channels, MQTT sessions, connected clients, the node and its cluster. The contract is docs/admin-api.md;
//! its machine-readable form, `openapi.json` beside this file, is served at
//! `/api/openapi.json` and checked against live answers by `tests/admin_openapi.rs`.
//! Handlers only translate: the work is done by the broker core.

mod clients;
mod cluster;
mod error;
mod group_forward;
mod groups;
mod messages;
mod mqtt;
mod node;
mod nsq;
mod reassign;
mod topics;

pub use node::NodeInfo;

use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use error::{method_not_allowed, no_such_endpoint, ApiError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest request body: a hand-published message (the broker's default batch limit is 1 MiB)
/// with its key and headers, as JSON text, fits.
const API_BODY_BYTES_MAX: usize = 4 << 20;

/// The OpenAPI 3.0 document, written by hand beside the handlers it describes.
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// The `/api` routes, to be merged into the HTTP router. Unknown paths and methods under
/// `/api` answer in the API's JSON error shape too.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/openapi.json", only(get(openapi)))
        .route("/node", only(get(node::node)))
        .route("/overview", only(get(node::overview)))
        .route("/clients", only(get(clients::list)))
        .route("/cluster", only(get(cluster::status)))
        .route("/mqtt", only(get(mqtt::status)))
        .route("/cluster/nodes/:node", only(post(reassign::add_node).delete(reassign::remove_node)))
        .route("/cluster/nodes/:node/drain", only(post(reassign::drain)))
        .route("/reassignments", only(get(reassign::list)))
        .route("/topics", only(get(topics::list).post(topics::create)))
        .route("/topics/:topic", only(get(topics::describe).delete(topics::delete)))
        .route("/topics/:topic/config", only(axum::routing::patch(topics::alter_config)))
        .route("/topics/:topic/partitions", only(post(topics::add_partitions)))
        .route("/topics/:topic/partitions/:partition", only(get(topics::partition)))
        .route("/topics/:topic/partitions/:partition/reassign", only(post(reassign::reassign)))
        .route("/topics/:topic/partitions/:partition/messages", only(get(messages::browse)))
        .route("/topics/:topic/messages", only(post(messages::produce)))
        .route("/groups", only(get(groups::list)))
        .route("/groups/:group", only(get(groups::describe).delete(groups::delete)))
        .route("/groups/:group/reset-offsets", only(post(groups::reset_offsets)))
        .route("/nsq/topics", only(get(nsq::topics)))
        .route("/nsq/topics/:topic/channels/:channel", only(get(nsq::channel).delete(nsq::delete_channel)))
        .route("/nsq/topics/:topic/channels/:channel/pause", only(post(nsq::pause)))
        .route("/nsq/topics/:topic/channels/:channel/unpause", only(post(nsq::unpause)))
        .route("/nsq/topics/:topic/channels/:channel/empty", only(post(nsq::empty)))
        .fallback(no_such_endpoint)
        .layer(DefaultBodyLimit::max(API_BODY_BYTES_MAX));
    Router::new().nest("/api", api)
}

/// A route that answers other methods with the API's 405.
fn only(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(method_not_allowed)
}

async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// `value` as a JSON answer with `status`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": format!("cannot encode answer: {e}") }).to_string(),
        )
            .into_response(),
    }
}

fn ok<T: Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A JSON request body; anything else is a 400 that says what was wrong.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// A path segment that must be a partition index.
fn partition_index(text: &str) -> Result<i32, ApiError> {
    text.parse().map_err(|_| ApiError::bad_request(format!("partition must be an integer, not '{text}'")))
}
