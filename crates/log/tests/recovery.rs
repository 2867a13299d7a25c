//! Recovery on open: torn and corrupt tails, damaged indexes, leftover files.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{batch, small_config};
use sluice_log::PartitionLog;

fn fill(dir: &Path, batches: i64) -> Vec<Vec<u8>> {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let mut stored = Vec::new();
    for i in 0..batches {
        let mut b = batch(2, 100 + i, &[i as u8; 70]);
        log.append(&mut b).unwrap();
        stored.push(b);
    }
    log.close().unwrap();
    stored
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == suffix))
        .collect();
    found.sort();
    found
}

/// The bytes these tests damage were flushed by `fill`'s clean close, so the recovery point
/// would (rightly) refuse the log; without it they stand for a crash's unsynced tail
/// (refusal is covered in `recovery_point.rs`).
fn forget_recovery_point(dir: &Path) {
    std::fs::remove_file(dir.join("recovery-point")).unwrap();
}

fn assert_serves(log: &PartitionLog, stored: &[Vec<u8>]) {
    for (i, b) in stored.iter().enumerate() {
        assert_eq!(&log.read(i as i64 * 2 + 1, 0).unwrap().bytes, b, "batch {i}");
    }
}

/// Garbage after the last batch is cut off, reported, and appends continue after it.
#[test]
fn garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let stored = fill(dir.path(), 12);
    let last = files(dir.path(), "log").pop().unwrap();
    OpenOptions::new().append(true).open(&last).unwrap().write_all(&[0xAB; 33]).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, 33);
    assert_eq!(log.log_end_offset(), 24);
    assert_eq!(log.durable_offset(), 24);
    assert_serves(&log, &stored);
    assert_eq!(log.append(&mut batch(1, 0, b"z")).unwrap().first_offset, 24);
}

/// A flipped byte inside the last batch fails its CRC: that batch goes, the rest stays.
#[test]
fn corrupt_last_batch_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let stored = fill(dir.path(), 12);
    let last = files(dir.path(), "log").pop().unwrap();
    forget_recovery_point(dir.path());
    let mut bytes = std::fs::read(&last).unwrap();
    let len = bytes.len();
    bytes[len - 5] ^= 0xFF;
    std::fs::write(&last, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, stored[11].len() as u64);
    assert_eq!(log.log_end_offset(), 22);
    assert_serves(&log, &stored[..11]);
}

/// Missing and garbled indexes of closed segments are rebuilt and reads stay correct.
#[test]
fn damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let stored = fill(dir.path(), 30);
    let indexes = files(dir.path(), "index");
    let times = files(dir.path(), "timeindex");
    assert!(indexes.len() >= 3);
    std::fs::remove_file(&indexes[0]).unwrap();
    std::fs::write(&indexes[1], [0u8; 16]).unwrap();
    std::fs::write(&times[1], [1u8; 7]).unwrap();
    std::fs::write(indexes.last().unwrap(), [9u8; 8]).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().indexes_rebuilt, 4);
    assert_serves(&log, &stored);
    assert_eq!(log.find_by_timestamp(115).unwrap().unwrap().header.base_offset, 30);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().indexes_rebuilt, 0);
}

/// Temp files and orphan indexes are removed; foreign files are left alone.
#[test]
fn leftovers_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3);
    let p = dir.path();
    std::fs::write(p.join("00000000000000000000.index.tmp"), b"x").unwrap();
    std::fs::write(p.join("00000000000000099999.index"), b"").unwrap();
    std::fs::write(p.join("README"), b"mine").unwrap();
    let log = PartitionLog::open(p, small_config()).unwrap();
    assert!(!p.join("00000000000000000000.index.tmp").exists());
    assert!(!p.join("00000000000000099999.index").exists());
    assert!(p.join("README").exists());
    assert_eq!(log.log_end_offset(), 6);
}

/// A last segment cut to nothing is kept: its name still records the log end.
#[test]
fn empty_last_segment_keeps_log_end() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 12);
    let logs = files(dir.path(), "log");
    let last = logs.last().unwrap();
    let base: i64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    forget_recovery_point(dir.path());
    OpenOptions::new().write(true).open(last).unwrap().set_len(10).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, 10);
    assert_eq!(log.log_end_offset(), base);
    assert_eq!(log.segment_count(), logs.len());
    assert_eq!(log.append(&mut batch(1, 0, b"q")).unwrap().first_offset, base);
}

/// A fresh directory (even a missing one) opens as an empty log at offset 0.
#[test]
fn opens_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b");
    let log = PartitionLog::open(&path, small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(log.read(0, 10).unwrap().bytes.is_empty());
    assert!(log.find_by_timestamp(0).unwrap().is_none());
    log.delete().unwrap();
    assert!(!path.exists());
}

/// Damage inside a closed segment (not scanned on open) is never served: reads before it
/// work, a read of the damaged batch fails.
#[test]
fn corrupt_closed_segment_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let stored = fill(dir.path(), 12);
    let first = files(dir.path(), "log").remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let second_batch = stored[0].len();
    bytes[second_batch + 70] ^= 0xFF;
    std::fs::write(&first, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.read(0, usize::MAX).unwrap().bytes, stored[0]);
    assert!(matches!(log.read(2, 0), Err(sluice_log::ReadError::Corrupt { offset: 2, .. })));
    let second_segment = log.segment_base_offsets()[1];
    assert!(log.read(second_segment, 0).is_ok());
}
