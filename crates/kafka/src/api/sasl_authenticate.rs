//! SaslAuthenticate (v0–v2) and the bare token frames that follow a SaslHandshake v0: each
//! carries one client token to the connection's exchange. A failed login is answered with
//! SASL_AUTHENTICATION_FAILED and Kafka's message after `FAILED_AUTHENTICATION_DELAY`, and
//! closes the connection, as Kafka does.

use super::str_bytes;
use crate::dispatch::{later, DispatchError, Reply, RequestMeta};
use crate::error_codes::{ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED};
use crate::sasl::failed_logins::FAILED_AUTHENTICATION_DELAY;
use crate::sasl::{Principal, SaslState, Security, TokenOutcome};
use crate::session::Session;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

pub fn handle(
    security: &Security,
    session: &mut Session,
    request: SaslAuthenticateRequest,
    meta: RequestMeta,
) -> Result<Reply, DispatchError> {
    let mut response = SaslAuthenticateResponse::default();
    match step(security, session, &request.auth_bytes) {
        Some(TokenOutcome::Continue(challenge)) => response.auth_bytes = challenge.into(),
        Some(TokenOutcome::Authenticated { reply, .. }) => {
            response.auth_bytes = reply.into();
            // KIP-368 (v1+): how long this login lasts; 0: forever.
            response.session_lifetime_ms = security.reauth_max.map_or(0, |d| d.as_millis() as i64);
        }
        Some(TokenOutcome::Failed { message, .. }) => {
            response.error_code = SASL_AUTHENTICATION_FAILED;
            response.error_message = Some(str_bytes(&message));
            let frame = meta.respond(&response)?;
            return Ok(later(async move {
                tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                Ok(Some(frame))
            }));
        }
        None => {
            response.error_code = ILLEGAL_SASL_STATE;
            response.error_message = Some(str_bytes("SaslAuthenticate without a SaslHandshake v1 before it"));
            session.close_after_reply = true;
        }
    }
    meta.respond(&response).map(Reply::Now)
}

/// A bare token frame after a SaslHandshake v0: answered with a bare frame; a failure closes
/// the connection without an answer (the v0 exchange has no way to carry an error).
pub fn raw(security: &Security, session: &mut Session, token: &[u8]) -> Reply {
    match step(security, session, token) {
        Some(TokenOutcome::Continue(challenge)) => Reply::Now(raw_frame(&challenge)),
        Some(TokenOutcome::Authenticated { reply, .. }) => Reply::Now(raw_frame(&reply)),
        Some(TokenOutcome::Failed { .. }) | None => {
            session.close_after_reply = true;
            later(async move {
                tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                Ok(None)
            })
        }
    }
}

fn raw_frame(token: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(4 + token.len());
    frame.put_u32(token.len() as u32);
    frame.put_slice(token);
    frame.freeze()
}

/// Feeds a token to the session's exchange and moves the session on; None when no exchange
/// is under way.
fn step(security: &Security, session: &mut Session, token: &[u8]) -> Option<TokenOutcome> {
    let SaslState::Exchanging { exchange, .. } = &mut session.sasl else {
        return None;
    };
    let mechanism = exchange.mechanism();
    let mut outcome = exchange.step(token, security, session.peer.ip());
    if let (TokenOutcome::Authenticated { user, .. }, Some(before)) = (&outcome, &session.reauthenticating) {
        let now = Principal::user(user.clone());
        if now != *before {
            // Kafka's rule and wording: a connection keeps its principal.
            let message = format!("Cannot change principals during re-authentication from {before}: {now}");
            outcome = TokenOutcome::Failed { user: Some(user.clone()), reason: message.clone(), message };
        }
    }
    match &outcome {
        TokenOutcome::Continue(_) => {}
        TokenOutcome::Authenticated { user, .. } => {
            let renewed = session.reauthenticating.take().is_some();
            session.principal = Principal::user(user.clone());
            session.sasl = SaslState::Authenticated { mechanism };
            session.login_expires = security.reauth_max.map(|d| std::time::Instant::now() + d);
            match renewed {
                true => tracing::debug!(peer = %session.peer, principal = %session.principal, "SASL re-authentication"),
                false => tracing::info!(peer = %session.peer, principal = %session.principal, "SASL login"),
            }
        }
        TokenOutcome::Failed { user, reason, .. } => {
            tracing::warn!(peer = %session.peer, user = user.as_deref().unwrap_or("?"), %reason, "SASL login failed");
            session.sasl = SaslState::Start;
            session.close_after_reply = true;
        }
    }
    Some(outcome)
}
