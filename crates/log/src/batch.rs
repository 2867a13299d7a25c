//! The Kafka RecordBatch v2 header: the only part of a batch the log reads.
//!
//! Layout (big-endian), as in Kafka's `DefaultRecordBatch`:
//!
//! | offset | field                  | type |
//! |-------:|------------------------|------|
//! |      0 | base_offset            | i64  |
//! |      8 | batch_length           | i32  | bytes after this field
//! |     12 | partition_leader_epoch | i32  |
//! |     16 | magic                  | i8   | always 2
//! |     17 | crc                    | u32  | CRC-32C of bytes 21..end
//! |     21 | attributes             | i16  |
//! |     23 | last_offset_delta      | i32  |
//! |     27 | base_timestamp         | i64  |
//! |     35 | max_timestamp          | i64  |
//! |     43 | producer_id            | i64  |
//! |     51 | producer_epoch         | i16  |
//! |     53 | base_sequence          | i32  |
//! |     57 | records_count          | i32  |
//! |     61 | records...             |      |
//!
//! `base_offset` and `partition_leader_epoch` are outside the CRC, so the broker can
//! assign them without touching the producer's bytes otherwise.

use thiserror::Error;

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORDS_COUNT_AT: usize = 57;
/// Size of the fixed header; records follow it.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batch_length`'s coverage starts: base_offset and batch_length itself.
pub const LOG_OVERHEAD: usize = 12;

const _: () = assert!(RECORDS_COUNT_AT + 4 == BATCH_HEADER_LEN);
const _: () = assert!(CRC_AT + 4 == ATTRIBUTES_AT);
const _: () = assert!(BATCH_LENGTH_AT + 4 == LOG_OVERHEAD);

/// Attribute bits (Kafka `RecordBatch` attributes).
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why a byte range is not a valid v2 batch.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum BatchError {
    #[error("need {needed} bytes, have {have}")]
    Incomplete { needed: usize, have: usize },
    #[error("batch length {0} is out of range")]
    BadLength(i32),
    #[error("unsupported magic {0}, only v2 record batches are stored")]
    BadMagic(i8),
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("last offset delta {0} is negative")]
    BadOffsetDelta(i32),
    /// Kafka's `LogValidator`: a batch holds at least one record and its offsets span exactly
    /// its records. Checked on append only; recovery trusts what was appended.
    #[error("records count {count} does not match last offset delta {last_offset_delta} (count must be delta + 1, at least 1)")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
}

/// The decoded fixed header of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header from the first `BATCH_HEADER_LEN` bytes. Checks only that they are there.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Incomplete { needed: BATCH_HEADER_LEN, have: bytes.len() });
        }
        Ok(BatchHeader {
            base_offset: i64_at(bytes, BASE_OFFSET_AT),
            batch_length: i32_at(bytes, BATCH_LENGTH_AT),
            partition_leader_epoch: i32_at(bytes, LEADER_EPOCH_AT),
            magic: bytes[MAGIC_AT] as i8,
            crc: i32_at(bytes, CRC_AT) as u32,
            attributes: i16_at(bytes, ATTRIBUTES_AT),
            last_offset_delta: i32_at(bytes, LAST_OFFSET_DELTA_AT),
            base_timestamp: i64_at(bytes, BASE_TIMESTAMP_AT),
            max_timestamp: i64_at(bytes, MAX_TIMESTAMP_AT),
            producer_id: i64_at(bytes, PRODUCER_ID_AT),
            producer_epoch: i16_at(bytes, PRODUCER_EPOCH_AT),
            base_sequence: i32_at(bytes, BASE_SEQUENCE_AT),
            records_count: i32_at(bytes, RECORDS_COUNT_AT),
        })
    }

    /// Total bytes of the batch on disk, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The last sequence number of an idempotent batch, wrapping as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }
}

/// Validates the batch at the start of `bytes` (length, magic, CRC-32C) and returns its
/// header. `batch_bytes_max` bounds the declared length before anything else is trusted.
pub fn validate(bytes: &[u8], batch_bytes_max: usize) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    let min_length = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    if header.batch_length < min_length || header.total_len() > batch_bytes_max.max(BATCH_HEADER_LEN) {
        return Err(BatchError::BadLength(header.batch_length));
    }
    if header.magic != 2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    if bytes.len() < header.total_len() {
        return Err(BatchError::Incomplete { needed: header.total_len(), have: bytes.len() });
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::BadOffsetDelta(header.last_offset_delta));
    }
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES_AT..header.total_len()]);
    if computed != header.crc {
        return Err(BatchError::BadCrc { stored: header.crc, computed });
    }
    Ok(header)
}

/// Kafka's header-level count checks for an appended batch: `records_count` >= 1 and
/// `last_offset_delta` = `records_count` - 1. Without them a batch of one record could take a
/// thousand offsets, or an empty batch take one, and readers would disagree about both.
pub fn check_record_count(header: &BatchHeader) -> Result<(), BatchError> {
    let count = header.records_count;
    if count < 1 || i64::from(header.last_offset_delta) + 1 != i64::from(count) {
        return Err(BatchError::BadRecordCount { count, last_offset_delta: header.last_offset_delta });
    }
    Ok(())
}

/// The count check for a batch a compacted log may hold (Kafka's cleaner output): at most
/// `last_offset_delta` + 1 records, none for an empty batch. Only for batches that come from
/// a log, never from a producer (`check_record_count`).
pub fn check_compacted_record_count(header: &BatchHeader) -> Result<(), BatchError> {
    let count = header.records_count;
    if count < 0 || i64::from(count) > i64::from(header.last_offset_delta) + 1 {
        return Err(BatchError::BadRecordCount { count, last_offset_delta: header.last_offset_delta });
    }
    Ok(())
}

/// Writes the broker-assigned base offset into a batch (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps one whole, checked batch with the broker's append time, as Kafka does for a topic
/// with `message.timestamp.type=LogAppendTime`: the timestamp-type attribute bit and the max
/// timestamp, both inside the CRC, which is recomputed. Readers then give every record of the
/// batch this timestamp.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) | ATTR_TIMESTAMP_TYPE;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A batch of no records spanning `base_offset..=last_offset` (Kafka's empty batch header, as
/// its log cleaner writes): compaction puts one where it removed every record of a run of
/// batches, so the segment's offsets stay dense and every reader skips to `last_offset + 1`.
/// No codec, no producer, CreateTime, the first emptied batch's leader epoch;
/// `last_offset - base_offset` must fit an `i32`.
pub fn empty_batch(first: &BatchHeader, last_offset: i64, max_timestamp: i64) -> Vec<u8> {
    let (base_offset, base_timestamp) = (first.base_offset, first.base_timestamp);
    let mut b = vec![0u8; BATCH_HEADER_LEN];
    b[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    let batch_length = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&first.partition_leader_epoch.to_be_bytes());
    b[MAGIC_AT] = 2;
    let delta = (last_offset - base_offset).clamp(0, i32::MAX as i64) as i32;
    b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&delta.to_be_bytes());
    b[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&(-1i64).to_be_bytes());
    b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&(-1i16).to_be_bytes());
    b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Writes the partition leader epoch into a batch (outside the CRC).
pub fn set_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stamping sets the LogAppendTime bit and the max timestamp and keeps the CRC valid,
    /// leaving the compression bits and the base timestamp as they were.
    #[test]
    fn log_append_time_stamp_keeps_the_batch_valid() {
        let mut b = crate::test_batch::batch(3, 1000, &[1; 20]);
        b[ATTRIBUTES_AT + 1] |= 0x01; // gzip bits (the payload is not looked at)
        let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let before = validate(&b, usize::MAX).expect("valid before");
        set_log_append_time(&mut b, 5000);
        let after = validate(&b, usize::MAX).expect("CRC recomputed");
        assert_eq!(after.max_timestamp, 5000);
        assert_eq!(after.attributes, before.attributes | ATTR_TIMESTAMP_TYPE);
        assert_eq!(after.compression(), 1);
        assert_eq!(after.base_timestamp, before.base_timestamp);
    }
}
