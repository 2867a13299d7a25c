//! Arbitrary segment and index files opened as a partition log: recovery must not panic,
//! must leave a log that reopens without further repair, and reads must never return a
//! batch that fails its CRC. Seeds are real logs (fuzz/corpus/segment_recovery).
//!
//! Input: `[u32 active base][u32 n][n bytes: closed .log][u32 n][.index][u32 n][.timeindex]`
//! then the active segment's `.log` (all integers little-endian; a short input leaves the
//! later files empty or absent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_log::{batch, LogConfig, PartitionLog};
use std::path::Path;

/// Reads walk at most this many batches: bounds one run on a log of many tiny batches.
const READS_MAX: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let active_base = take_u32(&mut input).unwrap_or(0) % 1_000_000;
    let closed = [take_chunk(&mut input), take_chunk(&mut input), take_chunk(&mut input)];
    let Ok(dir) = tempfile::tempdir() else { return };
    if active_base > 0 {
        for (suffix, bytes) in ["log", "index", "timeindex"].iter().zip(closed) {
            if let Some(bytes) = bytes {
                write(dir.path(), 0, suffix, bytes);
            }
        }
    }
    write(dir.path(), active_base.into(), "log", input);
    let config = LogConfig { segment_bytes_max: 4096, index_interval_bytes: 64, ..LogConfig::default() };
    let Ok(log) = PartitionLog::open(dir.path(), config.clone()) else { return };
    read_all(&log);
    let mut one = valid_batch();
    if let Ok(info) = log.append(&mut one) {
        let read = log.read(info.first_offset, 0).expect("reading a batch just appended");
        assert!(!read.bytes.is_empty(), "appended batch not served");
    }
    drop(log);
    let again = PartitionLog::open(dir.path(), config).expect("a recovered log reopens");
    assert_eq!(again.recovery_report().truncated_bytes, 0, "recovery was not complete the first time");
});

/// Every batch served must pass the CRC check; a read error is fine (damage in a closed segment).
fn read_all(log: &PartitionLog) {
    let mut offset = log.log_start_offset();
    for _ in 0..READS_MAX {
        if offset >= log.log_end_offset() {
            return;
        }
        let Ok(read) = log.read(offset, 1 << 16) else { return };
        let mut rest = &read.bytes[..];
        if rest.is_empty() {
            return;
        }
        let mut first = true;
        while !rest.is_empty() {
            let header = batch::validate(rest, usize::MAX).expect("served a batch that fails validation");
            if first {
                assert!(
                    header.base_offset <= offset && offset <= header.last_offset(),
                    "read did not start at its offset"
                );
            } else {
                assert_eq!(header.base_offset, offset, "served batches are not dense");
            }
            first = false;
            offset = header.last_offset() + 1;
            rest = &rest[header.total_len()..];
        }
    }
}

fn take_u32(input: &mut &[u8]) -> Option<u32> {
    let (head, rest) = input.split_first_chunk::<4>()?;
    *input = rest;
    Some(u32::from_le_bytes(*head))
}

fn take_chunk<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = (take_u32(input)? as usize).min(input.len());
    let (chunk, rest) = input.split_at(n);
    *input = rest;
    Some(chunk)
}

fn write(dir: &Path, base: i64, suffix: &str, bytes: &[u8]) {
    let path = dir.join(format!("{base:020}.{suffix}"));
    std::fs::write(path, bytes).expect("writing into a fresh temp dir");
}

/// A one-record-count v2 batch with no records, valid for the log (which never parses records).
fn valid_batch() -> Vec<u8> {
    let mut b = vec![0u8; batch::BATCH_HEADER_LEN];
    let length = (b.len() - batch::LOG_OVERHEAD) as i32;
    b[batch::BATCH_LENGTH_AT..batch::BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    b[batch::MAGIC_AT] = 2;
    b[batch::PRODUCER_ID_AT..batch::PRODUCER_ID_AT + 8].copy_from_slice(&(-1i64).to_be_bytes());
    b[batch::RECORDS_COUNT_AT..batch::RECORDS_COUNT_AT + 4].copy_from_slice(&1i32.to_be_bytes());
    let crc = crc32c::crc32c(&b[batch::ATTRIBUTES_AT..]);
    b[batch::CRC_AT..batch::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}
