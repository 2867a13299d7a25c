//! IDENTIFY: client metadata and feature negotiation (heartbeats, output buffering, message
//! timeout, sampling, TLS, snappy or deflate), answered with nsqd's JSON when asked for.

use crate::codec::Command;
use crate::compress::{Deflater, Inflater};
use crate::connection::{Conn, ConnState, Upgrade};
use crate::error::{NsqError, NsqResult};
use crate::NSQD_VERSION;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a client may send; every field optional, unknown ones ignored and `null` taken as
/// absent (as Go's json does: tokio-nsq sends `"sample_rate": null`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct IdentifyData {
    client_id: Option<String>,
    short_id: Option<String>,
    hostname: Option<String>,
    long_id: Option<String>,
    heartbeat_interval: Option<i64>,
    output_buffer_size: Option<i64>,
    output_buffer_timeout: Option<i64>,
    feature_negotiation: Option<bool>,
    tls_v1: Option<bool>,
    deflate: Option<bool>,
    deflate_level: Option<i64>,
    snappy: Option<bool>,
    sample_rate: Option<i64>,
    user_agent: Option<String>,
    msg_timeout: Option<i64>,
}

#[derive(Serialize)]
struct IdentifyResponse {
    max_rdy_count: i64,
    version: &'static str,
    max_msg_timeout: i64,
    msg_timeout: i64,
    tls_v1: bool,
    deflate: bool,
    deflate_level: u32,
    max_deflate_level: u32,
    snappy: bool,
    sample_rate: i64,
    auth_required: bool,
    output_buffer_size: usize,
    output_buffer_timeout: i64,
}

pub fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    // As nsqd: IDENTIFY may be repeated until SUB (the last one's settings hold).
    if conn.state != ConnState::Init {
        return Err(NsqError::fatal("E_INVALID", "cannot IDENTIFY in current state"));
    }
    let size = command.body_size.ok_or_else(|| NsqError::fatal("E_BAD_BODY", "IDENTIFY failed to read body size"))?;
    let max = conn.config.max_body_size;
    if size > 0 && size as u32 > max {
        return Err(NsqError::fatal("E_BAD_BODY", format!("IDENTIFY body too big {size} > {max}")));
    }
    if size <= 0 {
        return Err(NsqError::fatal("E_BAD_BODY", format!("IDENTIFY invalid body size {size}")));
    }
    let body = command.body.as_ref().ok_or_else(|| NsqError::fatal("E_BAD_BODY", "IDENTIFY failed to read body"))?;
    let data: IdentifyData = serde_json::from_slice(body)
        .map_err(|_| NsqError::fatal("E_BAD_BODY", "IDENTIFY failed to decode JSON body"))?;
    apply(conn, &data).map_err(|reason| NsqError::fatal("E_BAD_BODY", format!("IDENTIFY {reason}")))?;
    let (snappy, deflate) = (data.snappy.unwrap_or(false), data.deflate.unwrap_or(false));
    if snappy && deflate {
        return Err(NsqError::fatal("E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression"));
    }
    // The stream switches compression once: a later IDENTIFY keeps what is on the wire.
    let compressed = conn.identity.deflate_level.is_some() || conn.identity.snappy;
    if compressed && (snappy || deflate) {
        return Err(NsqError::fatal("E_IDENTIFY_FAILED", "IDENTIFY failed compression already negotiated"));
    }
    conn.identified = true;
    if !data.feature_negotiation.unwrap_or(false) {
        conn.respond(b"OK");
        return Ok(());
    }
    let deflate_level = if compressed {
        conn.identity.deflate_level
    } else {
        deflate.then(|| {
            let requested = data.deflate_level.unwrap_or(0);
            let level = if requested <= 0 { 6 } else { requested.min(i64::from(u32::MAX)) as u32 };
            level.min(conn.config.max_deflate_level)
        })
    };
    let snappy = if compressed { conn.identity.snappy } else { snappy };
    // nsqd offers TLS only when it has certificates; the upgrade follows the response.
    // A stream already compressed is not upgraded under its compression: no TLS then.
    let tls_v1 = conn.config.tls.is_some() && data.tls_v1.unwrap_or(false) && (conn.tls || !compressed);
    conn.identity.deflate_level = deflate_level;
    conn.identity.snappy = snappy;
    let response = IdentifyResponse {
        max_rdy_count: conn.config.max_rdy_count,
        version: NSQD_VERSION,
        max_msg_timeout: conn.config.max_msg_timeout.as_millis() as i64,
        msg_timeout: conn.identity.msg_timeout.as_millis() as i64,
        tls_v1,
        deflate: deflate_level.is_some(),
        deflate_level: deflate_level.unwrap_or(0),
        max_deflate_level: conn.config.max_deflate_level,
        snappy,
        sample_rate: i64::from(conn.identity.sample_rate),
        auth_required: conn.config.auth.is_some(),
        output_buffer_size: conn.identity.output_buffer_size,
        output_buffer_timeout: conn.config.output_buffer_timeout.as_millis() as i64,
    };
    let json = serde_json::to_vec(&response).map_err(|e| NsqError::fatal("E_IDENTIFY_FAILED", e.to_string()))?;
    conn.respond(&json);
    // TLS first, then compression, as nsqd upgrades (the connection runs both in that order).
    conn.tls_pending = tls_v1 && !conn.tls;
    if compressed {
        return Ok(());
    }
    if let Some(level) = deflate_level {
        conn.upgrade = Some(Upgrade {
            deflater: Deflater::deflate(level),
            inflater: Inflater::Deflate(Box::new(flate2::Decompress::new(false))),
        });
    } else if snappy {
        conn.upgrade =
            Some(Upgrade { deflater: Deflater::snappy(), inflater: Inflater::Snappy(snap::raw::Decoder::new()) });
    }
    Ok(())
}

/// Applies the negotiable settings with nsqd's ranges; `Err` is nsqd's reason text.
fn apply(conn: &mut Conn, data: &IdentifyData) -> Result<(), String> {
    let cfg = &conn.config;
    let id = &mut conn.identity;
    if let Some(client_id) = data.client_id.clone().or_else(|| data.short_id.clone()) {
        id.client_id = client_id;
    }
    if let Some(hostname) = data.hostname.clone().or_else(|| data.long_id.clone()) {
        id.hostname = hostname;
    }
    id.user_agent = data.user_agent.clone().unwrap_or_default();
    let (client_id, hostname, user_agent) = (id.client_id.clone(), id.hostname.clone(), id.user_agent.clone());
    conn.client.client().update(|details| {
        details.client_id = client_id;
        details.hostname = hostname;
        details.user_agent = user_agent;
    });
    let id = &mut conn.identity;
    id.heartbeat_interval = match data.heartbeat_interval.unwrap_or(0) {
        -1 => None,
        0 => Some(cfg.heartbeat_interval),
        ms if ms >= 1000 && ms as u128 <= cfg.max_heartbeat_interval.as_millis() => {
            Some(Duration::from_millis(ms as u64))
        }
        ms => return Err(format!("heartbeat interval ({ms}) is invalid")),
    };
    id.output_buffer_size = match data.output_buffer_size.unwrap_or(0) {
        -1 => 1,
        0 => cfg.output_buffer_size,
        n if n >= 64 && n as usize <= cfg.max_output_buffer_size => n as usize,
        n => return Err(format!("output buffer size ({n}) is invalid")),
    };
    match data.output_buffer_timeout.unwrap_or(0) {
        -1 | 0 => {}
        ms if ms >= 1 && ms as u128 <= cfg.max_output_buffer_timeout.as_millis() => {}
        ms => return Err(format!("output buffer timeout ({ms}) is invalid")),
    }
    let sample_rate = data.sample_rate.unwrap_or(0);
    if !(0..=99).contains(&sample_rate) {
        return Err(format!("sample rate ({sample_rate}) is invalid"));
    }
    id.sample_rate = sample_rate as i32;
    id.msg_timeout = match data.msg_timeout.unwrap_or(0) {
        0 => cfg.msg_timeout,
        ms if ms >= 1000 && ms as u128 <= cfg.max_msg_timeout.as_millis() => Duration::from_millis(ms as u64),
        ms => return Err(format!("msg timeout ({ms}) is invalid")),
    };
    Ok(())
}
