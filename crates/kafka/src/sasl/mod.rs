//! SASL authentication as Kafka serves it (KIP-43, KIP-84, KIP-152): SaslHandshake picks a
//! mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); then the tokens come either in
//! SaslAuthenticate requests (handshake v1) or as bare length-prefixed frames (handshake v0,
//! as kafka-python 2.0 sends them). On a SASL listener nothing but ApiVersions, SaslHandshake
//! and SaslAuthenticate is served before a login succeeds; a failed login is answered with
//! Kafka's message after a delay, counted against the source address, and closes the
//! connection. With `connections.max.reauth.ms` (KIP-368) a login lasts that long: the
//! SaslAuthenticate answer says so, the client logs in again on the same connection (same
//! mechanism, same principal) before it ends, and a request after it closes the connection.

pub mod credentials;
pub mod failed_logins;
pub mod plain;
pub mod scram;
pub mod security_log;

use credentials::Credentials;
use failed_logins::FailedLogins;
use scram::{ScramMechanism, ScramServer, ScramStep};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Mechanisms offered, in the order SaslHandshake lists them.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Kafka's `PlainSaslServer` message for a wrong user or password.
pub const PLAIN_FAILED: &str = "Authentication failed: Invalid username or password";
/// Said to an address past its failed logins, without checking the password.
pub const TOO_MANY_FAILURES: &str =
    "Authentication failed: too many failed authentication attempts from this address; retry later";

/// What every listener shares for authentication and authorization.
pub struct Security {
    pub credentials: Arc<Credentials>,
    pub failed_logins: FailedLogins,
    /// The ACL authorizer; None: every principal may do everything (no authorizer).
    pub acls: Option<Arc<crate::acl::Acls>>,
    /// How long a SASL login lasts before the client must re-authenticate (Kafka
    /// `connections.max.reauth.ms`, KIP-368); None: forever, and no re-authentication.
    pub reauth_max: Option<Duration>,
    /// Client quotas (byte rates per user and client id).
    pub quotas: Arc<crate::quota::Quotas>,
}

impl Security {
    pub fn new(credentials: Arc<Credentials>) -> Security {
        Security {
            credentials,
            failed_logins: FailedLogins::default(),
            acls: None,
            reauth_max: None,
            quotas: Arc::new(crate::quota::Quotas::in_memory()),
        }
    }

    pub fn with_quotas(mut self, quotas: Arc<crate::quota::Quotas>) -> Security {
        self.quotas = quotas;
        self
    }

    pub fn with_reauth_max(mut self, reauth_max: Option<Duration>) -> Security {
        self.reauth_max = reauth_max.filter(|d| !d.is_zero());
        self
    }

    pub fn with_acls(mut self, acls: Arc<crate::acl::Acls>) -> Security {
        self.acls = Some(acls);
        self
    }
}

/// What a user name and password given outside SASL (HTTP Basic on the admin API) led to.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordLogin {
    Authenticated(Principal),
    /// Wrong user or password; counted against the address.
    Failed,
    /// The address used up its failed logins (`failed_logins`); the password was not checked.
    Blocked,
}

impl Security {
    /// Checks `password` against `user`'s strongest SCRAM credential as a PLAIN login does
    /// (salted and hashed with the stored salt and iterations, StoredKey compared in constant
    /// time), sharing the per-address failed-login limit with the Kafka listeners. Blocking:
    /// the hashing takes milliseconds.
    pub fn check_password(&self, user: &str, password: &[u8], peer: IpAddr) -> PasswordLogin {
        if self.failed_logins.is_blocked(peer) {
            return PasswordLogin::Blocked;
        }
        let valid =
            self.credentials.strongest(user).is_some_and(|(mechanism, c)| c.verify_password(mechanism, password));
        if !valid {
            self.failed_logins.record_failure(peer);
            return PasswordLogin::Failed;
        }
        PasswordLogin::Authenticated(Principal::user(user))
    }
}

/// Who a connection acts as, in Kafka's `KafkaPrincipal` form (`User:alice`): the SASL user,
/// the client certificate's subject on SSL, `User:ANONYMOUS` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Principal {
        Principal { name: name.into() }
    }

    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User:{}", self.name)
    }
}

/// Where a connection is in its SASL exchange.
pub enum SaslState {
    /// No handshake yet.
    Start,
    /// A mechanism was chosen; `raw` (handshake v0) means tokens come as bare frames.
    Exchanging { exchange: Exchange, raw: bool },
    /// Logged in with `mechanism`; a second handshake is a re-authentication (KIP-368) when
    /// logins expire, refused otherwise.
    Authenticated { mechanism: &'static str },
}

/// One mechanism's server side.
pub enum Exchange {
    Plain,
    /// Boxed: most connections never hold one, and the session stays small.
    Scram(Box<ScramServer>),
}

impl Exchange {
    /// The exchange for a mechanism Kafka names, if offered.
    pub fn start(mechanism: &str) -> Option<Exchange> {
        if mechanism == "PLAIN" {
            return Some(Exchange::Plain);
        }
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.name() == mechanism)
            .map(|m| Exchange::Scram(Box::new(ScramServer::new(m))))
    }

    /// The mechanism's name as SaslHandshake carries it.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Exchange::Plain => "PLAIN",
            Exchange::Scram(server) => server.mechanism().name(),
        }
    }

    fn failure_message(&self) -> String {
        match self {
            Exchange::Plain => PLAIN_FAILED.to_string(),
            Exchange::Scram(server) => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                server.mechanism().name()
            ),
        }
    }

    /// Feeds one client token.
    pub fn step(&mut self, token: &[u8], security: &Security, peer: IpAddr) -> TokenOutcome {
        if security.failed_logins.is_blocked(peer) {
            return TokenOutcome::Failed {
                user: None,
                reason: "too many failed logins from this address".into(),
                message: TOO_MANY_FAILURES.into(),
            };
        }
        let message = self.failure_message();
        let outcome = match self {
            Exchange::Plain => match plain::parse(token) {
                Ok(login) => {
                    let valid = security
                        .credentials
                        .strongest(login.user)
                        .is_some_and(|(mechanism, c)| c.verify_password(mechanism, login.password));
                    match valid {
                        true => TokenOutcome::Authenticated { user: login.user.to_string(), reply: Vec::new() },
                        false => TokenOutcome::Failed {
                            user: Some(login.user.to_string()),
                            reason: "invalid username or password".into(),
                            message,
                        },
                    }
                }
                Err(e) => TokenOutcome::Failed { user: None, reason: e.to_string(), message },
            },
            Exchange::Scram(server) => {
                let mechanism = server.mechanism();
                match server.step(token, |user| security.credentials.get(user, mechanism)) {
                    ScramStep::Challenge(challenge) => TokenOutcome::Continue(challenge),
                    ScramStep::Success { user, final_message } => {
                        TokenOutcome::Authenticated { user, reply: final_message }
                    }
                    ScramStep::Failure { user, error } => {
                        TokenOutcome::Failed { user, reason: error.to_string(), message }
                    }
                }
            }
        };
        if matches!(outcome, TokenOutcome::Failed { .. }) {
            security.failed_logins.record_failure(peer);
        }
        outcome
    }
}

/// What one client token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenOutcome {
    /// Send this challenge; the exchange goes on.
    Continue(Vec<u8>),
    /// Logged in as `user`; send `reply` (empty for PLAIN, SCRAM's server-final message).
    Authenticated { user: String, reply: Vec<u8> },
    /// `reason` is for the log, `message` for the client (Kafka's wording).
    Failed { user: Option<String>, reason: String, message: String },
}
