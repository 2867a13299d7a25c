//! Property tests: random appends of random valid batches with small segments, reopen,
//! torn tails, garbage tails and damaged indexes; the log must serve exactly what a
//! simple model says.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{batch, split};
use proptest::prelude::*;
use sluice_log::{LogConfig, PartitionLog};

/// One stored batch as the model sees it.
#[derive(Debug, Clone)]
struct Stored {
    base: i64,
    last: i64,
    max_timestamp: i64,
    /// The batch without its base offset (the only bytes the log rewrites).
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Spec {
    records: i32,
    max_timestamp: i64,
    payload: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (1..5i32, 0..1000i64, prop::collection::vec(any::<u8>(), 0..150))
        .prop_map(|(records, max_timestamp, payload)| Spec { records, max_timestamp, payload })
}

/// Appends of one to three batches each.
fn appends() -> impl Strategy<Value = Vec<Vec<Spec>>> {
    prop::collection::vec(prop::collection::vec(spec(), 1..4), 1..40)
}

fn config(segment_bytes_max: u64, index_interval_bytes: u32) -> LogConfig {
    LogConfig { segment_bytes_max, index_interval_bytes, retention_age_max: None, ..LogConfig::default() }
}

fn config_strategy() -> impl Strategy<Value = LogConfig> {
    (200..2000u64, 1..600u32).prop_map(|(s, i)| config(s, i))
}

fn run_appends(log: &PartitionLog, appends: &[Vec<Spec>], model: &mut Vec<Stored>) {
    for group in appends {
        let mut bytes: Vec<u8> = group.iter().flat_map(|s| batch(s.records, s.max_timestamp, &s.payload)).collect();
        let info = log.append(&mut bytes).unwrap();
        assert_eq!(info.first_offset, model.last().map_or(0, |m| m.last + 1));
        for (base, body) in split(&bytes) {
            let whole: Vec<u8> = base.to_be_bytes().iter().chain(&body).copied().collect();
            let h = sluice_log::BatchHeader::parse(&whole).unwrap();
            model.push(Stored { base, last: h.last_offset(), max_timestamp: h.max_timestamp, body });
        }
    }
}

/// Every offset reads back as the batch holding it, and a full read is the whole model.
fn check_reads(log: &PartitionLog, model: &[Stored]) {
    let end = model.last().map_or(log.log_start_offset(), |m| m.last + 1);
    assert_eq!(log.log_end_offset(), end);
    for m in model {
        for offset in m.base..=m.last {
            let got = split(&log.read(offset, 0).unwrap().bytes);
            assert_eq!(got.len(), 1, "offset {offset}");
            assert_eq!(got[0], (m.base, m.body.clone()), "offset {offset}");
        }
    }
    if let Some(first) = model.first() {
        let all = split(&log.read(first.base, usize::MAX).unwrap().bytes);
        let want: Vec<(i64, Vec<u8>)> = model.iter().map(|m| (m.base, m.body.clone())).collect();
        assert_eq!(all, want);
        let some = split(&log.read(first.base, 500).unwrap().bytes);
        assert!(!some.is_empty());
        assert_eq!(&want[..some.len()], &some[..]);
    }
    assert!(log.read(end, 100).unwrap().bytes.is_empty());
    assert!(log.read(end + 1, 100).is_err());
}

fn check_timestamps(log: &PartitionLog, model: &[Stored], targets: &[i64]) {
    for &target in targets {
        let want = model.iter().find(|m| m.max_timestamp >= target).map(|m| m.base);
        let got = log.find_by_timestamp(target).unwrap().map(|h| h.header.base_offset);
        assert_eq!(got, want, "target {target}");
    }
}

fn last_file(dir: &Path, suffix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == suffix))
        .collect();
    found.sort();
    found.pop().unwrap()
}

fn base_of(path: &Path) -> i64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Modest by default to keep the suite fast; `PROPTEST_CASES` raises it for a deeper run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Appends survive a reopen byte for byte, and time lookups match the model.
    #[test]
    fn appends_reopen_read_back(config in config_strategy(), appends in appends(), targets in prop::collection::vec(0..1100i64, 5)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        run_appends(&log, &appends, &mut model);
        check_reads(&log, &model);
        check_timestamps(&log, &model, &targets);
        log.close().unwrap();
        let log = PartitionLog::open(dir.path(), config).unwrap();
        prop_assert_eq!(log.recovery_report().truncated_bytes, 0);
        prop_assert_eq!(log.recovery_report().indexes_rebuilt, 0);
        check_reads(&log, &model);
        check_timestamps(&log, &model, &targets);
        let headers = log.recent_batch_headers(usize::MAX).unwrap();
        prop_assert_eq!(headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(), model.iter().map(|m| m.base).collect::<Vec<_>>());
    }

    /// Cutting the last segment at any byte keeps every batch before the cut, drops the cut
    /// batch and what follows, and appends continue at the right offset.
    #[test]
    fn torn_tail(config in config_strategy(), appends in appends(), cut_at in any::<prop::sample::Index>(), more in prop::collection::vec(spec(), 1..3)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        run_appends(&log, &appends, &mut model);
        drop(log);
        let last = last_file(dir.path(), "log");
        let base = base_of(&last);
        let len = std::fs::metadata(&last).unwrap().len();
        let cut = cut_at.index(len as usize + 1) as u64;
        OpenOptions::new().write(true).open(&last).unwrap().set_len(cut).unwrap();
        let mut kept_len = 0u64;
        let mut cut_reached = false;
        model.retain(|m| {
            if m.base < base { return true; }
            let end = kept_len + m.body.len() as u64 + 8;
            cut_reached |= end > cut;
            if !cut_reached { kept_len = end; }
            !cut_reached
        });
        let log = PartitionLog::open(dir.path(), config).unwrap();
        prop_assert_eq!(log.recovery_report().truncated_bytes, cut - kept_len);
        check_reads(&log, &model);
        let end = model.last().map_or(base, |m| m.last + 1).max(base);
        prop_assert_eq!(log.log_end_offset(), end);
        run_appends(&log, &[more], &mut model);
        check_reads(&log, &model);
    }

    /// Garbage after the last batch is truncated and reported; nothing else changes.
    #[test]
    fn garbage_tail(config in config_strategy(), appends in appends(), garbage in prop::collection::vec(any::<u8>(), 1..300)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        run_appends(&log, &appends, &mut model);
        drop(log);
        let last = last_file(dir.path(), "log");
        OpenOptions::new().append(true).open(&last).unwrap().write_all(&garbage).unwrap();
        let log = PartitionLog::open(dir.path(), config).unwrap();
        prop_assert_eq!(log.recovery_report().truncated_bytes, garbage.len() as u64);
        check_reads(&log, &model);
    }

    /// Deleted or garbled index files are rebuilt and reads stay correct.
    #[test]
    fn damaged_index(config in config_strategy(), appends in appends(), victim in any::<prop::sample::Index>(), garble in prop::collection::vec(any::<u8>(), 0..40), targets in prop::collection::vec(0..1100i64, 5)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        run_appends(&log, &appends, &mut model);
        drop(log);
        let mut indexes: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "index" || e == "timeindex")).collect();
        indexes.sort();
        let victim = victim.get(&indexes);
        if garble.is_empty() {
            std::fs::remove_file(victim).unwrap();
        } else {
            std::fs::write(victim, &garble).unwrap();
        }
        let log = PartitionLog::open(dir.path(), config).unwrap();
        check_reads(&log, &model);
        check_timestamps(&log, &model, &targets);
    }

    /// Retention by size never deletes the active segment and leaves a readable suffix.
    #[test]
    fn retention_by_size(config in config_strategy(), appends in appends(), keep in 0..3000u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Vec::new();
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        run_appends(&log, &appends, &mut model);
        log.set_config(LogConfig { retention_bytes_max: Some(keep), ..config });
        let before = log.size_bytes();
        let report = log.enforce_retention(0).unwrap();
        prop_assert_eq!(before - report.bytes_deleted, log.size_bytes());
        // Kafka's rule: deletion never takes the log below `retention.bytes`.
        prop_assert!(report.segments_deleted == 0 || log.size_bytes() >= keep);
        // ...and stops as soon as dropping the oldest remaining segment would.
        if log.segment_count() > 1 {
            let mut logs: Vec<_> = std::fs::read_dir(dir.path()).unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            logs.sort();
            let oldest = std::fs::metadata(&logs[0]).unwrap().len();
            prop_assert!(log.size_bytes() - oldest < keep);
        }
        let start = log.log_start_offset();
        model.retain(|m| m.base >= start);
        check_reads(&log, &model);
    }
}
