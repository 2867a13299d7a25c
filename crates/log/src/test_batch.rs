//! Builds valid v2 batches for unit tests.

use crate::batch::{ATTRIBUTES_AT, BATCH_HEADER_LEN, BATCH_LENGTH_AT, CRC_AT, LOG_OVERHEAD, MAX_TIMESTAMP_AT};

pub fn batch(records: i32, max_timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; BATCH_HEADER_LEN];
    b.extend_from_slice(payload);
    let batch_length = (b.len() - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    b[crate::batch::MAGIC_AT] = 2;
    b[crate::batch::LAST_OFFSET_DELTA_AT..][..4].copy_from_slice(&(records - 1).to_be_bytes());
    b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    b[crate::batch::RECORDS_COUNT_AT..][..4].copy_from_slice(&records.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}
