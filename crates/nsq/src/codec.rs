//! Framing: commands in (a line of space-separated params, some followed by a 4-byte size and
//! a body) and frames out (`size`, `type`, `data`). "Need more bytes" is a normal outcome.

use bytes::{Buf, Bytes, BytesMut};

/// The client's first four bytes.
pub const MAGIC_V2: &[u8; 4] = b"  V2";
/// Longest command line (verb and params); nsqd's bufio reader holds 16 KiB.
pub const LINE_LEN_MAX: usize = 16 * 1024;
/// Params on one line (the longest command, REQ, has three).
pub const PARAMS_MAX: usize = 8;

pub const FRAME_TYPE_RESPONSE: i32 = 0;
pub const FRAME_TYPE_ERROR: i32 = 1;
pub const FRAME_TYPE_MESSAGE: i32 = 2;

/// One decoded command.
#[derive(Debug)]
pub struct Command {
    pub params: Vec<Bytes>,
    /// The body of PUB/MPUB/DPUB/IDENTIFY/AUTH when its size was acceptable.
    pub body: Option<Bytes>,
    /// The announced body size, also when unacceptable (the handler reports it).
    pub body_size: Option<i32>,
}

impl Command {
    pub fn verb(&self) -> &[u8] {
        self.params.first().map(|p| &p[..]).unwrap_or(b"")
    }
}

/// Body-size limits the codec checks before it waits for a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub msg: u32,
    pub body: u32,
}

#[derive(Debug)]
pub enum DecodeError {
    /// A line longer than `LINE_LEN_MAX` (nsqd drops such a connection without a frame).
    LineTooLong,
}

fn body_limit(verb: &[u8], limits: BodyLimits) -> Option<u32> {
    match verb {
        b"PUB" | b"DPUB" => Some(limits.msg),
        b"MPUB" | b"IDENTIFY" | b"AUTH" => Some(limits.body),
        _ => None,
    }
}

/// Takes one complete command off the front of `buf`, or `Ok(None)` if more bytes are needed.
pub fn decode(buf: &mut BytesMut, limits: BodyLimits) -> Result<Option<Command>, DecodeError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > LINE_LEN_MAX { Err(DecodeError::LineTooLong) } else { Ok(None) };
    };
    if nl > LINE_LEN_MAX {
        return Err(DecodeError::LineTooLong);
    }
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let verb = line.split(|&b| b == b' ').next().unwrap_or(b"");
    let mut body_size = None;
    let mut total = nl + 1;
    if let Some(limit) = body_limit(verb, limits) {
        if buf.len() < nl + 5 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([buf[nl + 1], buf[nl + 2], buf[nl + 3], buf[nl + 4]]);
        body_size = Some(size);
        total = nl + 5;
        if size > 0 && size as u32 <= limit {
            total += size as usize;
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return Ok(None);
            }
        }
    }
    let mut frame = buf.split_to(total).freeze();
    let line_len = if frame[..nl].last() == Some(&b'\r') { nl - 1 } else { nl };
    let line = frame.slice(..line_len);
    frame.advance(nl + 1);
    let params = line.split(|&b| b == b' ').take(PARAMS_MAX).map(|p| line.slice_ref(p)).collect::<Vec<_>>();
    let body = match body_size {
        Some(size) if size > 0 && frame.len() >= 4 + size as usize => Some(frame.slice(4..4 + size as usize)),
        _ => None,
    };
    Ok(Some(Command { params, body, body_size }))
}

/// Appends one frame: `[size = 4 + len][type][data]`.
pub fn put_frame(out: &mut Vec<u8>, frame_type: i32, data: &[u8]) {
    out.extend_from_slice(&((data.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.extend_from_slice(data);
}

/// Appends a message frame: timestamp (ns), attempts, 16-byte id, body.
pub fn put_message(out: &mut Vec<u8>, timestamp_ns: i64, attempts: u16, id: &[u8; 16], body: &[u8]) {
    let len = 8 + 2 + 16 + body.len();
    out.extend_from_slice(&((len + 4) as u32).to_be_bytes());
    out.extend_from_slice(&FRAME_TYPE_MESSAGE.to_be_bytes());
    out.extend_from_slice(&timestamp_ns.to_be_bytes());
    out.extend_from_slice(&attempts.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BodyLimits = BodyLimits { msg: 10, body: 100 };

    #[test]
    fn commands_need_whole_lines_and_bodies() {
        let mut buf = BytesMut::from(&b"NOP\nPUB t\n\0\0\0\x03ab"[..]);
        let nop = decode(&mut buf, LIMITS).expect("ok").expect("nop");
        assert_eq!(nop.verb(), b"NOP");
        assert!(decode(&mut buf, LIMITS).expect("ok").is_none());
        buf.extend_from_slice(b"c");
        let publish = decode(&mut buf, LIMITS).expect("ok").expect("pub");
        assert_eq!(publish.params, vec![Bytes::from_static(b"PUB"), Bytes::from_static(b"t")]);
        assert_eq!(publish.body.as_deref(), Some(&b"abc"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_bodies_are_reported_without_waiting() {
        let mut buf = BytesMut::from(&b"PUB t\n\0\0\0\x0b"[..]);
        let cmd = decode(&mut buf, LIMITS).expect("ok").expect("cmd");
        assert_eq!((cmd.body_size, cmd.body.is_none()), (Some(11), true));
        let mut long = BytesMut::from(&vec![b'A'; LINE_LEN_MAX + 1][..]);
        assert!(decode(&mut long, LIMITS).is_err());
    }
}
