//! Example-based tests of the public API: append, read, reopen, timestamps, retention.

mod common;

use common::{batch, small_config, split};
use sluice_log::{AppendError, FirstBatch, LogConfig, PartitionLog, ReadError};

/// Appended batches come back with their assigned offsets, across rolls and a reopen.
#[test]
fn append_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut expected = Vec::new();
    for i in 0..20 {
        let mut b = batch(3, 1000 + i, &[i as u8; 40]);
        let info = log.append(&mut b).unwrap();
        assert_eq!(info.first_offset, i * 3);
        assert_eq!(info.last_offset, i * 3 + 2);
        expected.push(b);
    }
    assert!(log.segment_count() > 1);
    assert_eq!(log.log_end_offset(), 60);
    let check = |log: &PartitionLog| {
        for (i, b) in expected.iter().enumerate() {
            for offset in [i as i64 * 3, i as i64 * 3 + 2] {
                let r = log.read(offset, 1).unwrap();
                assert_eq!(&r.bytes, b, "offset {offset}");
            }
        }
        let all = log.read(0, usize::MAX).unwrap();
        assert_eq!(all.bytes, expected.concat());
        assert!(log.read(60, 100).unwrap().bytes.is_empty());
        assert!(matches!(log.read(61, 100), Err(ReadError::OffsetOutOfRange { .. })));
    };
    check(&log);
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert_eq!(log.recovery_report().indexes_rebuilt, 0);
    assert_eq!(log.log_end_offset(), 60);
    check(&log);
    let mut b = batch(1, 5, b"x");
    assert_eq!(log.append(&mut b).unwrap().first_offset, 60);
}

/// Bad input is refused whole: nothing is written.
#[test]
fn append_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { batch_bytes_max: 200, ..LogConfig::default() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert!(matches!(log.append(&mut []), Err(AppendError::Empty)));
    let mut big = batch(1, 0, &[0; 300]);
    assert!(matches!(log.append(&mut big), Err(AppendError::TooLarge { .. })));
    let mut two = [batch(1, 0, b"a"), batch(1, 0, b"b")].concat();
    two.push(7);
    assert!(matches!(log.append(&mut two), Err(AppendError::Corrupt { at: 124, .. })));
    let mut bad_crc = batch(1, 0, b"a");
    bad_crc[61] ^= 1;
    assert!(matches!(log.append(&mut bad_crc), Err(AppendError::Corrupt { at: 0, .. })));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    let mut two = [batch(2, 0, b"a"), batch(1, 0, b"b")].concat();
    let info = log.append(&mut two).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    let got = split(&log.read(0, 1 << 20).unwrap().bytes);
    assert_eq!(got.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![0, 2]);
}

/// A batch whose record count disagrees with its offset range, or is 0, is refused before
/// anything is written, alone or among valid batches; the log end does not move.
#[test]
fn append_refuses_bad_record_count() {
    use sluice_log::batch::BatchError;
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let with_count = |count: i32, last_delta: i32| {
        let mut b = batch(1, 0, b"a");
        b[23..27].copy_from_slice(&last_delta.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    for (count, delta) in [(0, 0), (0, -1), (1000, 0), (1, 999), (-5, 0)] {
        let mut b = with_count(count, delta);
        let refused = log.append(&mut b);
        assert!(
            matches!(
                refused,
                Err(AppendError::Corrupt {
                    at: 0,
                    reason: BatchError::BadRecordCount { .. } | BatchError::BadOffsetDelta(_)
                })
            ),
            "count {count} delta {delta}: {refused:?}"
        );
        let mut mixed = [batch(1, 0, b"ok"), with_count(count, delta)].concat();
        assert!(matches!(log.append(&mut mixed), Err(AppendError::Corrupt { .. })));
    }
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.append(&mut batch(1, 0, b"x")).unwrap().first_offset, 0);
}

/// The time lookup finds the first batch whose max timestamp reaches the target.
#[test]
fn find_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let stamps = [10, 30, 20, 50, 40, 60, 70, 65, 90, 80];
    for ts in stamps {
        log.append(&mut batch(2, ts, &[1; 50])).unwrap();
    }
    for target in [0, 10, 11, 25, 30, 45, 55, 66, 71, 90] {
        let want = stamps.iter().position(|&ts| ts >= target).unwrap();
        let hit = log.find_by_timestamp(target).unwrap().unwrap();
        assert_eq!(hit.header.base_offset, want as i64 * 2, "target {target}");
        assert_eq!(hit.batch.len(), hit.header.total_len());
    }
    assert!(log.find_by_timestamp(91).unwrap().is_none());
}

/// The log's largest timestamp is the largest over all its segments, whichever holds it
/// (ListOffsets MAX_TIMESTAMP looks it up), and there is none in an empty log.
#[test]
fn max_timestamp_spans_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.max_timestamp(), None);
    for ts in [10, 90, 20, 90, 40, 50, 60, 70] {
        log.append(&mut batch(2, ts, &[1; 50])).unwrap();
    }
    assert!(log.segment_count() >= 2);
    assert_eq!(log.max_timestamp(), Some(90));
    assert_eq!(log.find_by_timestamp(90).unwrap().unwrap().header.base_offset, 2, "the first batch holding it");
}

/// Retention deletes whole old segments by size and by age and moves the log start.
#[test]
fn retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..30 {
        log.append(&mut batch(1, 1000 + i, &[0; 100])).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments >= 5);
    let mut config = small_config();
    config.retention_bytes_max = Some(1000);
    config.retention_age_max = None;
    log.set_config(config.clone());
    let before = log.size_bytes();
    let report = log.enforce_retention(0).unwrap();
    assert!(report.segments_deleted > 0);
    // Kafka's rule: what remains still holds at least `retention.bytes`.
    assert!(log.size_bytes() >= 1000);
    assert!(log.size_bytes() < before);
    assert_eq!(report.log_start_offset, log.log_start_offset());
    assert!(matches!(log.read(0, 10), Err(ReadError::OffsetOutOfRange { .. })));
    assert!(log.read(log.log_start_offset(), 10).is_ok());
    config.retention_bytes_max = None;
    config.retention_age_max = Some(std::time::Duration::from_millis(10));
    log.set_config(config);
    let report = log.enforce_retention(1000 + 30 + 10 + 1).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(report.segments_deleted > 0);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 3);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 30);
}

/// A replicated log asks where retention would start the log, then deletes only segments
/// wholly below the offset its Raft log released.
#[test]
fn retention_target_and_deletion_below_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..30 {
        log.append(&mut batch(1, 1000 + i, &[0; 100])).unwrap();
    }
    let mut config = small_config();
    config.retention_bytes_max = Some(1000);
    config.retention_age_max = None;
    log.set_config(config);
    let bases = log.segment_base_offsets();
    let target = log.retention_target(0, None);
    assert!(target > 0 && bases.contains(&target), "a segment boundary: {target} of {bases:?}");
    assert_eq!(log.segment_base_offsets(), bases, "nothing deleted by asking");
    let below = bases[1] + 1;
    let report = log.enforce_retention_below(0, None, below).unwrap();
    assert_eq!(report.segments_deleted, 1, "only the segment wholly below {below}");
    assert_eq!(log.log_start_offset(), bases[1]);
    log.enforce_retention_below(0, None, target).unwrap();
    assert_eq!(log.log_start_offset(), target);
}

/// An active segment older than `segment_age_max` is rolled by the next append or by a
/// retention pass; an empty one is not.
#[test]
fn roll_by_age() {
    // The age is the time under test, so the sleeps are part of the scenario. A loaded
    // machine may stall longer than the age between two appends; then the scenario's
    // premise ("no roll yet") did not hold, and it runs again with a longer age.
    for age_ms in [20, 200, 2000] {
        if roll_by_age_with(std::time::Duration::from_millis(age_ms)) {
            return;
        }
    }
    panic!("two appends never ran within 2 s of each other");
}

/// The roll-by-age scenario; false if the machine was too slow for its premise.
fn roll_by_age_with(age: std::time::Duration) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_age_max: age, retention_age_max: None, ..LogConfig::default() };
    let opened = std::time::Instant::now();
    let log = PartitionLog::open(dir.path(), config).unwrap();
    log.enforce_retention(0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch(1, 0, b"a")).unwrap();
    log.append(&mut batch(1, 0, b"b")).unwrap();
    if opened.elapsed() >= age {
        return false;
    }
    assert_eq!(log.segment_count(), 1);
    std::thread::sleep(age + age / 2);
    log.append(&mut batch(1, 0, b"c")).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    std::thread::sleep(age + age / 2);
    log.enforce_retention(0).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 3]);
    assert_eq!(split(&log.read(0, usize::MAX).unwrap().bytes).len(), 3);
    true
}

/// A read that starts in one segment continues into the next while room remains, and
/// never returns a partial batch.
#[test]
fn read_spans_segments_with_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(&mut batch(1, i, &[0; 89])).unwrap(); // 150 bytes each
    }
    assert!(log.segment_count() >= 4);
    let r = log.read(2, 700).unwrap();
    assert_eq!(r.bytes.len(), 600);
    assert_eq!(split(&r.bytes).iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    assert_eq!(log.read(2, 10).unwrap().bytes.len(), 150);
    assert_eq!(r.log_end_offset, 20);
}

/// A read that may not exceed its limit (a Fetch's later partitions, KIP-74) returns no
/// bytes when the first batch does not fit, and whole batches within the limit otherwise,
/// across segments.
#[test]
fn read_within_limit_never_exceeds_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..20 {
        log.append(&mut batch(1, i, &[0; 89])).unwrap(); // 150 bytes each
    }
    assert!(log.read_limited(2, 149, FirstBatch::WithinLimit).unwrap().bytes.is_empty());
    assert!(log.read_limited(2, 0, FirstBatch::WithinLimit).unwrap().bytes.is_empty());
    assert_eq!(log.read_limited(2, 150, FirstBatch::WithinLimit).unwrap().bytes.len(), 150);
    assert_eq!(log.read_limited(2, 700, FirstBatch::WithinLimit).unwrap().bytes.len(), 600);
    assert_eq!(log.read_limited(2, 0, FirstBatch::Whole).unwrap().bytes.len(), 150);
}
