use std::path::Path;

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::TruncateError;
use crate::partition::PartitionLog;
use crate::test_batch::batch;

fn open(dir: &Path, segment_bytes_max: u64) -> PartitionLog {
    PartitionLog::open(dir, LogConfig { segment_bytes_max, ..LogConfig::default() }).unwrap()
}

/// Base offsets and leader epochs of every batch from `offset` on.
fn batches_from(log: &PartitionLog, offset: i64) -> Vec<(i64, i32)> {
    let bytes = log.read(offset, usize::MAX).unwrap().bytes;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((header.base_offset, header.partition_leader_epoch));
        at += header.total_len();
    }
    out
}

/// `append_with_epoch` assigns offsets from the log end and stamps every batch's epoch,
/// and the stamped batches still pass their CRC on reopen.
#[test]
fn append_with_epoch_stamps_offsets_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 1 << 20);
    let mut two = batch(2, 0, b"a");
    two.extend(batch(3, 0, b"b"));
    let info = log.append_with_epoch(&mut two, 7).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    log.append_with_epoch(&mut batch(1, 0, b"c"), 9).unwrap();
    assert_eq!(batches_from(&log, 0), vec![(0, 7), (2, 7), (5, 9)]);
    log.flush().unwrap();
    drop(log);
    let log = open(dir.path(), 1 << 20);
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert_eq!(batches_from(&log, 0), vec![(0, 7), (2, 7), (5, 9)]);
}

/// A cut inside the active segment drops the suffix, lowers the durable watermark and the
/// recovery point, and the next append lands at the cut; all of it survives a reopen.
#[test]
fn truncate_suffix_in_active_segment_then_append_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 1 << 20);
    for payload in [b"a", b"b", b"c"] {
        log.append(&mut batch(2, 0, payload)).unwrap();
    }
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 6);
    log.truncate_suffix(2).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.durable_offset(), 2);
    assert_eq!(log.recovery_point(), 2);
    assert_eq!(log.append(&mut batch(1, 0, b"x")).unwrap().first_offset, 2);
    log.flush().unwrap();
    assert_eq!(batches_from(&log, 0), vec![(0, -0), (2, 0)]);
    drop(log);
    let log = open(dir.path(), 1 << 20);
    assert!(log.damage().is_none(), "{:?}", log.damage());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(batches_from(&log, 0).len(), 2);
}

/// A cut in an older segment deletes the later segments and reopens the cut one as the
/// active segment; cutting at a segment's base empties it; reopen agrees.
#[test]
fn truncate_suffix_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // 62-byte batches, two per segment.
    let log = open(dir.path(), 130);
    for i in 0..6 {
        log.append(&mut batch(1, i, b"z")).unwrap();
    }
    log.flush().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(is_log).count(), 3);
    log.truncate_suffix(3).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(is_log).count(), 2);
    log.truncate_suffix(2).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.append(&mut batch(1, 0, b"y")).unwrap().first_offset, 2);
    assert_eq!(log.read(2, 1000).unwrap().bytes.len(), 62);
    log.flush().unwrap();
    drop(log);
    let log = open(dir.path(), 130);
    assert!(log.damage().is_none(), "{:?}", log.damage());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(batches_from(&log, 0).iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 1, 2]);
}

/// Cuts inside a batch or below the log start are refused and change nothing; a cut at
/// or past the end is a no-op.
#[test]
fn truncate_suffix_refuses_bad_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 1 << 20);
    log.append(&mut batch(3, 0, b"a")).unwrap();
    assert!(matches!(log.truncate_suffix(1), Err(TruncateError::NotBatchBoundary { offset: 1, batch_base: 0 })));
    assert!(matches!(log.truncate_suffix(-1), Err(TruncateError::BelowLogStart { .. })));
    log.truncate_suffix(3).unwrap();
    log.truncate_suffix(10).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    log.truncate_suffix(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(&mut batch(1, 0, b"b")).unwrap().first_offset, 0);
}

/// `reset_to` drops everything and goes on at the given offset, durable at once, and the
/// reopened log starts there without being refused.
#[test]
fn reset_to_continues_at_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 130);
    for i in 0..5 {
        log.append(&mut batch(1, i, b"z")).unwrap();
    }
    log.flush().unwrap();
    log.reset_to(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.durable_offset()), (100, 100, 100));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(is_log).count(), 1);
    assert_eq!(log.append(&mut batch(2, 0, b"n")).unwrap().first_offset, 100);
    log.flush().unwrap();
    drop(log);
    let log = open(dir.path(), 130);
    assert!(log.damage().is_none(), "{:?}", log.damage());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 102));
    // Reset onto the base of an existing segment empties that segment.
    log.reset_to(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
}

/// A flush in flight when a truncation happens does not publish the old end.
#[test]
fn truncation_fences_a_round_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(open(dir.path(), 1 << 20));
    log.append(&mut batch(4, 0, b"a")).unwrap();
    log.append(&mut batch(4, 0, b"b")).unwrap();
    log.disk().gate().close();
    let syncer = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || log.sync_through(8))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while log.disk().gate().waiting() == 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    let truncator = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || log.truncate_suffix(4))
    };
    // The truncation's own fsync waits at the gate beside the flusher's.
    while log.disk().gate().waiting() < 2 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    log.disk().gate().open();
    truncator.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    // Asked for offsets the truncation dropped, the sync settles for what is left.
    syncer.join().unwrap().unwrap();
    assert_eq!(log.durable_offset(), 4);
    assert_eq!(log.log_end_offset(), 4);
}

fn is_log(entry: &std::io::Result<std::fs::DirEntry>) -> bool {
    entry.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
}
