//! nsqd's `/config/:opt`: one option's current value by its config name, as JSON (Go's
//! `time.Duration` as nanoseconds). Read-only: nsqd's `PUT` changes `nsqlookupd_tcp_addresses`
//! and `log_level` at runtime, which Sluice takes only at start, so `PUT` is 405 here.

use crate::reply::{self, error, HttpResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn nanos(d: Duration) -> Value {
    json!(d.as_nanos() as u64)
}

pub async fn option(State(s): State<AppState>, Path(opt): Path<String>) -> HttpResult {
    let (c, n) = (&s.config, &s.config.nsq);
    let value = match opt.as_str() {
        "tcp_address" => json!(c.tcp_address),
        "http_address" => json!(c.http_address),
        "broadcast_address" => json!(c.broadcast_address),
        "nsqlookupd_tcp_addresses" => json!(c.lookupd_tcp_addresses),
        "msg_timeout" => nanos(n.msg_timeout),
        "max_msg_timeout" => nanos(n.max_msg_timeout),
        "max_msg_size" => json!(n.max_msg_size),
        "max_body_size" => json!(n.max_body_size),
        "max_req_timeout" => nanos(n.max_req_timeout),
        "max_heartbeat_interval" => nanos(n.max_heartbeat_interval),
        "max_rdy_count" => json!(n.max_rdy_count),
        "max_output_buffer_size" => json!(n.max_output_buffer_size),
        "max_output_buffer_timeout" => nanos(n.max_output_buffer_timeout),
        "output_buffer_timeout" => nanos(n.output_buffer_timeout),
        "max_deflate_level" => json!(n.max_deflate_level),
        "deflate" | "snappy" => json!(true),
        "topology_zone" | "topology_region" => json!(""),
        _ => return Err(error(StatusCode::BAD_REQUEST, "INVALID_OPTION")),
    };
    Ok(reply::json(&value))
}
