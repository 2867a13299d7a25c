//! nsqd's `RespondV1`: 200 with text or JSON, errors as `{"message": "CODE"}`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

const NSQ_CONTENT_TYPE: &str = "nsq; version=1.0";

/// nsqd's health check: `OK`, or 500 with `NOK - <reason>` in plain text while storage
/// refuses writes (a full disk) or, in a cluster, while this node reaches no majority of
/// the metadata voters; it turns `OK` again by itself once a write succeeds or the link heals.
pub async fn ping(State(state): State<crate::AppState>) -> Response {
    let broker = state.channels.broker();
    match broker.storage_problem().or_else(|| broker.cluster().and_then(|cluster| cluster.cut_off())) {
        None => text("OK"),
        Some(problem) => {
            with_nsq_header((StatusCode::INTERNAL_SERVER_ERROR, format!("NOK - {problem}")).into_response())
        }
    }
}

pub fn text(body: &'static str) -> Response {
    with_nsq_header((StatusCode::OK, body).into_response())
}

pub fn empty() -> Response {
    with_nsq_header(StatusCode::OK.into_response())
}

pub fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_nsq_header(
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response(),
        ),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
    }
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    with_nsq_header((status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response())
}

fn with_nsq_header(mut response: Response) -> Response {
    response.headers_mut().insert("X-NSQ-Content-Type", HeaderValue::from_static(NSQ_CONTENT_TYPE));
    response
}

/// nsqd's answer for a path it has no route for (paths under `/api` answer in the API's shape).
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND")
}

/// nsqd's answer for a known path asked with another method.
pub async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
}

pub type HttpResult = Result<Response, Response>;

/// `?topic=` checked as nsqd checks it.
pub fn topic_param(params: &std::collections::HashMap<String, String>) -> Result<String, Response> {
    let topic = params.get("topic").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_TOPIC"))?;
    if !sluice_broker::channel::is_valid_nsq_name(topic) {
        return Err(error(StatusCode::BAD_REQUEST, "INVALID_ARG_TOPIC"));
    }
    Ok(topic.clone())
}

/// `?topic=` for the endpoints that create the topic on use (`/pub`, `/mpub`,
/// `/topic/create`): nsqd names a bad one `INVALID_TOPIC` there.
pub fn topic_to_use(params: &std::collections::HashMap<String, String>) -> Result<String, Response> {
    let topic = params.get("topic").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_TOPIC"))?;
    if !sluice_broker::channel::is_valid_nsq_name(topic) {
        return Err(error(StatusCode::BAD_REQUEST, "INVALID_TOPIC"));
    }
    Ok(topic.clone())
}

pub fn channel_param(params: &std::collections::HashMap<String, String>) -> Result<String, Response> {
    let channel = params.get("channel").ok_or_else(|| error(StatusCode::BAD_REQUEST, "MISSING_ARG_CHANNEL"))?;
    if !sluice_broker::channel::is_valid_nsq_name(channel) {
        return Err(error(StatusCode::BAD_REQUEST, "INVALID_ARG_CHANNEL"));
    }
    Ok(channel.clone())
}
