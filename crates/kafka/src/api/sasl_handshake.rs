//! SaslHandshake (v0, v1): the client names a mechanism. v1 means SaslAuthenticate requests
//! follow; v0 means bare token frames follow (kafka-python 2.0). On a listener without SASL,
//! or after a login, Kafka answers ILLEGAL_SASL_STATE, unless logins expire
//! (`connections.max.reauth.ms`): then a v1 handshake after a login starts a
//! re-authentication (KIP-368), with the mechanism of the first login only.

use super::str_bytes;
use crate::error_codes::{ILLEGAL_SASL_STATE, NONE, UNSUPPORTED_SASL_MECHANISM};
use crate::sasl::{Exchange, SaslState, MECHANISMS};
use crate::session::Session;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

pub fn handle(
    session: &mut Session,
    request: SaslHandshakeRequest,
    version: i16,
    reauth: bool,
) -> SaslHandshakeResponse {
    let mut response = SaslHandshakeResponse::default();
    response.mechanisms = MECHANISMS.iter().map(|m| str_bytes(m)).collect();
    // The mechanism a re-authentication must use again.
    let renewing = match session.sasl {
        SaslState::Authenticated { mechanism } if reauth && version >= 1 => Some(mechanism),
        _ => None,
    };
    let usable =
        session.listener.protocol.uses_sasl() && (matches!(session.sasl, SaslState::Start) || renewing.is_some());
    response.error_code = match (usable, Exchange::start(&request.mechanism)) {
        (false, _) => ILLEGAL_SASL_STATE,
        (true, None) => UNSUPPORTED_SASL_MECHANISM,
        (true, Some(exchange)) if renewing.is_some_and(|m| m != exchange.mechanism()) => ILLEGAL_SASL_STATE,
        (true, Some(exchange)) => {
            if renewing.is_some() {
                session.reauthenticating = Some(session.principal.clone());
            }
            session.sasl = SaslState::Exchanging { exchange, raw: version == 0 };
            NONE
        }
    };
    if response.error_code != NONE {
        tracing::info!(peer = %session.peer, mechanism = %request.mechanism.as_str(), code = response.error_code,
            "SASL handshake refused");
        // Kafka closes the connection after a refused handshake.
        session.close_after_reply = true;
    }
    response
}
