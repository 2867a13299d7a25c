//! The message browser (`GET …/partitions/{p}/messages`) and hand publishing (`POST
//! …/messages`). Bytes are shown as text when they are UTF-8, else as hex.

use super::error::{ApiError, ApiResult};
use super::node::now_ms;
use super::topics::{existing, existing_partition};
use super::{body, ok};
use crate::AppState;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_broker::browse::{self, BrowseFrom, NewMessage, BROWSE_RECORDS_MAX};
use std::collections::HashMap;

/// Records a browse returns when `limit` is not given: one page of the console's table.
const BROWSE_RECORDS_DEFAULT: usize = 20;

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    Text,
    Hex,
}

/// Bytes as the browser shows them: (text or hex, which one); `None` stays `None`.
fn render(bytes: Option<&[u8]>) -> (Option<String>, Option<Encoding>) {
    match bytes {
        None => (None, None),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => (Some(text.to_string()), Some(Encoding::Text)),
            Err(_) => (Some(b.iter().map(|x| format!("{x:02x}")).collect()), Some(Encoding::Hex)),
        },
    }
}

#[derive(Serialize)]
struct Header {
    key: String,
    value: Option<String>,
    value_encoding: Option<Encoding>,
}

#[derive(Serialize)]
struct Message {
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<String>,
    key_encoding: Option<Encoding>,
    value: Option<String>,
    value_encoding: Option<Encoding>,
    headers: Vec<Header>,
}

#[derive(Serialize)]
struct Page {
    messages: Vec<Message>,
    next_offset: i64,
}

/// Query `offset` or `timestamp` (not both; neither means the log start) and `limit`.
fn browse_params(query: &HashMap<String, String>) -> Result<(BrowseFrom, usize), ApiError> {
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        query
            .get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("{name} must be an integer, not '{v}'")))
            })
            .transpose()
    };
    let from = match (number("offset")?, number("timestamp")?) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give offset or timestamp, not both")),
        (Some(offset), None) => BrowseFrom::Offset(offset),
        (None, Some(ms)) => BrowseFrom::Timestamp(ms),
        (None, None) => BrowseFrom::Offset(0),
    };
    let limit = number("limit")?.unwrap_or(BROWSE_RECORDS_DEFAULT as i64);
    if !(1..=BROWSE_RECORDS_MAX as i64).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {BROWSE_RECORDS_MAX}")));
    }
    Ok((from, limit as usize))
}

pub async fn browse(
    State(s): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let Path((topic, index)) = path?;
    let Query(query) = query?;
    let (from, limit) = browse_params(&query)?;
    let partition = existing_partition(s.channels.broker(), &topic, &index)?;
    let what = format!("partition {index} of topic '{topic}'");
    let page = tokio::task::spawn_blocking(move || browse::browse(&partition, from, limit).map(|b| (partition, b)))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("browse task failed: {e}")))?;
    let (partition, browsed) = page.map_err(|e| ApiError::broker(e, &what))?;
    let messages = browsed
        .records
        .into_iter()
        .map(|r| {
            let (key, key_encoding) = render(r.key.as_deref());
            let (value, value_encoding) = render(r.value.as_deref());
            let headers = r
                .headers
                .into_iter()
                .map(|(key, v)| {
                    let (value, value_encoding) = render(v.as_deref());
                    Header { key, value, value_encoding }
                })
                .collect();
            Message {
                partition: partition.index,
                offset: r.offset,
                timestamp_ms: r.timestamp,
                key,
                key_encoding,
                value,
                value_encoding,
                headers,
            }
        })
        .collect();
    Ok(ok(&Page { messages, next_offset: browsed.next_offset }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHeader {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    value: String,
    key: Option<String>,
    partition: Option<i32>,
    #[serde(default)]
    headers: Vec<NewHeader>,
}

#[derive(Serialize)]
struct Published {
    partition: i32,
    offset: i64,
}

pub async fn produce(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let Path(topic) = path?;
    let publish: Publish = body(&raw?)?;
    let broker = s.channels.broker();
    let log_topic = existing(broker, &topic)?;
    let key = publish.key.map(Bytes::from);
    let partition = browse::choose_partition(&log_topic, publish.partition, key.as_deref()).map_err(|_| {
        ApiError::not_found(format!("topic '{topic}' has no partition {}", publish.partition.unwrap_or(-1)))
    })?;
    let message = NewMessage {
        key,
        value: Some(Bytes::from(publish.value)),
        headers: publish.headers.into_iter().map(|h| (h.key, Some(Bytes::from(h.value)))).collect(),
        timestamp_ms: now_ms(),
    };
    let outcome = browse::produce(&partition, message)
        .await
        .map_err(|e| ApiError::broker(e, &format!("partition {} of topic '{topic}'", partition.index)))?;
    Ok(super::json(StatusCode::CREATED, &Published { partition: partition.index, offset: outcome.base_offset }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_hex_and_null() {
        assert_eq!(render(Some(b"hi")).0.as_deref(), Some("hi"));
        assert!(render(Some(b"hi")).1 == Some(Encoding::Text));
        let (hex, encoding) = render(Some(&[0xff, 0x00, 0x10]));
        assert_eq!(hex.as_deref(), Some("ff0010"));
        assert!(encoding == Some(Encoding::Hex));
        assert!(render(None).0.is_none() && render(None).1.is_none());
    }
}
