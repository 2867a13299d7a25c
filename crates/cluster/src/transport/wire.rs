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
            if self.read.read_buf(&mut self.buf).await? == 0 {
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

/// Writes every queued frame to the socket half until all senders are gone, flushing whenever
/// the queue runs dry.
pub(super) async fn write_frames<W: AsyncWrite + Unpin>(
    write: W,
    mut frames: mpsc::Receiver<Bytes>,
) -> Result<(), WireError> {
    let mut write = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(frame) = frames.recv().await {
        write.write_all(&frame).await?;
        while let Ok(frame) = frames.try_recv() {
            write.write_all(&frame).await?;
        }
        write.flush().await?;
    }
    Ok(())
}
