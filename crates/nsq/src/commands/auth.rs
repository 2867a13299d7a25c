//! AUTH <secret body>, and the permission check PUB/MPUB/DPUB/SUB run (nsqd's `CheckAuth`),
//! with nsqd's codes: `E_AUTH_DISABLED`, `E_AUTH_FAILED` (the source refused or failed; its
//! reason is logged, never sent), `E_UNAUTHORIZED`, `E_AUTH_FIRST`. All of them are fatal.

use crate::auth::{AuthRequest, Session};
use crate::codec::Command;
use crate::connection::{Conn, ConnState};
use crate::error::{NsqError, NsqResult};
use serde::Serialize;

#[derive(Serialize)]
struct AuthResponse<'a> {
    identity: &'a str,
    identity_url: &'a str,
    permission_count: usize,
}

pub async fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    if conn.state != ConnState::Init {
        return Err(NsqError::fatal("E_INVALID", "cannot AUTH in current state"));
    }
    if command.params.len() != 1 {
        return Err(NsqError::fatal("E_INVALID", "AUTH invalid number of parameters"));
    }
    let size = command.body_size.ok_or_else(|| NsqError::fatal("E_BAD_BODY", "AUTH failed to read body size"))?;
    let max = conn.config.max_body_size;
    if size > 0 && size as u32 > max {
        return Err(NsqError::fatal("E_BAD_BODY", format!("AUTH body too big {size} > {max}")));
    }
    if size <= 0 {
        return Err(NsqError::fatal("E_BAD_BODY", format!("AUTH invalid body size {size}")));
    }
    let body = command.body.as_ref().ok_or_else(|| NsqError::fatal("E_BAD_BODY", "AUTH failed to read body"))?;
    if conn.auth.as_ref().is_some_and(|s| !s.state.authorizations.is_empty()) {
        return Err(NsqError::fatal("E_INVALID", "AUTH already set"));
    }
    let Some(source) = conn.config.auth.clone() else {
        return Err(NsqError::fatal("E_AUTH_DISABLED", "AUTH disabled"));
    };
    // Go keeps the body's bytes as a string whatever they are; the secret goes out escaped.
    let secret = String::from_utf8_lossy(body).into_owned();
    let state = source.query(&request(conn, &secret)).await.map_err(|reason| {
        tracing::warn!(client = conn.id, remote = %conn.remote, reason, "AUTH failed");
        NsqError::fatal("E_AUTH_FAILED", "AUTH failed")
    })?;
    if state.authorizations.is_empty() {
        return Err(NsqError::fatal("E_UNAUTHORIZED", "AUTH no authorizations found"));
    }
    let response = AuthResponse {
        identity: &state.identity,
        identity_url: &state.identity_url,
        permission_count: state.authorizations.len(),
    };
    let json = serde_json::to_vec(&response).map_err(|e| NsqError::fatal("E_AUTH_ERROR", format!("AUTH error {e}")))?;
    tracing::info!(client = conn.id, remote = %conn.remote, identity = %state.identity, "nsq client authenticated");
    conn.auth = Some(Session { secret, state });
    conn.respond(&json);
    Ok(())
}

fn request<'a>(conn: &'a Conn, secret: &'a str) -> AuthRequest<'a> {
    AuthRequest { remote_ip: conn.remote.ip(), tls: conn.tls, common_name: &conn.common_name, secret }
}

/// nsqd's `CheckAuth`: with auth on, `verb` on `topic` (and `channel`, empty for a publish)
/// needs an earlier AUTH whose permissions, asked for again once their TTL ran out, allow it.
pub async fn check(conn: &mut Conn, verb: &str, topic: &str, channel: &str) -> NsqResult<()> {
    let Some(source) = conn.config.auth.clone() else { return Ok(()) };
    let Some(session) = conn.auth.as_ref().filter(|s| !s.state.authorizations.is_empty()) else {
        return Err(NsqError::fatal("E_AUTH_FIRST", format!("AUTH required before {verb}")));
    };
    if session.state.expired() {
        let secret = session.secret.clone();
        let state = source.query(&request(conn, &secret)).await.map_err(|reason| {
            tracing::warn!(client = conn.id, remote = %conn.remote, reason, "AUTH failed");
            NsqError::fatal("E_AUTH_FAILED", "AUTH failed")
        })?;
        conn.auth = Some(Session { secret, state });
    }
    match &conn.auth {
        Some(session) if session.state.allows(topic, channel) => Ok(()),
        _ => Err(NsqError::fatal("E_UNAUTHORIZED", format!("AUTH failed for {verb} on {topic:?} {channel:?}"))),
    }
}
