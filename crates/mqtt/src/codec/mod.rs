//! MQTT 3.1.1 and 5.0 packets: framing (the fixed header and its remaining length, checked
//! against the largest packet allowed before anything is buffered), the packets a client
//! sends (`decode`) and the packets this server sends (`encode`). "Need more bytes" is a
//! normal result; every other problem is a [`DecodeError`] carrying the v5 reason code the
//! connection is closed with. No protocol state lives here.

mod decode;
mod encode;
mod properties;
mod reason;

pub use decode::{decode_packet, peek_protocol_level, Connect, Packet, Publish, Subscribe, Will};
pub use encode::{
    encode_connack, encode_disconnect, encode_pingresp, encode_publish, encode_simple, encode_sub_acks, ConnAck,
    OutgoingPublish,
};
pub use reason::Reason;

use bytes::{Buf, Bytes};

/// The protocol level a connection speaks, from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

/// Quality of service of a publish or a subscription (the spec's names).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Packet types (the high nibble of the first byte).
pub mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const UNSUBACK: u8 = 11;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
    pub const AUTH: u8 = 15;
}

/// Why a packet could not be taken: the reason code to close with and a message to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub reason: Reason,
    pub message: String,
}

impl DecodeError {
    pub fn malformed(message: impl Into<String>) -> DecodeError {
        DecodeError { reason: Reason::MalformedPacket, message: message.into() }
    }

    pub fn protocol(message: impl Into<String>) -> DecodeError {
        DecodeError { reason: Reason::ProtocolError, message: message.into() }
    }

    pub fn with(reason: Reason, message: impl Into<String>) -> DecodeError {
        DecodeError { reason, message: message.into() }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (reason 0x{:02X})", self.message, self.reason.code())
    }
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// A fixed header: the first byte and the length of what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    pub first_byte: u8,
    /// Bytes of the fixed header itself (2 to 5).
    pub header_len: usize,
    pub remaining_len: usize,
}

impl FixedHeader {
    pub fn kind(&self) -> u8 {
        self.first_byte >> 4
    }

    pub fn flags(&self) -> u8 {
        self.first_byte & 0x0F
    }

    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Reads the fixed header at the start of `buf`: `Ok(None)` until it is complete. Its length
/// has at most four bytes, so it never passes the spec's 268,435,455 (§2.2.3). A whole
/// packet (header included) larger than `packet_bytes_max` is refused here, before any of
/// it is buffered.
pub fn fixed_header(buf: &[u8], packet_bytes_max: usize) -> DecodeResult<Option<FixedHeader>> {
    let Some(&first_byte) = buf.first() else { return Ok(None) };
    let mut remaining_len = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else { return Ok(None) };
        remaining_len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let header = FixedHeader { first_byte, header_len: 2 + i, remaining_len };
            if header.frame_len() > packet_bytes_max {
                return Err(DecodeError::with(
                    Reason::PacketTooLarge,
                    format!("packet of {} bytes is over the limit of {packet_bytes_max}", header.frame_len()),
                ));
            }
            return Ok(Some(header));
        }
    }
    Err(DecodeError::malformed("remaining length longer than four bytes"))
}

/// Appends the remaining-length encoding of `len` (at most [`REMAINING_LENGTH_MAX`]).
pub fn put_var_int(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// A cursor over one packet's bytes: every read checks what is left first.
pub(crate) struct Reader {
    bytes: Bytes,
}

impl Reader {
    pub fn new(bytes: Bytes) -> Reader {
        Reader { bytes }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.remaining()
    }

    pub fn u8(&mut self) -> DecodeResult<u8> {
        if self.bytes.remaining() < 1 {
            return Err(DecodeError::malformed("packet ends inside a byte field"));
        }
        Ok(self.bytes.get_u8())
    }

    pub fn u16(&mut self) -> DecodeResult<u16> {
        if self.bytes.remaining() < 2 {
            return Err(DecodeError::malformed("packet ends inside a two-byte integer"));
        }
        Ok(self.bytes.get_u16())
    }

    pub fn u32(&mut self) -> DecodeResult<u32> {
        if self.bytes.remaining() < 4 {
            return Err(DecodeError::malformed("packet ends inside a four-byte integer"));
        }
        Ok(self.bytes.get_u32())
    }

    /// A variable byte integer (§1.5.5): at most four bytes.
    pub fn var_int(&mut self) -> DecodeResult<usize> {
        let mut value = 0usize;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= usize::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::malformed("variable byte integer longer than four bytes"))
    }

    /// `len` bytes, shared with the packet buffer.
    pub fn take(&mut self, len: usize) -> DecodeResult<Bytes> {
        if self.bytes.remaining() < len {
            return Err(DecodeError::malformed(format!("a field of {len} bytes runs past the packet's end")));
        }
        Ok(self.bytes.split_to(len))
    }

    /// Binary data: a two-byte length and that many bytes.
    pub fn binary(&mut self) -> DecodeResult<Bytes> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// A UTF-8 string (§1.5.4): valid UTF-8 without U+0000, else the packet is malformed.
    pub fn string(&mut self) -> DecodeResult<String> {
        let bytes = self.binary()?;
        let text = std::str::from_utf8(&bytes).map_err(|_| DecodeError::malformed("string is not valid UTF-8"))?;
        if text.contains('\0') {
            return Err(DecodeError::malformed("string holds U+0000"));
        }
        Ok(text.to_string())
    }

    /// Everything left.
    pub fn rest(&mut self) -> Bytes {
        let len = self.bytes.remaining();
        self.bytes.split_to(len)
    }
}

/// Appends a UTF-8 string or binary field (callers keep it under 65,536 bytes).
pub(crate) fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
}

#[cfg(test)]
mod tests;
