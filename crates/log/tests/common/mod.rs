//! Helpers shared by the integration tests: building valid v2 batches.

#![allow(dead_code)]

use sluice_log::batch::{ATTRIBUTES_AT, BATCH_LENGTH_AT, CRC_AT, LOG_OVERHEAD};
use sluice_log::{LogConfig, BATCH_HEADER_LEN};

/// A valid v2 batch of `records` records whose payload is `payload` and whose timestamps
/// end at `max_timestamp`. The base offset is left 0 for the log to assign.
pub fn batch(records: i32, max_timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; BATCH_HEADER_LEN];
    b.extend_from_slice(payload);
    let batch_length = (b.len() - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    b[16] = 2; // magic
    b[23..27].copy_from_slice(&(records - 1).to_be_bytes()); // last offset delta
    b[27..35].copy_from_slice(&max_timestamp.to_be_bytes()); // base timestamp
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes()); // max timestamp
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producer id
    b[57..61].copy_from_slice(&records.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Splits concatenated batches into (base offset, bytes without the base offset) pairs.
pub fn split(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = sluice_log::BatchHeader::parse(&bytes[at..]).expect("header");
        let end = at + h.total_len();
        out.push((h.base_offset, bytes[at + 8..end].to_vec()));
        at = end;
    }
    out
}

/// Small limits so a few appends roll segments and write index entries.
pub fn small_config() -> LogConfig {
    LogConfig { segment_bytes_max: 600, index_interval_bytes: 128, ..LogConfig::default() }
}
