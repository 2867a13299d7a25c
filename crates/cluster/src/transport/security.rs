//! How node-to-node connections are secured: plain TCP, or mutual TLS under the cluster's own
//! CA (`sluice_tls::PeerTls`). With TLS, a connection reaches the frame reader only after a
//! completed handshake: a plaintext peer, or one whose certificate another CA signed, is
//! refused there and never speaks Raft. Refusals are logged, at most one line per
//! [`REFUSAL_LOG_INTERVAL`], so a peer retrying every second cannot flood the log.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sluice_tls::{ClientTlsStream, PeerTls, TlsStream};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::limits::{CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT};

/// A node logs refused handshakes at most this often (the first at once), with how many it
/// did not log in between.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What secures this node's cluster connections, both ways.
#[derive(Clone, Default)]
pub enum PeerSecurity {
    /// Plain TCP: anyone who reaches the cluster address can speak Raft (loopback, a
    /// private network).
    #[default]
    Plaintext,
    /// Mutual TLS: every peer shows a certificate of the cluster's CA.
    MutualTls(Arc<PeerTls>),
}

/// A dialled connection to a peer.
pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out after {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("cluster address {0:?} has no host usable as a TLS name")]
    BadName(String),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
}

impl DialError {
    /// The peer's process answered and refused the connection: nothing listens there.
    pub fn is_refused(&self) -> bool {
        matches!(self, DialError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    }

    /// The TCP connection was made but TLS failed: a setup problem worth an operator's eye.
    fn is_handshake(&self) -> bool {
        matches!(self, DialError::Handshake(_) | DialError::HandshakeTimeout | DialError::BadName(_))
    }
}

impl PeerSecurity {
    pub fn is_tls(&self) -> bool {
        matches!(self, PeerSecurity::MutualTls(_))
    }

    /// Dials the peer at `addr` (HOST:PORT) and, under mutual TLS, completes the handshake,
    /// the peer's certificate checked against the cluster's CA and `addr`'s host.
    pub async fn connect(&self, addr: &str) -> Result<PeerStream, DialError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(DialError::Connect(error)),
            Err(_) => return Err(DialError::ConnectTimeout),
        };
        // Raft heartbeats are small and latency-bound: no Nagle delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(peer = addr, %error, "set_nodelay failed");
        }
        let PeerSecurity::MutualTls(tls) = self else {
            return Ok(PeerStream::Plain(stream));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let name = sluice_tls::server_name(host).map_err(|_| DialError::BadName(addr.to_owned()))?;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connector().connect(name, stream)).await {
            Ok(Ok(stream)) => Ok(PeerStream::Tls(Box::new(stream))),
            Ok(Err(error)) => Err(DialError::Handshake(error)),
            Err(_) => Err(DialError::HandshakeTimeout),
        }
    }
}

/// The server's side of the handshake: the TLS stream, or why the peer was refused.
pub(super) async fn accept_tls(tls: &PeerTls, stream: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("handshake not finished within {HANDSHAKE_TIMEOUT:?}")),
    }
}

/// The subject of the certificate a TLS peer showed, for logs.
pub(super) fn peer_subject(stream: &TlsStream<TcpStream>) -> Option<String> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    sluice_tls::subject_dn(certificate.as_ref())
}

impl AsyncRead for PeerStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            PeerStream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

/// Handshake failures of one side (the listener's, or the dialler's), logged rate-limited.
#[derive(Default)]
pub(super) struct Refusals {
    /// When the last line was logged, and failures since then not logged.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Refusals {
    /// A peer that connected to this node was refused at the handshake.
    pub(super) fn accepted_peer(&self, peer: SocketAddr, reason: &str) {
        if let Some(unlogged) = self.due() {
            tracing::warn!(%peer, reason, refused_unlogged = unlogged,
                "cluster connection refused at the TLS handshake (a plaintext peer, or a certificate not of the cluster's CA)");
        }
    }

    /// A dial to a peer failed at its handshake (or could not start one).
    pub(super) fn dialled_peer(&self, addr: &str, error: &DialError) {
        if !error.is_handshake() {
            return;
        }
        if let Some(unlogged) = self.due() {
            tracing::warn!(peer = addr, %error, failed_unlogged = unlogged,
                "cluster TLS handshake with a peer failed (its certificate not of the cluster's CA or not naming its address, or it is not a TLS peer)");
        }
    }

    /// Counts one failure; `Some(failures not logged since the last line)` when this one is
    /// to be logged.
    fn due(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (logged_at, unlogged) = &mut *state;
        if logged_at.is_some_and(|at| at.elapsed() < REFUSAL_LOG_INTERVAL) {
            *unlogged += 1;
            return None;
        }
        *logged_at = Some(Instant::now());
        Some(std::mem::take(unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_log_the_first_and_then_count_until_the_interval_passes() {
        let refusals = Refusals::default();
        assert_eq!(refusals.due(), Some(0), "the first is logged at once");
        assert_eq!(refusals.due(), None);
        assert_eq!(refusals.due(), None);
        refusals.state.lock().unwrap().0 = Some(Instant::now() - REFUSAL_LOG_INTERVAL);
        assert_eq!(refusals.due(), Some(2), "the next line says how many were not logged");
    }
}
