//! What one connection knows about itself beyond its bytes: the listener that accepted it,
//! the peer, who it is (its principal, for authorization), and where it is in SASL.

use crate::listener::ListenerInfo;
use crate::sasl::{Principal, SaslState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub struct Session {
    pub listener: Arc<ListenerInfo>,
    pub peer: SocketAddr,
    /// `User:ANONYMOUS` until a SASL login (or a client certificate) says otherwise.
    pub principal: Principal,
    pub sasl: SaslState,
    /// Set by a request whose answer ends the connection (a failed login, as Kafka closes it):
    /// the reader stops once that answer is queued, and the writer closes after sending it.
    pub close_after_reply: bool,
    /// When the SASL login ends (KIP-368); after it only a re-authentication is served.
    pub login_expires: Option<Instant>,
    /// During a re-authentication, the principal logged in before it: the new login must be
    /// the same one, as Kafka requires.
    pub reauthenticating: Option<Principal>,
    /// Until when a throttled connection reads no further request (client quotas).
    pub mute: Arc<crate::quota::Mute>,
}

impl Session {
    pub fn new(listener: Arc<ListenerInfo>, peer: SocketAddr, principal: Option<Principal>) -> Session {
        Session {
            listener,
            peer,
            principal: principal.unwrap_or_else(Principal::anonymous),
            sasl: SaslState::Start,
            close_after_reply: false,
            login_expires: None,
            reauthenticating: None,
            mute: Arc::default(),
        }
    }

    /// Whether requests beyond the SASL exchange may be served: always on PLAINTEXT and SSL
    /// listeners, after a successful login on SASL ones.
    pub fn is_authenticated(&self) -> bool {
        !self.listener.protocol.uses_sasl() || matches!(self.sasl, SaslState::Authenticated { .. })
    }

    /// Whether the SASL login has ended without a re-authentication (KIP-368).
    pub fn login_expired(&self, now: Instant) -> bool {
        self.login_expires.is_some_and(|at| now >= at)
    }

    /// Whether this connection's principal may do `operation` on the resource (always, without
    /// an authorizer).
    pub fn may(&self, security: &crate::sasl::Security, operation: i8, resource_type: i8, name: &str) -> bool {
        let Some(acls) = &security.acls else { return true };
        let host = self.peer.ip().to_string();
        acls.authorize(&self.principal.to_string(), &host, operation, resource_type, name)
    }

    /// Whether the session may do `operation` on some resource of `resource_type`.
    pub fn may_any(&self, security: &crate::sasl::Security, operation: i8, resource_type: i8) -> bool {
        let Some(acls) = &security.acls else { return true };
        acls.authorize_any(&self.principal.to_string(), &self.peer.ip().to_string(), operation, resource_type)
    }

    /// Tokens come as bare frames (after a SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.sasl, SaslState::Exchanging { raw: true, .. })
    }
}
