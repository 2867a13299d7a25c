//! Frames of the node-to-node transport: `[u32 len][u64 request id][u8 kind][bincode body]`.
//!
//! `len` counts everything after itself (id, kind, body) and is checked against
//! [`FRAME_BYTES_MAX`] before anything is reserved. "Need more bytes" is a normal outcome of
//! [`decode`], not an error. The frame knows nothing of what the body means (`message`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::limits::{FRAME_BYTES_MAX, FRAME_HEADER_AFTER_LEN_BYTES, FRAME_LEN_BYTES};

/// Which way a frame goes: a request from the dialling node, or the reply to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Request = 1,
    Reply = 2,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Reply),
            _ => None,
        }
    }
}

/// One whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Chosen by the caller, echoed by the reply: it pairs replies with calls on a shared,
    /// multiplexed connection where replies come back in any order.
    pub id: u64,
    pub kind: FrameKind,
    /// The bincode message (`message::Rpc` or `message::Reply`).
    pub body: Bytes,
}

/// Why bytes are not a frame. Any of these closes the connection: the stream has lost sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes is over the maximum of {FRAME_BYTES_MAX}")]
    Oversize { len: usize },
    #[error("frame of {len} bytes is too short for its id and kind")]
    Undersize { len: usize },
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
}

/// Appends one frame to `out`. Refuses a body that would make the frame oversize, so a node
/// never sends what its peer must refuse.
pub fn encode(id: u64, kind: FrameKind, body: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
    let len = FRAME_HEADER_AFTER_LEN_BYTES + body.len();
    if len > FRAME_BYTES_MAX {
        return Err(FrameError::Oversize { len });
    }
    out.reserve(FRAME_LEN_BYTES + len);
    // Cannot truncate: FRAME_BYTES_MAX fits a u32 (checked in `limits`).
    out.put_u32(len as u32);
    out.put_u64(id);
    out.put_u8(kind as u8);
    out.put_slice(body);
    Ok(())
}

/// One frame encoded on its own, ready for a writer queue.
pub fn encode_to_bytes(id: u64, kind: FrameKind, body: &[u8]) -> Result<Bytes, FrameError> {
    let mut out = BytesMut::new();
    encode(id, kind, body, &mut out)?;
    Ok(out.freeze())
}

/// The request id of an encoded frame (as `encode` lays it out), None when it is too short.
pub fn request_id(frame: &[u8]) -> Option<u64> {
    let id = frame.get(FRAME_LEN_BYTES..FRAME_LEN_BYTES + 8)?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

/// Takes one whole frame off the front of `buf`, or `Ok(None)` when more bytes are needed
/// (then `buf` is untouched, with room reserved for the rest of a frame whose length is known
/// and valid).
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < FRAME_LEN_BYTES {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(FrameError::Oversize { len });
    }
    if len < FRAME_HEADER_AFTER_LEN_BYTES {
        return Err(FrameError::Undersize { len });
    }
    let kind_byte = if buf.len() > FRAME_LEN_BYTES + 8 { Some(buf[FRAME_LEN_BYTES + 8]) } else { None };
    if let Some(byte) = kind_byte {
        if FrameKind::from_byte(byte).is_none() {
            return Err(FrameError::UnknownKind(byte));
        }
    }
    let whole = FRAME_LEN_BYTES + len;
    if buf.len() < whole {
        buf.reserve(whole - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(whole);
    frame.advance(FRAME_LEN_BYTES);
    let id = frame.get_u64();
    let kind_byte = frame.get_u8();
    let kind = FrameKind::from_byte(kind_byte).ok_or(FrameError::UnknownKind(kind_byte))?;
    Ok(Some(Frame { id, kind, body: frame.freeze() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_frame(id: u64, kind: FrameKind, body: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        encode(id, kind, body, &mut out).unwrap();
        out
    }

    #[test]
    fn request_id_reads_an_encoded_frame() {
        assert_eq!(
            request_id(&one_frame(0x0102_0304_0506_0708, FrameKind::Request, b"x")),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(request_id(&[0, 0, 0, 9, 1, 2]), None);
    }

    /// A frame decodes to what was encoded, and two frames in one buffer come out in order.
    #[test]
    fn round_trip_two_frames() {
        let mut buf = one_frame(7, FrameKind::Request, b"hello");
        buf.extend_from_slice(&one_frame(u64::MAX, FrameKind::Reply, b""));
        let first = decode(&mut buf).unwrap().unwrap();
        assert_eq!((first.id, first.kind, &first.body[..]), (7, FrameKind::Request, &b"hello"[..]));
        let second = decode(&mut buf).unwrap().unwrap();
        assert_eq!((second.id, second.kind, second.body.len()), (u64::MAX, FrameKind::Reply, 0));
        assert!(buf.is_empty());
        assert_eq!(decode(&mut buf), Ok(None));
    }

    /// Every torn prefix of a frame is "need more bytes", and leaves the buffer as it was.
    #[test]
    fn torn_frame_needs_more_bytes() {
        let whole = one_frame(42, FrameKind::Request, b"some body bytes");
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(&buf[..], &whole[..cut]);
        }
    }

    /// A length prefix over the maximum is refused before any allocation, from its 4 bytes.
    #[test]
    fn oversize_length_is_refused() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert_eq!(decode(&mut buf), Err(FrameError::Oversize { len: u32::MAX as usize }));
        assert!(buf.capacity() < 1024 * 1024, "nothing reserved for the claimed length");
        let len = (FRAME_BYTES_MAX + 1) as u32;
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        assert!(matches!(decode(&mut buf), Err(FrameError::Oversize { .. })));
    }

    /// A body that would make an oversize frame is refused at encode.
    #[test]
    fn oversize_body_is_refused_at_encode() {
        let body = vec![0u8; FRAME_BYTES_MAX];
        let mut out = BytesMut::new();
        assert!(matches!(encode(1, FrameKind::Request, &body, &mut out), Err(FrameError::Oversize { .. })));
        assert!(out.is_empty());
    }

    /// Too short a length, or an unknown kind, is an error (garbage), never a panic.
    #[test]
    fn garbage_is_an_error() {
        let mut short = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3][..]);
        assert_eq!(decode(&mut short), Err(FrameError::Undersize { len: 3 }));
        let mut bad_kind = one_frame(1, FrameKind::Request, b"x");
        bad_kind[FRAME_LEN_BYTES + 8] = 0xee;
        assert_eq!(decode(&mut bad_kind), Err(FrameError::UnknownKind(0xee)));
        // An unknown kind is seen as soon as its byte arrives, before the body does.
        let mut bad_kind_torn = BytesMut::from(&bad_kind[..FRAME_LEN_BYTES + 9]);
        assert_eq!(decode(&mut bad_kind_torn), Err(FrameError::UnknownKind(0xee)));
    }

    /// Pseudo-random bytes never panic the decoder.
    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut buf = BytesMut::new();
            for _ in 0..(state % 64) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                buf.put_u8(state as u8);
            }
            while let Ok(Some(_)) = decode(&mut buf) {}
        }
    }
}
