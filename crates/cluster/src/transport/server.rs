//! The transport's server: accepts peers' connections and answers their requests.
//!
//! Under mutual TLS a connection is served only once its handshake has completed, in the
//! connection's own task (a slow or silent peer holds up no other); a refused one is logged
//! (rate-limited) and closed. One task per connection reads frames; each request runs in its own task (so a slow group
//! does not hold up the others' RPCs), and all replies go out through one bounded writer. A bad
//! frame or body closes that connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::dispatch::{self, RpcHandler};
use super::frame::{self, FrameKind};
use super::limits::{CONNECTIONS_MAX, IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX, WRITE_QUEUE_FRAMES_MAX};
use super::message::{self, Reply, Rpc};
use super::security::{self, PeerSecurity, Refusals};
use super::wire::{self, FrameReader, WireError};

/// How long to wait after a failed accept (out of file descriptors, say) before the next:
/// retrying at once would spin on the same error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves peers on `listener`, secured as `security` says, until `shutdown` turns true (or its
/// sender is dropped). On shutdown every connection is closed at once and every request in
/// progress abandoned, as if the node had died: peers see their connections drop and retry
/// elsewhere.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn RpcHandler>,
    security: PeerSecurity,
    mut shutdown: watch::Receiver<bool>,
) {
    let refusals = Arc::new(Refusals::default());
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    // Dropped on return, which aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = stopped(&mut shutdown) => break,
        };
        while connections.try_join_next().is_some() {}
        let Some((stream, peer, slot)) = accepted else {
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            continue;
        };
        let (handler, security, refusals) = (handler.clone(), security.clone(), refusals.clone());
        connections.spawn(async move {
            let served = match &security {
                PeerSecurity::Plaintext => {
                    let (read, write) = stream.into_split();
                    serve_connection(read, write, handler).await
                }
                PeerSecurity::MutualTls(tls) => match security::accept_tls(tls, stream).await {
                    Ok(stream) => {
                        tracing::debug!(%peer, subject = ?security::peer_subject(&stream), "cluster peer connected over TLS");
                        let (read, write) = tokio::io::split(stream);
                        serve_connection(read, write, handler).await
                    }
                    Err(reason) => {
                        refusals.accepted_peer(peer, &reason);
                        Ok(())
                    }
                },
            };
            if let Err(error) = served {
                tracing::warn!(%peer, %error, "cluster connection closed");
            }
            drop(slot);
        });
    }
}

/// One accepted connection, once a connection slot is free; `None` after a failed accept.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    // The semaphore is never closed, so this cannot fail; treat it as a failed accept anyway.
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => {
            // Raft heartbeats are small and latency-bound: no Nagle delay (and the TLS
            // handshake's flights go out at once).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "set_nodelay failed");
            }
            Some((stream, peer, slot))
        }
        Err(error) => {
            tracing::warn!(%error, "cluster listener accept failed");
            None
        }
    }
}

/// Resolves once shutdown is asked for, or nobody can ask any more.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Why a server connection was closed.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("peer sent a reply frame to a server")]
    ReplyFrame,
    #[error("bad request body: {0}")]
    Body(#[from] message::CodecError),
}

/// Reads requests until the peer closes or misbehaves; the connection's request tasks and its
/// writer are dropped (aborted) with it.
async fn serve_connection<R, W>(read: R, write: W, handler: Arc<dyn RpcHandler>) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (replies, queued) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
    let mut requests = JoinSet::new();
    tokio::select! {
        read = read_requests(FrameReader::new(read), handler, replies, &mut requests) => read,
        written = wire::write_frames(write, queued, |_| true) => Ok(written?),
    }
}

/// Spawns one task per request, at most [`IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX`] at once.
async fn read_requests<R: AsyncRead + Unpin>(
    mut reader: FrameReader<R>,
    handler: Arc<dyn RpcHandler>,
    replies: mpsc::Sender<Bytes>,
    requests: &mut JoinSet<()>,
) -> Result<(), ConnectionError> {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX));
    while let Some(frame) = reader.next().await? {
        if frame.kind != FrameKind::Request {
            return Err(ConnectionError::ReplyFrame);
        }
        let rpc: Rpc = message::decode(&frame.body)?;
        // Never closed, so this cannot fail; stop reading if it ever does.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return Ok(());
        };
        let (handler, replies) = (handler.clone(), replies.clone());
        requests.spawn(async move {
            let reply = dispatch::answer(handler, rpc).await;
            if let Some(frame) = encode_reply(frame.id, &reply) {
                // Fails only when the connection is closing: the reply has nobody to go to.
                let _ = replies.send(frame).await;
            }
            drop(permit);
        });
        while requests.try_join_next().is_some() {}
    }
    Ok(())
}

/// The reply's frame, or a short "could not send" reply in its place when it is too large.
fn encode_reply(id: u64, reply: &Reply) -> Option<Bytes> {
    let failure = match message::encode(reply).map(|body| frame::encode_to_bytes(id, FrameKind::Reply, &body)) {
        Ok(Ok(frame)) => return Some(frame),
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    tracing::warn!(id, %failure, "cluster reply not sent");
    let fallback = dispatch::unsendable(reply, &failure)?;
    let body = message::encode(&fallback).ok()?;
    frame::encode_to_bytes(id, FrameKind::Reply, &body).ok()
}
