//! TLS for Sluice's listeners (Kafka, NSQ, HTTP, MQTT) and between cluster nodes (`peer`:
//! mutual TLS under the cluster's CA): PEM files into a rustls server configuration, the
//! client-certificate policy Kafka (`ssl.client.auth`) and nsqd (`--tls-client-auth-policy`)
//! both offer, a minimum protocol version, and a reload that swaps in new certificates for
//! new connections (SIGHUP) while established ones keep theirs; and the client side for
//! connections Sluice opens itself (`client`: nsqd's auth servers).
//!
//! No cryptography here: rustls with the `ring` provider does all of it.

mod client;
mod files;
mod peer;
mod reload;
mod subject;

pub use client::client_config;
pub use files::{ClientAuth, TlsError, TlsFiles, TlsVersion};
pub use peer::{server_name, PeerFiles, PeerTls};
pub use reload::{spawn_sighup_reload, Reload, ServerTls};
pub use rustls;
pub use subject::{subject_common_name, subject_dn};
pub use tokio_rustls::{client::TlsStream as ClientTlsStream, server::TlsStream, TlsAcceptor, TlsConnector};
