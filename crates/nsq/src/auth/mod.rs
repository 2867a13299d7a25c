//! AUTH as nsqd does it: when an auth source is configured, IDENTIFY answers
//! `"auth_required": true`, the client sends `AUTH` with a secret, and the source answers
//! with the secret's permissions (publish and/or subscribe on topics and channels given as
//! regular expressions) for a TTL, after which they are asked for again.
//!
//! Two sources: Sluice's own tokens file (`tokens`), then nsqd-style auth servers.
//!
//! `reply` parses and checks the source's answer (nsqd's `internal/auth`); `http_source` asks
//! an nsqd-style auth server (`--auth-http-address`) over HTTP/1.1, plain or TLS.

mod http_source;
mod reply;
mod tokens;

pub use http_source::{encode_json, encode_query, parse_address, parse_response, Endpoint};
pub use reply::{parse_reply, AuthState, Authorization};
pub use sluice_tls::subject_common_name;
pub use tokens::Tokens;

use std::net::IpAddr;
use std::time::Duration;

/// nsqd's `--http-client-request-timeout` default: one query to one auth server, connect
/// included, gets this long before the next server is tried.
pub const AUTH_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where secrets are checked: the tokens file, then nsqd's `--auth-http-address` servers,
/// tried in turn.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// `--nsq-auth-tokens-file`, asked first.
    pub tokens: Option<std::sync::Arc<Tokens>>,
    /// `host:port` (asked at `/auth`) or a full `http://` or `https://` URL, as nsqd's flag
    /// takes them.
    pub http_addresses: Vec<String>,
    /// nsqd's client TLS settings, for `https://` servers (none when no address is one).
    pub client_tls: Option<std::sync::Arc<sluice_tls::rustls::ClientConfig>>,
    /// nsqd's `--auth-http-request-method`.
    pub method: AuthMethod,
    pub timeout: Duration,
}

/// How the auth server is asked (nsqd's `--auth-http-request-method`, `get` by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// The parameters in the query string.
    #[default]
    Get,
    /// The parameters as a JSON body, as Go marshals `url.Values`: `{"secret":["..."],...}`.
    Post,
}

/// What nsqd tells its auth server about the connection.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    pub remote_ip: IpAddr,
    pub tls: bool,
    /// The client certificate's subject common name, or empty.
    pub common_name: &'a str,
    pub secret: &'a str,
}

/// A connection's authentication: the secret it sent and what the source granted.
#[derive(Debug)]
pub struct Session {
    pub secret: String,
    pub state: AuthState,
}

impl Authenticator {
    /// Asks each server in turn, starting at a rotating one (nsqd starts at a random one), until
    /// one answers acceptably. The error says why each failed; it is logged, never sent to the
    /// client (nsqd does not leak auth server errors to untrusted clients).
    pub async fn query(&self, request: &AuthRequest<'_>) -> Result<AuthState, String> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if let Some(state) = self.tokens.as_ref().and_then(|tokens| tokens.lookup(request.secret)) {
            return Ok(state);
        }
        let count = self.http_addresses.len();
        if count == 0 {
            return Err("not a known token and no auth server configured".into());
        }
        let start = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..count {
            let address = &self.http_addresses[(start + i) % count];
            match http_source::query(address, request, self.method, self.client_tls.as_ref(), self.timeout).await {
                Ok(state) => return Ok(state),
                Err(e) => errors.push(format!("failed to auth against {address} - {e}")),
            }
        }
        Err(errors.join("; "))
    }
}
