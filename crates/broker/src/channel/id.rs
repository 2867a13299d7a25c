//! NSQ message ids: 16 ASCII hex bytes that name the record they carry, so FIN/REQ/TOUCH
//! find it and a restart can redeliver it under the same id.
//!
//! Layout: 4 hex digits of partition index, then 12 hex digits of offset.

pub const MESSAGE_ID_LEN: usize = 16;
const PARTITION_DIGITS: usize = 4;
/// Largest partition index an id can carry.
pub const PARTITION_MAX: i32 = 0xffff;
/// Largest offset an id can carry (2^48 - 1: 281 trillion records per partition).
pub const OFFSET_MAX: i64 = (1 << 48) - 1;

const _: () = assert!(PARTITION_DIGITS * 4 + 48 == MESSAGE_ID_LEN * 4);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub partition: i32,
    pub offset: i64,
}

impl MessageId {
    pub fn new(partition: i32, offset: i64) -> MessageId {
        MessageId { partition, offset }
    }

    pub fn encode(&self) -> [u8; MESSAGE_ID_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let value = ((self.partition as u64 & 0xffff) << 48) | (self.offset as u64 & OFFSET_MAX as u64);
        let mut out = [0u8; MESSAGE_ID_LEN];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = HEX[((value >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// `None` for anything that is not 16 hex digits.
    pub fn parse(bytes: &[u8]) -> Option<MessageId> {
        if bytes.len() != MESSAGE_ID_LEN {
            return None;
        }
        let mut value = 0u64;
        for &b in bytes {
            let digit = (b as char).to_digit(16)?;
            value = (value << 4) | u64::from(digit);
        }
        Some(MessageId { partition: (value >> 48) as i32, offset: (value & OFFSET_MAX as u64) as i64 })
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.encode()).unwrap_or("?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_junk() {
        for (p, o) in [(0, 0), (3, 12345), (PARTITION_MAX, OFFSET_MAX)] {
            let id = MessageId::new(p, o);
            assert_eq!(MessageId::parse(&id.encode()), Some(id));
        }
        assert_eq!(&MessageId::new(1, 255).encode(), b"00010000000000ff");
        assert_eq!(MessageId::parse(b"zz010000000000ff"), None);
        assert_eq!(MessageId::parse(b"0001"), None);
    }
}
