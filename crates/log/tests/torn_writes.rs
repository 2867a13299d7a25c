//! Torn writes and bit rot, exhaustively: the last batch cut at every byte, every byte of a
//! batch flipped in the active and in a closed segment. Recovery keeps exactly the intact
//! prefix and reports what it cut; reads never return a batch that differs from what was
//! written (except `partition_leader_epoch`, which Kafka's format leaves outside the CRC).

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use common::{batch, small_config};
use sluice_log::batch::{CRC_AT, LEADER_EPOCH_AT};
use sluice_log::{PartitionLog, ReadError};

/// Batches appended by `fill`; each holds 2 records, so batch `i` starts at offset `2 * i`.
const BATCHES: i64 = 12;

fn fill(dir: &Path) -> Vec<Vec<u8>> {
    let log = PartitionLog::open(dir, small_config()).expect("open");
    let stored = (0..BATCHES)
        .map(|i| {
            let mut b = batch(2, 100 + i, &[i as u8; 70]);
            log.append(&mut b).expect("append");
            b
        })
        .collect();
    log.close().expect("close");
    stored
}

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// A fresh copy of `template` (a filled log directory) to damage. The recovery point is left
/// out: `fill` flushed everything, which would (rightly) refuse a damaged log; without it the
/// damage stands for a crash's unsynced tail (refusal is covered in `recovery_point.rs`).
fn copy_of(template: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(template).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "recovery-point") {
            continue;
        }
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

/// Batch `i` as the log serves it (base offset assigned).
fn served(stored: &[Vec<u8>], i: usize) -> Vec<u8> {
    let mut b = stored[i].clone();
    b[..8].copy_from_slice(&(i as i64 * 2).to_be_bytes());
    b
}

fn assert_serves_prefix(log: &PartitionLog, stored: &[Vec<u8>], batches: usize) {
    for i in 0..batches {
        assert_eq!(log.read(i as i64 * 2, 0).expect("read").bytes, served(stored, i), "batch {i}");
    }
}

/// The last batch cut at every byte boundary (a write torn anywhere, header included):
/// exactly the bytes of the torn batch are dropped and reported, the earlier batches are
/// served intact, appends continue at the right offset, and a second open finds nothing to cut.
#[test]
fn last_batch_cut_at_every_byte() {
    let template = tempfile::tempdir().expect("tempdir");
    let stored = fill(template.path());
    let last = segment_logs(template.path()).pop().expect("a segment");
    let file_len = std::fs::metadata(&last).expect("stat").len();
    let last_len = stored[BATCHES as usize - 1].len() as u64;
    let batch_start = file_len - last_len;
    for cut in batch_start..file_len {
        let dir = copy_of(template.path());
        let torn = dir.path().join(last.file_name().expect("name"));
        OpenOptions::new().write(true).open(&torn).expect("open").set_len(cut).expect("cut");
        let log = PartitionLog::open(dir.path(), small_config()).expect("recovery");
        let report = log.recovery_report();
        assert_eq!(report.truncated_bytes, cut - batch_start, "cut at {cut}");
        if cut > batch_start {
            let truncation = report.truncation.expect("truncation reported");
            assert_eq!(truncation.segment, torn);
            assert_eq!((truncation.position, truncation.first_dropped_offset), (batch_start, (BATCHES - 1) * 2));
        }
        assert_eq!(log.log_end_offset(), (BATCHES - 1) * 2, "cut at {cut}");
        assert_serves_prefix(&log, &stored, BATCHES as usize - 1);
        assert_eq!(log.append(&mut batch(1, 0, b"after")).expect("append").first_offset, (BATCHES - 1) * 2);
        drop(log);
        let again = PartitionLog::open(dir.path(), small_config()).expect("reopen");
        assert_eq!(again.recovery_report().truncated_bytes, 0, "cut at {cut}: second recovery cut again");
        assert_eq!(again.log_end_offset(), (BATCHES - 1) * 2 + 1);
    }
}

/// Which stored batches sit in the last segment, and where the first of them starts.
fn active_segment_batches(dir: &Path, stored: &[Vec<u8>]) -> (PathBuf, usize) {
    let logs = segment_logs(dir);
    let last = logs.last().expect("a segment").clone();
    let len = std::fs::metadata(&last).expect("stat").len() as usize;
    let mut first = stored.len();
    let mut bytes = 0;
    while bytes < len {
        first -= 1;
        bytes += stored[first].len();
    }
    assert_eq!(bytes, len, "segment is not made of whole stored batches");
    (last, first)
}

/// One bit flipped in each byte of a batch in the middle of the active segment: recovery
/// cuts the log at that batch (CRC, length, magic or offset order gives it away), reports
/// the bytes dropped, and serves what precedes it. A flip in the leader epoch is not
/// detectable (outside the CRC, as in Kafka) and changes nothing but that field.
#[test]
fn flipped_bit_in_active_segment_cuts_there() {
    let template = tempfile::tempdir().expect("tempdir");
    let stored = fill(template.path());
    let (last, first) = active_segment_batches(template.path(), &stored);
    assert!(BATCHES as usize - first >= 3, "need a batch in the middle of the active segment");
    let victim = first + 1;
    let position = stored[first].len();
    let file_len = std::fs::metadata(&last).expect("stat").len();
    for byte in 0..stored[victim].len() {
        let dir = copy_of(template.path());
        let path = dir.path().join(last.file_name().expect("name"));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[position + byte] ^= 1 << (byte % 8);
        std::fs::write(&path, &bytes).expect("write");
        let log = PartitionLog::open(dir.path(), small_config()).expect("recovery");
        if (LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4).contains(&byte) {
            assert_eq!(log.recovery_report().truncated_bytes, 0);
            assert_eq!(log.log_end_offset(), BATCHES * 2);
            let got = log.read(victim as i64 * 2, 0).expect("read").bytes;
            assert_eq!(got[CRC_AT..], served(&stored, victim)[CRC_AT..], "epoch flip changed covered bytes");
            continue;
        }
        assert_eq!(log.recovery_report().truncated_bytes, file_len - position as u64, "byte {byte}");
        assert_eq!(log.log_end_offset(), victim as i64 * 2, "byte {byte}");
        assert_serves_prefix(&log, &stored, victim);
    }
}

/// One bit flipped in each byte of a batch inside a closed segment (not scanned on open):
/// that batch is never served — a read of it fails as corrupt — while batches before it and
/// later segments stay readable.
#[test]
fn flipped_bit_in_closed_segment_is_never_served() {
    let template = tempfile::tempdir().expect("tempdir");
    let stored = fill(template.path());
    let first_segment = segment_logs(template.path()).remove(0);
    let victim = 1;
    let position = stored[0].len();
    for byte in 0..stored[victim].len() {
        if (LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4).contains(&byte) {
            continue; // not covered by the CRC (see the active-segment test)
        }
        let dir = copy_of(template.path());
        let path = dir.path().join(first_segment.file_name().expect("name"));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[position + byte] ^= 1 << (byte % 8);
        std::fs::write(&path, &bytes).expect("write");
        let log = PartitionLog::open(dir.path(), small_config()).expect("recovery");
        assert_eq!(log.read(0, usize::MAX).expect("batch before the damage").bytes, served(&stored, 0));
        match log.read(victim as i64 * 2, usize::MAX) {
            Err(ReadError::Corrupt { .. } | ReadError::OffsetMismatch { .. }) => {}
            Ok(read) => panic!("byte {byte}: damaged batch served ({} bytes)", read.bytes.len()),
            Err(other) => panic!("byte {byte}: unexpected error {other}"),
        }
        let next_segment = log.segment_base_offsets()[1];
        assert!(log.read(next_segment, 0).is_ok(), "byte {byte}: later segment unreadable");
    }
}

/// The active segment's index and time index deleted or garbled: rebuilt from the batches.
#[test]
fn active_segment_indexes_deleted_or_garbled_are_rebuilt() {
    let template = tempfile::tempdir().expect("tempdir");
    let stored = fill(template.path());
    let last = segment_logs(template.path()).pop().expect("a segment");
    for damage in ["delete", "garble"] {
        let dir = copy_of(template.path());
        for suffix in ["index", "timeindex"] {
            let path = dir.path().join(last.with_extension(suffix).file_name().expect("name"));
            match damage {
                "delete" => std::fs::remove_file(&path).expect("delete"),
                _ => std::fs::write(&path, [0x5A; 13]).expect("garble"),
            }
        }
        let log = PartitionLog::open(dir.path(), small_config()).expect("recovery");
        assert_eq!(log.recovery_report().indexes_rebuilt, 2, "{damage}");
        assert_eq!(log.recovery_report().truncated_bytes, 0, "{damage}");
        assert_serves_prefix(&log, &stored, BATCHES as usize);
        assert_eq!(log.find_by_timestamp(100 + BATCHES - 1).expect("time lookup").expect("hit").header.base_offset, 22);
    }
}
