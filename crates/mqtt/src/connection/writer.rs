//! The connection's writer: replies in the order their packets came, each written once
//! ready (an acknowledgement once its append is durable), bounded in time blocked.

use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
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

/// Writes replies in order: one waiting for an append is written once that append is
/// durable, and everything queued after it waits for it. Ends on a close, an error, or a
/// write blocked past `write_timeout` (a client that never reads).
pub(super) async fn write_replies<W: AsyncWrite + Unpin>(
    writer: W,
    mut queued: mpsc::Receiver<Reply>,
    write_timeout: Duration,
) {
    let mut writer = BufWriter::new(writer);
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
        if let Some(bytes) = bytes {
            if !matches!(tokio::time::timeout(write_timeout, writer.write_all(&bytes)).await, Ok(Ok(()))) {
                return;
            }
        }
        let flush_now = close || queued.is_empty();
        if flush_now && !matches!(tokio::time::timeout(write_timeout, writer.flush()).await, Ok(Ok(()))) {
            return;
        }
        if close {
            break;
        }
    }
    let _ = tokio::time::timeout(write_timeout, writer.shutdown()).await;
}
