//! One committed offset as a record of `__consumer_offsets`, in Kafka's own layout, so the
//! topic reads as a Kafka cluster's does (big-endian, strings as i16 length + UTF-8):
//!
//! ```text
//! key   (version 1): version: i16 = 1 | group | topic | partition: i32
//! value (version 3): version: i16 = 3 | offset: i64 | leader_epoch: i32 | metadata | commit_ts_ms: i64
//! ```
//!
//! A null value is a tombstone: the offset was deleted (OffsetDelete, DeleteGroups, expiry,
//! a deleted topic). Records of other key versions (Kafka's group metadata, version 2) are
//! skipped by the reader.

use super::offsets::Committed;
use bytes::Bytes;

/// Key version of an offset commit (Kafka's `OffsetCommitKey`).
const KEY_VERSION_OFFSET: i16 = 1;
/// Value version written (Kafka's `OffsetCommitValue` v3, with the leader epoch).
const VALUE_VERSION: i16 = 3;

/// Whose offset a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

pub fn encode_key(key: &OffsetKey) -> Bytes {
    let mut out = Vec::with_capacity(2 + 2 + key.group.len() + 2 + key.topic.len() + 4);
    out.extend_from_slice(&KEY_VERSION_OFFSET.to_be_bytes());
    put_str(&mut out, &key.group);
    put_str(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    Bytes::from(out)
}

pub fn encode_value(c: &Committed) -> Bytes {
    let metadata = c.metadata.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + metadata.len() + 8);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&c.offset.to_be_bytes());
    out.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_str(&mut out, metadata);
    out.extend_from_slice(&c.commit_ts_ms.to_be_bytes());
    Bytes::from(out)
}

/// The key of an offset record; None for another kind of record or bytes that do not parse.
pub fn decode_key(bytes: &[u8]) -> Option<OffsetKey> {
    let mut r = Reader(bytes);
    if r.i16()? != KEY_VERSION_OFFSET {
        return None;
    }
    Some(OffsetKey { group: r.string()?, topic: r.string()?, partition: r.i32()? })
}

/// An offset value of version 1 to 3 (Kafka's; v2 has no epoch, v1 an expiry time too).
pub fn decode_value(bytes: &[u8]) -> Option<Committed> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_ts_ms = r.i64()?;
    if !(1..=3).contains(&version) {
        return None;
    }
    Some(Committed { offset, leader_epoch, metadata: Some(metadata), commit_ts_ms })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers bound every string (group id, topic, metadata) far below i16::MAX.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// A cursor over a record's bytes; every read checks the length first.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_garbage_is_refused() {
        let key = OffsetKey { group: "g".into(), topic: "orders".into(), partition: 3 };
        let c = Committed { offset: 42, leader_epoch: 7, metadata: Some("m".into()), commit_ts_ms: 1_000 };
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        assert_eq!(decode_value(&encode_value(&c)), Some(c));
        let encoded = encode_key(&OffsetKey { group: "g".into(), topic: "t".into(), partition: 0 });
        for cut in 0..encoded.len() {
            assert_eq!(decode_key(&encoded[..cut]), None);
        }
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']), None, "group metadata keys are not offsets");
        assert_eq!(decode_value(&[0, 9]), None);
    }
}
