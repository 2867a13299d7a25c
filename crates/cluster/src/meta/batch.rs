//! A command's frame: one uncompressed RecordBatch v2 holding one record whose value is the
//! command (as KRaft's `__cluster_metadata`). Built here byte by byte (the cluster crate does
//! not depend on `kafka-protocol`); read back with `sluice_records`, which checks the CRC-32C,
//! so what we build is what every other reader of the log accepts.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_records::convert::read_v2_records;

use super::limits::{COMMAND_BATCH_BYTES_MAX, COMMAND_BYTES_MAX};

/// Bytes of a v2 batch header before its records (baseOffset .. recordsCount).
const BATCH_HEADER_BYTES: usize = 61;
/// Where `batchLength` ends: the length counts every byte after it.
const BATCH_LENGTH_END: usize = 12;
/// Where the CRC-32C's coverage starts (`attributes`), just after the `crc` field.
const CRC_COVERAGE_START: usize = 21;
/// Where the `crc` field starts.
const CRC_START: usize = 17;
const MAGIC_V2: i8 = 2;
const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// A varint of a 32-bit value takes at most 5 bytes.
const VARINT_BYTES_MAX: usize = 5;
/// A record's fixed fields after its length: attributes, timestamp delta, offset delta, key
/// length (null), header count — each one byte here.
const RECORD_FIXED_BYTES: usize = 5;

const _: () = assert!(CRC_START + 4 == CRC_COVERAGE_START);

/// Why a command frame could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    #[error("a command of {0} bytes is over the {COMMAND_BYTES_MAX}-byte limit")]
    TooLarge(usize),
}

/// Why bytes are not one command frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnframeError {
    #[error("entry of {0} bytes is not one whole v2 batch")]
    NotOneBatch(usize),
    #[error("entry of {0} bytes is over the {COMMAND_BATCH_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("unreadable batch: {0}")]
    Unreadable(String),
    #[error("batch holds {0} records, a command is exactly one")]
    NotOneRecord(usize),
    #[error("the command record has no value")]
    NoValue,
}

/// The value of a frame's one record, and the offsets the batch took in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unframed {
    pub value: Bytes,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Builds one v2 batch of one record holding `value` (base offset 0: the log assigns it).
pub fn frame(value: &[u8], timestamp_ms: i64) -> Result<Bytes, FrameError> {
    if value.len() > COMMAND_BYTES_MAX {
        return Err(FrameError::TooLarge(value.len()));
    }
    let record = record_bytes(value);
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + record.len());
    out.put_i64(0); // baseOffset
    let batch_length = BATCH_HEADER_BYTES - BATCH_LENGTH_END + record.len();
    out.put_i32(batch_length as i32); // fits: value.len() <= COMMAND_BYTES_MAX, checked above
    out.put_i32(NO_PARTITION_LEADER_EPOCH);
    out.put_i8(MAGIC_V2);
    out.put_u32(0); // crc, filled below
    out.put_i16(0); // attributes: no compression, CreateTime, not transactional, not control
    out.put_i32(0); // lastOffsetDelta
    out.put_i64(timestamp_ms); // baseTimestamp
    out.put_i64(timestamp_ms); // maxTimestamp
    out.put_i64(NO_PRODUCER_ID);
    out.put_i16(NO_PRODUCER_EPOCH);
    out.put_i32(NO_SEQUENCE);
    out.put_i32(1); // recordsCount
    out.put_slice(&record);
    let crc = crc32c::crc32c(&out[CRC_COVERAGE_START..]);
    out[CRC_START..CRC_COVERAGE_START].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

/// One record: its length, then attributes, deltas, a null key, the value, no headers.
fn record_bytes(value: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(RECORD_FIXED_BYTES + VARINT_BYTES_MAX + value.len());
    body.push(0); // attributes
    put_varint(&mut body, 0); // timestampDelta
    put_varint(&mut body, 0); // offsetDelta
    put_varint(&mut body, -1); // keyLength: null
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varint(&mut body, 0); // headers count
    let mut record = Vec::with_capacity(VARINT_BYTES_MAX + body.len());
    put_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    record
}

/// Kafka's zig-zag varint (protobuf's sint64 encoding).
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Reads one command frame: exactly one whole v2 batch (CRC checked) of exactly one record
/// with a value of at most `COMMAND_BYTES_MAX` bytes. Never panics on any input.
pub fn unframe(batch: &[u8]) -> Result<Unframed, UnframeError> {
    if batch.len() > COMMAND_BATCH_BYTES_MAX {
        return Err(UnframeError::TooLarge(batch.len()));
    }
    let declared = batch
        .get(8..BATCH_LENGTH_END)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(i32::from_be_bytes)
        .and_then(|length| usize::try_from(length).ok());
    if declared.and_then(|length| length.checked_add(BATCH_LENGTH_END)) != Some(batch.len()) {
        return Err(UnframeError::NotOneBatch(batch.len()));
    }
    let mut batches = read_v2_records(batch, i64::MIN);
    let read = match batches.next() {
        Some(Ok(read)) => read,
        Some(Err(e)) => return Err(UnframeError::Unreadable(e.to_string())),
        None => return Err(UnframeError::NotOneBatch(batch.len())),
    };
    let records = read.records.map_err(|e| UnframeError::Unreadable(e.to_string()))?;
    let [record] = <[_; 1]>::try_from(records).map_err(|records| UnframeError::NotOneRecord(records.len()))?;
    let value = record.value.ok_or(UnframeError::NoValue)?;
    if value.len() > COMMAND_BYTES_MAX {
        return Err(UnframeError::TooLarge(value.len()));
    }
    Ok(Unframed { value, first_offset: read.base_offset, last_offset: read.last_offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_reads_back_with_its_value_and_offsets() {
        // Proves the hand-built batch passes sluice_records' CRC and record checks.
        let mut batch = BytesMut::from(&frame(b"{\"hello\":1}", 1_700_000_000_000).unwrap()[..]);
        batch[0..8].copy_from_slice(&41i64.to_be_bytes()); // the log assigns the base offset
        let read = unframe(&batch).unwrap();
        assert_eq!(read, Unframed { value: Bytes::from_static(b"{\"hello\":1}"), first_offset: 41, last_offset: 41 });
    }

    #[test]
    fn large_values_need_multi_byte_varints_and_still_read_back() {
        // Proves the varint lengths (value > 63 and > 8191 bytes) are encoded as Kafka reads them.
        for len in [0, 63, 64, 8191, 8192, 300_000] {
            let value = vec![b'x'; len];
            assert_eq!(unframe(&frame(&value, 0).unwrap()).unwrap().value.len(), len);
        }
    }

    #[test]
    fn oversized_values_are_refused_both_ways() {
        // Proves the named maximum bounds building a frame.
        assert_eq!(frame(&vec![0; COMMAND_BYTES_MAX + 1], 0), Err(FrameError::TooLarge(COMMAND_BYTES_MAX + 1)));
        assert!(matches!(unframe(&vec![0; COMMAND_BATCH_BYTES_MAX + 1]), Err(UnframeError::TooLarge(_))));
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        // Proves every truncation, every flipped byte, two batches and garbage are refused.
        let good = frame(b"value", 7).unwrap();
        for len in 0..good.len() {
            assert!(unframe(&good[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..good.len() {
            let mut bad = good.to_vec();
            bad[at] ^= 0x55;
            // Bytes outside the CRC (base offset, leader epoch) may change without harm.
            let outside_crc = at < 8 || (12..16).contains(&at);
            assert_eq!(unframe(&bad).is_ok(), outside_crc, "byte {at} flipped");
        }
        let mut two = good.to_vec();
        two.extend_from_slice(&good);
        assert!(matches!(unframe(&two), Err(UnframeError::NotOneBatch(_))));
        assert!(unframe(&[0xff; 100]).is_err());
    }

    /// xorshift64: a fixed pseudo-random sequence, so the fuzz test below is reproducible.
    fn next_random(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn random_bytes_and_random_damage_never_panic() {
        // Proves unframe returns (Ok or Err) on 20,000 random inputs: garbage of random length,
        // and valid frames with random bytes overwritten, truncated or extended.
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let good = frame(b"{\"AllocateProducerIds\":{\"count\":5}}", 3).unwrap().to_vec();
        for _ in 0..10_000 {
            let len = (next_random(&mut seed) % 200) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| next_random(&mut seed) as u8).collect();
            let _ = unframe(&garbage);
            let mut damaged = good.clone();
            for _ in 0..=(next_random(&mut seed) % 4) {
                let at = (next_random(&mut seed) as usize) % damaged.len();
                damaged[at] = next_random(&mut seed) as u8;
            }
            match next_random(&mut seed) % 3 {
                0 => damaged.truncate((next_random(&mut seed) as usize) % damaged.len()),
                1 => damaged.push(next_random(&mut seed) as u8),
                _ => {}
            }
            let _ = unframe(&damaged);
        }
    }
}
