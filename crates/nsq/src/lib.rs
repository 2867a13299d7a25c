//! The nsqd TCP protocol V2 over Sluice's durable channels.
//!
//! `server` accepts connections and reads the magic; `connection` runs one task per client
//! (reading commands, pumping messages, heartbeats, bounded output); `codec` frames commands
//! and responses; `commands` holds one handler per verb, dispatched by one flat `match`.
//! `announce` registers the node with nsqlookupd instances over `lookup_peer`, the nsqd side
//! of lookupd's TCP protocol. `tls_upgrade` upgrades a connection to TLS after IDENTIFY;
//! `auth` checks AUTH secrets with an nsqd-style auth server.

pub mod announce;
pub mod auth;
mod codec;
mod commands;
mod compress;
mod connection;
mod error;
mod lookup_peer;
mod server;
mod tls_upgrade;

pub use lookup_peer::PeerInfo;
pub use server::serve;
pub use tls_upgrade::NsqTls;

#[doc(hidden)]
pub use commands::fuzz_entry;

use std::time::Duration;

/// The nsqd version this listener reports in IDENTIFY and `/info`.
pub const NSQD_VERSION: &str = "1.3.0";

/// Limits and defaults, named as nsqd's options (`nsqd --help`).
#[derive(Debug, Clone)]
pub struct NsqConfig {
    /// Largest single message body (PUB, DPUB, each MPUB message), bytes.
    pub max_msg_size: u32,
    /// Largest MPUB or IDENTIFY body, bytes.
    pub max_body_size: u32,
    /// Default in-flight timeout before a message is redelivered.
    pub msg_timeout: Duration,
    /// Longest timeout a client may ask for (IDENTIFY msg_timeout, TOUCH).
    pub max_msg_timeout: Duration,
    /// Largest RDY count a client may set.
    pub max_rdy_count: i64,
    /// Longest REQ delay and DPUB deferral.
    pub max_req_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_heartbeat_interval: Duration,
    pub output_buffer_size: usize,
    pub max_output_buffer_size: usize,
    pub output_buffer_timeout: Duration,
    pub max_output_buffer_timeout: Duration,
    pub max_deflate_level: u32,
    /// Longest a write to a client may block before it is disconnected (a client that never
    /// reads must not hold its connection, or memory, forever).
    pub write_timeout: Duration,
    /// TLS offered in IDENTIFY (`tls_v1`), and whether it is required (nsqd's `--tls-*`).
    pub tls: Option<NsqTls>,
    /// Where AUTH secrets are checked (nsqd's `--auth-http-address`); `None`: no AUTH.
    pub auth: Option<std::sync::Arc<auth::Authenticator>>,
}

impl Default for NsqConfig {
    fn default() -> Self {
        NsqConfig {
            max_msg_size: 1_048_576,
            max_body_size: 5_242_880,
            msg_timeout: Duration::from_secs(60),
            max_msg_timeout: Duration::from_secs(15 * 60),
            max_rdy_count: 2500,
            max_req_timeout: sluice_broker::channel::REQ_DELAY_MAX,
            heartbeat_interval: Duration::from_secs(30),
            max_heartbeat_interval: Duration::from_secs(60),
            output_buffer_size: 16 * 1024,
            max_output_buffer_size: 64 * 1024,
            output_buffer_timeout: Duration::from_millis(250),
            max_output_buffer_timeout: Duration::from_secs(30),
            max_deflate_level: 6,
            write_timeout: Duration::from_secs(10),
            tls: None,
            auth: None,
        }
    }
}
