//! Socket halves ↔ frames, shared by both ends of a connection.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::frame::{self, Frame, FrameError};
use super::limits::READ_CHUNK_BYTES;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(super) enum WireError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("peer closed the connection inside a frame ({0} bytes unread)")]
    TornAtClose(usize),
}

/// Reads frames off one socket half, in order.
pub(super) struct FrameReader<R> {
    read: R,
    /// Bytes read but not yet a whole frame.
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(read: R) -> Self {
        FrameReader { read, buf: BytesMut::with_capacity(READ_CHUNK_BYTES) }
    }

    /// The next frame; `Ok(None)` when the peer closed cleanly between frames.
    pub(super) async fn next(&mut self) -> Result<Option<Frame>, WireError> {
        loop {
            if let Some(frame) = frame::decode(&mut self.buf)? {
                return Ok(Some(frame));
            }
            // `decode` reserved room for a frame whose (checked) length it knows; otherwise
            // read in chunks.
            if self.buf.capacity() - self.buf.len() < READ_CHUNK_BYTES {
                self.buf.reserve(READ_CHUNK_BYTES);
            }
            let read = match self.read.read_buf(&mut self.buf).await {
                Ok(read) => read,
                // A TLS peer that closed without close_notify (killed, or a node dropping its
                // sockets at shutdown, as every node does) has closed as TCP peers do: the
                // frames are length-prefixed, so a cut inside one is still `TornAtClose`.
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(error) => return Err(error.into()),
            };
            if read == 0 {
                return match self.buf.len() {
                    0 => Ok(None),
                    unread => Err(WireError::TornAtClose(unread)),
                };
            }
        }
    }
}

/// Bytes buffered before a flush while more frames are queued: coalesces many small RPCs
/// (heartbeats of many groups) into few writes.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Writes every queued frame that is still `wanted` to the socket half until all senders are
/// gone, flushing whenever the queue runs dry.
///
/// A dialler's request whose caller has already given up (timed out) is not wanted: sending
/// it would only delay the requests queued behind it. Under load that matters: openraft
/// retries a timed-out AppendEntries at once, so without the skip a backlog of abandoned
/// megabyte-sized entries can keep every later request on the connection, heartbeats
/// included, past its deadline (seen as 30 s of 75 ms timeouts between two nodes).
pub(super) async fn write_frames<W: AsyncWrite + Unpin>(
    write: W,
    mut frames: mpsc::Receiver<Bytes>,
    wanted: impl Fn(&Bytes) -> bool,
) -> Result<(), WireError> {
    let mut write = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(frame) = frames.recv().await {
        if wanted(&frame) {
            write.write_all(&frame).await?;
        }
        while let Ok(frame) = frames.try_recv() {
            if wanted(&frame) {
                write.write_all(&frame).await?;
            }
        }
        write.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::{encode_to_bytes, request_id, FrameKind};

    #[tokio::test]
    async fn frames_no_longer_wanted_are_not_written() {
        let (near, far) = tokio::io::duplex(1 << 16);
        let (queue, queued) = mpsc::channel(8);
        for id in 1..=3u64 {
            queue.send(encode_to_bytes(id, FrameKind::Request, b"body").unwrap()).await.unwrap();
        }
        drop(queue);
        write_frames(near, queued, |frame| request_id(frame) != Some(2)).await.unwrap();
        let mut reader = FrameReader::new(far);
        let mut ids = Vec::new();
        while let Some(frame) = reader.next().await.unwrap() {
            ids.push(frame.id);
        }
        assert_eq!(ids, vec![1, 3]);
    }
}
