//! The connection's writer: replies in the order their packets came, each written once
//! ready (an acknowledgement once its append is durable), bounded in time blocked.

use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the writer does with one queued reply once it is ready.
pub(super) enum Outcome {
    Send(Vec<u8>),
    /// Send, then close the connection (a failed publish a 3.1.1 client cannot be told of
    /// otherwise, or a v5 DISCONNECT).
    SendThenClose(Vec<u8>),
    Close,
}

/// A reply in the connection's order: ready now, or once an append is durable.
pub(super) enum Reply {
    Now(Outcome),
    Later(JoinHandle<Outcome>),
}

/// Replies queued together are joined up to this many bytes per write (a reply this large
/// or larger is written by itself): few system calls for a busy connection.
const WRITE_BATCH_BYTES: usize = 8 * 1024;
/// The batch buffer is freed after this many flushes in a row that did not use it (each
/// written one lone reply): a connection gone quiet keeps no buffer, while a busy one, whose
/// flushes alternate between batches and lone replies, keeps it rather than allocating it
/// again for every batch (measured slower at fan-out to 50 subscribers).
const UNBATCHED_FLUSHES_BEFORE_FREE: u32 = 8;

/// Writes replies in order: one waiting for an append is written once that append is
/// durable, and everything queued after it waits for it. Ends on a close, an error, or a
/// write blocked past `write_timeout` (a client that never reads). Replies queued behind
/// each other are joined into one write; an idle connection's writer holds no buffer
/// (`UNBATCHED_FLUSHES_BEFORE_FREE`).
pub(super) async fn write_replies<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queued: mpsc::Receiver<Reply>,
    write_timeout: Duration,
) {
    let mut batch: Vec<u8> = Vec::new();
    let mut unbatched_flushes = 0u32;
    while let Some(reply) = queued.recv().await {
        let outcome = match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(task) => task.await.unwrap_or(Outcome::Close),
        };
        let (bytes, close) = match outcome {
            Outcome::Send(bytes) => (Some(bytes), false),
            Outcome::SendThenClose(bytes) => (Some(bytes), true),
            Outcome::Close => (None, true),
        };
        let last = close || queued.is_empty();
        if let Some(bytes) = bytes {
            if bytes.len() >= WRITE_BATCH_BYTES || (last && batch.is_empty()) {
                // Nothing to join it with: written from where it is.
                let written =
                    write(&mut writer, &batch, write_timeout).await && write(&mut writer, &bytes, write_timeout).await;
                if !written {
                    return;
                }
                batch.clear();
            } else {
                if batch.capacity() == 0 {
                    // Its full size at once: a batch does not grow by reallocating.
                    batch.reserve(WRITE_BATCH_BYTES);
                }
                batch.extend_from_slice(&bytes);
            }
        }
        if last || batch.len() >= WRITE_BATCH_BYTES {
            unbatched_flushes = if batch.is_empty() { unbatched_flushes.saturating_add(1) } else { 0 };
            if !write(&mut writer, &batch, write_timeout).await {
                return;
            }
            batch.clear();
        }
        if last {
            if !matches!(tokio::time::timeout(write_timeout, writer.flush()).await, Ok(Ok(()))) {
                return;
            }
            if unbatched_flushes >= UNBATCHED_FLUSHES_BEFORE_FREE {
                batch = Vec::new();
            }
        }
        if close {
            break;
        }
    }
    let _ = tokio::time::timeout(write_timeout, writer.shutdown()).await;
}

/// Writes all of `bytes` (nothing when empty); false on an error or past `write_timeout`.
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8], write_timeout: Duration) -> bool {
    bytes.is_empty() || matches!(tokio::time::timeout(write_timeout, writer.write_all(bytes)).await, Ok(Ok(())))
}
