//! The recovery point: a log that lost fsynced data (a hole, or an end below the recovery
//! point) is refused on open until the operator accepts it; the file cache bounds descriptors.

mod common;

use std::path::{Path, PathBuf};

use common::{batch, small_config};
use sluice_log::{AppendError, PartitionLog, ReadError};

/// 20 batches of 2 records over several segments (small_config rolls every few batches),
/// closed cleanly so the recovery point is the log end.
fn fill(dir: &Path) -> i64 {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    for i in 0..20 {
        log.append(&mut batch(2, 100 + i, &[i as u8; 70])).unwrap();
    }
    let end = log.log_end_offset();
    log.close().unwrap();
    end
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

fn assert_refused(log: &PartitionLog, words: &[&str]) {
    let damage = log.damage().expect("the log is refused");
    for word in words {
        assert!(damage.contains(word), "{damage:?} names {word}");
    }
    assert!(matches!(log.append(&mut batch(1, 0, b"x")), Err(AppendError::Damaged(_))));
    assert!(matches!(log.read(0, 1000), Err(ReadError::Damaged(_))));
    assert!(matches!(log.find_by_timestamp(0), Err(ReadError::Damaged(_))));
}

/// A clean close stores the recovery point at the log end, and reopening an intact log
/// is not refused.
#[test]
fn clean_close_stores_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let end = fill(dir.path());
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_point(), end);
    assert_eq!(log.damage(), None);
    assert_eq!(log.append(&mut batch(1, 0, b"y")).unwrap().first_offset, end);
}

/// A middle segment deleted by hand is a hole: refused with both offsets named; once
/// accepted, reads into the hole go on at the next segment and appends do not reuse offsets.
#[test]
fn deleted_middle_segment_is_refused_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let end = fill(dir.path());
    let segments = logs(dir.path());
    assert!(segments.len() >= 4, "{segments:?}");
    let middle = &segments[1];
    let hole_start: i64 = middle.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let hole_end: i64 = segments[2].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    std::fs::remove_file(middle).unwrap();

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_refused(&log, &[&hole_start.to_string(), &hole_end.to_string()]);
    log.accept_data_loss().unwrap();
    assert_eq!(log.damage(), None);
    let read = log.read(hole_start, 1).unwrap();
    let first = sluice_log::BatchHeader::parse(&read.bytes).unwrap();
    assert_eq!(first.base_offset, hole_end, "a read into the hole gets the next batch");
    assert_eq!(log.append(&mut batch(1, 0, b"z")).unwrap().first_offset, end);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.damage(), None, "acceptance lasts across restarts");
}

/// The newest segments deleted by hand leave the log ending below its recovery point:
/// refused naming both offsets; accepted, it takes appends from where it ends now.
#[test]
fn deleted_newest_segments_are_refused_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let end = fill(dir.path());
    let segments = logs(dir.path());
    let kept_end: i64 = segments[segments.len() - 2].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    for newest in &segments[segments.len() - 2..] {
        std::fs::remove_file(newest).unwrap();
    }

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), kept_end);
    assert_refused(&log, &[&kept_end.to_string(), &end.to_string()]);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.damage().is_some(), "refusal lasts until accepted");
    log.accept_data_loss().unwrap();
    assert_eq!(log.recovery_point(), kept_end);
    assert_eq!(log.append(&mut batch(1, 0, b"z")).unwrap().first_offset, kept_end);
}

/// Many partitions stay within the process-wide open-file cap, and each still appends,
/// reads and reopens (its descriptors are reopened on demand).
#[test]
fn many_partitions_share_a_bounded_file_cache() {
    sluice_log::set_open_files_max(32);
    let dir = tempfile::tempdir().unwrap();
    let logs: Vec<PartitionLog> =
        (0..60).map(|i| PartitionLog::open(dir.path().join(i.to_string()), small_config()).unwrap()).collect();
    for round in 0..3 {
        for log in &logs {
            log.append(&mut batch(1, round, &[round as u8; 40])).unwrap();
            assert!(sluice_log::open_files() <= 32, "{} open", sluice_log::open_files());
        }
    }
    for log in &logs {
        let read = log.read(0, 10_000).unwrap();
        assert_eq!(common::split(&read.bytes).len(), 3);
        log.flush().unwrap();
    }
    assert!(sluice_log::reopens() > 0);
}

/// A periodic checkpoint stores what group commit made durable (without a flush), so a
/// crash followed by a lost newest segment is still caught.
#[test]
fn checkpoint_covers_group_committed_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(&mut batch(2, 100 + i, &[i as u8; 70])).unwrap();
    }
    log.sync_through(log.log_end_offset()).unwrap();
    assert_eq!(log.recovery_point(), 0, "group commit alone does not store it");
    log.checkpoint_recovery_point().unwrap();
    assert_eq!(log.recovery_point(), 40);
    drop(log);
    let newest = logs(dir.path()).pop().unwrap();
    std::fs::remove_file(newest).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_refused(&log, &["40"]);
}

/// What recovery found after a crash may be only in the page cache: a periodic checkpoint
/// stores nothing until an fsync in this process moved the durable offset past it.
#[test]
fn checkpoint_waits_for_an_fsync_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&mut batch(2, 0, b"unsynced")).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.durable_offset(), 2, "recovery counts the tail as durable");
    log.checkpoint_recovery_point().unwrap();
    assert_eq!(log.recovery_point(), 0, "but does not checkpoint it unsynced");
    log.append(&mut batch(1, 0, b"synced")).unwrap();
    log.sync_through(3).unwrap();
    log.checkpoint_recovery_point().unwrap();
    assert_eq!(log.recovery_point(), 3);
}
