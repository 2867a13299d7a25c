//! Kafka framing: a 4-byte big-endian length, then that many bytes. Lengths are
//! checked against a maximum before anything is allocated.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Encodable;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame length {0} is negative or larger than the maximum {1}")]
    BadLength(i32, usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a frame's length prefix and checks it against `frame_bytes_max`, allocating
/// nothing, so the caller can reserve memory for the payload before it reads it.
/// `Ok(None)` is a clean end of stream between frames.
pub async fn read_length<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > frame_bytes_max {
        return Err(FrameError::BadLength(len, frame_bytes_max));
    }
    Ok(Some(len as usize))
}

/// Reads the `len` payload bytes that follow a length prefix `read_length` accepted.
pub async fn read_payload<R: AsyncRead + Unpin>(reader: &mut R, len: usize) -> Result<Bytes, FrameError> {
    let mut payload = BytesMut::zeroed(len);
    reader.read_exact(&mut payload).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(payload.freeze())
}

/// Encodes a complete response frame: length, response header, body.
pub fn response_frame<R: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &R,
    version: i16,
) -> anyhow::Result<Bytes> {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let mut frame = BytesMut::with_capacity(4 + size);
    frame.put_i32(i32::try_from(size)?);
    header.encode(&mut frame, header_version)?;
    body.encode(&mut frame, version)?;
    Ok(frame.freeze())
}
