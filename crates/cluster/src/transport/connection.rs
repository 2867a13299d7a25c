//! One multiplexed connection to a peer, as its dialler sees it: calls are queued to one
//! writer, replies are matched to their calls by request id, in whatever order they come.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::TransportError;
use super::frame::{self, FrameKind};
use super::limits::WRITE_QUEUE_FRAMES_MAX;
use super::wire::{self, FrameReader, WireError};

/// Calls waiting for their reply, by request id; `None` once the connection is dead, so no
/// call can wait on it any more.
type Waiting = Mutex<Option<HashMap<u64, oneshot::Sender<Bytes>>>>;

pub(super) struct Connection {
    addr: String,
    /// The writer's queue: request frames, encoded.
    frames: mpsc::Sender<Bytes>,
    /// Shared with the reader task, which completes calls and, when the connection dies,
    /// drops every waiting sender (each call then fails with `ConnectionLost`).
    waiting: Arc<Waiting>,
    /// The task that owns the socket; aborted when the pool drops this connection.
    io: JoinHandle<()>,
}

impl Connection {
    /// Starts the reader and writer of a freshly dialled stream's two halves (a TCP stream's
    /// own, or a TLS stream's split).
    pub(super) fn start<R, W>(addr: String, read: R, write: W) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (frames, queued) = mpsc::channel(WRITE_QUEUE_FRAMES_MAX);
        let waiting: Arc<Waiting> = Arc::new(Mutex::new(Some(HashMap::new())));
        let io_waiting = waiting.clone();
        let writer_waiting = waiting.clone();
        let io_addr = addr.clone();
        let io = tokio::spawn(async move {
            let ended = tokio::select! {
                read = read_replies(FrameReader::new(read), &io_waiting) => read,
                written = wire::write_frames(write, queued, |frame| still_waited_for(&writer_waiting, frame))
                    => written.map_err(ReplyError::from),
            };
            // Fail every call still waiting, and any that would start waiting from now on.
            lock(&io_waiting).take();
            match ended {
                Ok(()) => tracing::debug!(peer = %io_addr, "cluster connection closed"),
                Err(error) => tracing::info!(peer = %io_addr, %error, "cluster connection lost"),
            }
        });
        Connection { addr, frames, waiting, io }
    }

    /// Still usable: neither side has closed it nor has it seen garbage.
    pub(super) fn is_alive(&self) -> bool {
        lock(&self.waiting).is_some()
    }

    /// Sends one encoded request frame (whose id is `id`) and waits for its reply's body. The
    /// caller bounds the wait; dropping this future forgets the call.
    pub(super) async fn call(&self, id: u64, frame: Bytes) -> Result<Bytes, TransportError> {
        let (done, reply) = oneshot::channel();
        match lock(&self.waiting).as_mut() {
            Some(waiting) => waiting.insert(id, done),
            None => return Err(self.lost()),
        };
        let _forget = Forget { waiting: &self.waiting, id };
        self.frames.send(frame).await.map_err(|_| self.lost())?;
        reply.await.map_err(|_| self.lost())
    }

    fn lost(&self) -> TransportError {
        TransportError::ConnectionLost { addr: self.addr.clone() }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.io.abort();
    }
}

/// Removes a call from the waiting map when it ends in any way (reply, timeout, cancel), so a
/// late reply finds nobody and the map does not grow.
struct Forget<'a> {
    waiting: &'a Waiting,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(waiting) = lock(self.waiting).as_mut() {
            waiting.remove(&self.id);
        }
    }
}

/// Why the reading side of a dialled connection stopped.
#[derive(Debug, thiserror::Error)]
enum ReplyError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("peer sent a request frame to its dialler")]
    RequestFrame,
}

/// Hands each reply to its waiting call; a reply nobody waits for (timed out) is dropped.
async fn read_replies<R: AsyncRead + Unpin>(mut reader: FrameReader<R>, waiting: &Waiting) -> Result<(), ReplyError> {
    while let Some(frame) = reader.next().await? {
        if frame.kind != FrameKind::Reply {
            return Err(ReplyError::RequestFrame);
        }
        let call = lock(waiting).as_mut().and_then(|waiting| waiting.remove(&frame.id));
        if let Some(call) = call {
            let _ = call.send(frame.body);
        }
    }
    Ok(())
}

/// Whether the call that queued this request frame still waits for its reply (one that timed
/// out or was dropped has left the map: `Forget`).
fn still_waited_for(waiting: &Waiting, frame: &Bytes) -> bool {
    match frame::request_id(frame) {
        Some(id) => lock(waiting).as_ref().is_some_and(|waiting| waiting.contains_key(&id)),
        None => true,
    }
}

/// The waiting map, even if a thread panicked while holding it: the map stays consistent
/// (every change is one insert or remove).
fn lock(waiting: &Waiting) -> MutexGuard<'_, Option<HashMap<u64, oneshot::Sender<Bytes>>>> {
    waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
