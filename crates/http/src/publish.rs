//! `/pub?topic=&defer=` and `/mpub?topic=[&binary=true]`.

use crate::reply::{self, error, topic_to_use, HttpResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::collections::HashMap;
use std::time::Duration;

pub async fn publish(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let topic = topic_to_use(&params)?;
    let body = read_body(&headers, body, state.config.max_msg_size, "MSG_TOO_BIG").await?;
    if body.len() > state.config.max_msg_size as usize {
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "MSG_TOO_BIG"));
    }
    if body.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "MSG_EMPTY"));
    }
    let defer = match params.get("defer") {
        None => None,
        Some(text) => {
            let ms: i64 = text.parse().map_err(|_| error(StatusCode::BAD_REQUEST, "INVALID_DEFER"))?;
            if ms < 0 || ms as u128 > state.config.max_req_timeout.as_millis() {
                return Err(error(StatusCode::BAD_REQUEST, "INVALID_DEFER"));
            }
            Some(Duration::from_millis(ms as u64))
        }
    };
    state
        .channels
        .publish(&topic, &[body], defer)
        .await
        .map_err(|e| error(publish_status(&e), &format!("PUB_FAILED {e}")))?;
    Ok(reply::text("OK"))
}

/// A publish the topic refuses for good (a compacted topic takes no keyless NSQ message) is
/// the client's error; anything else may pass, so the client may retry.
fn publish_status(e: &sluice_broker::BrokerError) -> StatusCode {
    match e {
        sluice_broker::BrokerError::InvalidRecord(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub async fn mpub(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let topic = topic_to_use(&params)?;
    let body = read_body(&headers, body, state.config.max_body_size, "BODY_TOO_BIG").await?;
    if body.len() > state.config.max_body_size as usize {
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_BIG"));
    }
    let binary = matches!(params.get("binary").map(String::as_str), Some("true" | "1"));
    let max = state.config.max_msg_size as usize;
    let messages = if binary { split_binary(body, max)? } else { split_lines(&body, max)? };
    if messages.is_empty() {
        // nsqd takes an empty text body as zero messages: the topic exists, 200 OK.
        state.channels.topic_or_create(&topic).map_err(|e| error(publish_status(&e), &format!("MPUB_FAILED {e}")))?;
        return Ok(reply::text("OK"));
    }
    state
        .channels
        .publish(&topic, &messages, None)
        .await
        .map_err(|e| error(publish_status(&e), &format!("MPUB_FAILED {e}")))?;
    Ok(reply::text("OK"))
}

/// Reads a request body of at most `limit` bytes, as nsqd does: a larger Content-Length,
/// or a body (chunked too) that grows past the limit while read, is 413 `too_big`, and
/// no more than `limit` bytes are ever buffered.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u32,
    too_big: &str,
) -> Result<Bytes, axum::response::Response> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > u64::from(limit)) {
        drain(body, len).await;
        return Err(error(StatusCode::PAYLOAD_TOO_LARGE, too_big));
    }
    match Limited::new(body, limit as usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error(StatusCode::PAYLOAD_TOO_LARGE, too_big)),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")),
    }
}

/// How much of a refused body is read and thrown away before the 413, and for how long:
/// a client still writing when the connection closes gets a broken pipe or a reset instead of
/// the answer (Go's net/http, behind nsqd, discards up to 256 KiB the same way). Bodies up to a
/// few times the default 1 MiB limit are drained whole; larger ones are cut off.
const REFUSED_BODY_DRAIN_BYTES_MAX: u64 = 4 << 20;
const REFUSED_BODY_DRAIN_TIME_MAX: Duration = Duration::from_secs(1);

/// Reads and discards at most `REFUSED_BODY_DRAIN_BYTES_MAX` of a refused body of `declared`
/// bytes, for at most `REFUSED_BODY_DRAIN_TIME_MAX`; nothing is kept.
async fn drain(mut body: Body, declared: u64) {
    if declared > REFUSED_BODY_DRAIN_BYTES_MAX {
        return;
    }
    let discard = async {
        let mut read = 0u64;
        while read < declared {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_BODY_DRAIN_TIME_MAX, discard).await;
}

/// Newline-separated messages; empty lines are skipped (a trailing newline is common).
fn split_lines(body: &Bytes, max: usize) -> Result<Vec<Bytes>, axum::response::Response> {
    let mut out = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line.len() > max {
            return Err(error(StatusCode::PAYLOAD_TOO_LARGE, "MSG_TOO_BIG"));
        }
        out.push(body.slice_ref(line));
    }
    Ok(out)
}

/// `[count][size][body]...` as TCP MPUB; nsqd answers every fault in it with 413 and the TCP
/// code without its `E_`: `BAD_BODY` for the count, `BAD_MESSAGE` for a message.
fn split_binary(mut body: Bytes, max: usize) -> Result<Vec<Bytes>, axum::response::Response> {
    let bad_body = || error(StatusCode::PAYLOAD_TOO_LARGE, "BAD_BODY");
    let bad_message = || error(StatusCode::PAYLOAD_TOO_LARGE, "BAD_MESSAGE");
    if body.len() < 4 {
        return Err(bad_body());
    }
    let count = body.get_i32();
    if count <= 0 || count as usize > sluice_broker::channel::records::MESSAGES_PER_BATCH_MAX {
        return Err(bad_body());
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if body.len() < 4 {
            return Err(bad_message());
        }
        let size = body.get_i32();
        if size <= 0 || size as usize > max || body.len() < size as usize {
            return Err(bad_message());
        }
        out.push(body.split_to(size as usize));
    }
    Ok(out)
}
