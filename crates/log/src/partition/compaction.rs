//! One compaction pass over a partition's closed segments (`cleanup.policy=compact`): what it
//! covers, and the swap of each cleaned segment into the log (the record work is in
//! `compact.rs`).
//!
//! Crash safety: a cleaned segment and its indexes are written to `.tmp` files and fsynced
//! first. The swap, under the partition lock, removes the old indexes, renames the cleaned
//! `.log` over the old one (atomic), then renames the indexes in. A crash before the log's
//! rename leaves the old log (missing indexes are rebuilt on open, `.tmp` files deleted); a
//! crash after it leaves the new log. Either holds every record the cleaner must keep.
//!
//! Readers: a reader that took a segment's file before the swap keeps reading the old file
//! (its descriptor outlives the rename); readers after it get the new one.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{facts, PartitionLog};
use crate::cadence::Cadence;
use crate::compact::{self, Cleaned, Outcome, Rules, KEY_MAP_BYTES_MAX};
use crate::compaction_checkpoint::{self, Checkpoint};
use crate::config::{Compaction, FlushPolicy};
use crate::error::CompactError;
use crate::index_file::IndexFile;
use crate::layout::{file_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::segment::{Segment, SegmentParts, SegmentView};

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Whether a pass ran (something was dirty or a tombstone was due).
    pub ran: bool,
    pub segments_rewritten: usize,
    pub records_removed: u64,
    pub bytes_removed: u64,
}

/// What compaction did to this log since it was opened (metrics).
#[derive(Debug, Default)]
pub struct CompactionTotals {
    /// Passes that ran (something was dirty or a tombstone was due).
    pub passes: AtomicU64,
    pub records_removed: AtomicU64,
    pub bytes_removed: AtomicU64,
}

/// Where compaction stands in this log (stored in `compaction-checkpoint` after each pass).
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Offsets below this were covered by a pass's key map, and when each segment was first
    /// compacted: its tombstones' retention counts from then.
    stored: Checkpoint,
    /// When the earliest tombstone a pass kept may go: a pass runs then even if nothing is
    /// dirty (not stored: the first pass after a start finds it again).
    tombstones_due_ms: Option<i64>,
    /// Whether the first pass since open ran: it looks for due tombstones everywhere.
    looked_since_open: bool,
}

impl Progress {
    pub(super) fn load(dir: &Path) -> Progress {
        Progress { stored: compaction_checkpoint::load(dir), ..Progress::default() }
    }
}

/// Which part of the log a pass may cover.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// Only segments ending at or below this offset.
    below: i64,
}

impl Scope {
    /// A single node's log: every closed segment.
    const WHOLE: Scope = Scope { below: i64::MAX };
}

/// One closed segment a pass may cover.
struct Candidate {
    view: SegmentView,
    end_offset: i64,
}

/// What a pass covers, taken under the partition lock.
struct Plan {
    compaction: Compaction,
    interval_bytes: u32,
    /// Closed segments old enough to compact, oldest first (a prefix of the log).
    candidates: Vec<Candidate>,
    dirty_from: i64,
}

impl PartitionLog {
    /// Runs one compaction pass if the log is compacted and something is due; blocking (file
    /// I/O), for a background thread. One pass at a time per log: a call while one runs
    /// returns at once. The active segment is never touched.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionReport, CompactError> {
        self.compact_within(now_ms, Scope::WHOLE, KEY_MAP_BYTES_MAX)
    }

    /// `compact` for a log that is also a Raft log (a replicated partition): only segments
    /// wholly below `applied_end` (what this replica committed and applied: never a suffix
    /// Raft may still truncate) are covered. Offsets never move, so each Raft entry's records
    /// are still found at its offsets (an emptied run spanning several entries is cut back
    /// into one empty batch per entry when the entries are read for a follower).
    pub fn compact_replicated(&self, now_ms: i64, applied_end: i64) -> Result<CompactionReport, CompactError> {
        self.compact_within(now_ms, Scope { below: applied_end }, KEY_MAP_BYTES_MAX)
    }

    /// `compact` over `scope` with a key map of at most `key_map_bytes_max`.
    fn compact_within(
        &self,
        now_ms: i64,
        scope: Scope,
        key_map_bytes_max: usize,
    ) -> Result<CompactionReport, CompactError> {
        let Ok(mut progress) = self.compaction.try_lock() else { return Ok(CompactionReport::default()) };
        let Some(plan) = self.compaction_plan(&mut progress, now_ms, scope.below) else {
            return Ok(CompactionReport::default());
        };
        let dirty: Vec<SegmentView> =
            plan.candidates.iter().filter(|c| c.end_offset > plan.dirty_from).map(|c| c.view.clone()).collect();
        let (map, map_end) = compact::build_key_map(&dirty, plan.dirty_from, key_map_bytes_max)?;
        let retention_ms = millis(plan.compaction.tombstone_retention);
        let mut report = CompactionReport { ran: true, ..CompactionReport::default() };
        let mut tombstones_due_ms: Option<i64> = None;
        progress.stored.compacted_at_ms.retain(|base, _| plan.candidates.iter().any(|c| c.view.base_offset == *base));
        for candidate in plan.candidates.iter().filter(|c| c.view.base_offset < map_end) {
            let base = candidate.view.base_offset;
            // A segment compacted for the first time keeps its tombstones: their retention
            // starts now (`delete.retention.ms` after the segment's compaction).
            let first_time = candidate.end_offset > plan.dirty_from;
            let compacted_at_ms = *progress.stored.compacted_at_ms.entry(base).or_insert(now_ms);
            let tombstones_go_ms = compacted_at_ms.saturating_add(retention_ms);
            let drop_tombstones = !first_time && tombstones_go_ms <= now_ms;
            let rules = Rules { map: &map, drop_tombstones, index_interval_bytes: plan.interval_bytes };
            let outcome = compact::clean_segment(&self.dir, &candidate.view, &rules).inspect_err(|_| {
                // A full disk must not keep the half-written copy: recovery would only remove
                // it at the next open.
                for path in compact::temp_paths(&self.dir, base) {
                    let _ = std::fs::remove_file(path);
                }
            })?;
            let tombstones_kept = match outcome {
                Outcome::Unchanged { tombstones_kept } => tombstones_kept,
                Outcome::Cleaned(cleaned) => {
                    let (records_removed, tombstones_kept) = (cleaned.records_removed, cleaned.tombstones_kept);
                    let bytes_removed = cleaned.source_len.saturating_sub(cleaned.len);
                    if self.install(cleaned)? {
                        report.segments_rewritten += 1;
                        report.records_removed += records_removed;
                        report.bytes_removed += bytes_removed;
                    }
                    tombstones_kept
                }
            };
            if tombstones_kept {
                let due = tombstones_go_ms.max(now_ms.saturating_add(1));
                tombstones_due_ms = Some(tombstones_due_ms.map_or(due, |d: i64| d.min(due)));
            }
        }
        if report.segments_rewritten > 0 {
            self.disk.sync_dir(&self.dir)?;
        }
        progress.stored.cleaned_through = progress.stored.cleaned_through.max(map_end);
        progress.tombstones_due_ms = tombstones_due_ms;
        progress.looked_since_open = true;
        if let Err(e) = compaction_checkpoint::store(&self.dir, &progress.stored) {
            // The next start compacts anew from the last stored point: more work, no loss.
            tracing::warn!(dir = %self.dir.display(), error = %e, "compaction checkpoint not stored");
        }
        self.compaction_totals.passes.fetch_add(1, Ordering::Relaxed);
        self.compaction_totals.records_removed.fetch_add(report.records_removed, Ordering::Relaxed);
        self.compaction_totals.bytes_removed.fetch_add(report.bytes_removed, Ordering::Relaxed);
        Ok(report)
    }

    /// What compaction removed from this log since it was opened.
    pub fn compaction_totals(&self) -> &CompactionTotals {
        &self.compaction_totals
    }

    fn compaction_plan(&self, progress: &mut Progress, now_ms: i64, below: i64) -> Option<Plan> {
        let state = self.state();
        let compaction = state.config.compaction?;
        if state.damage.is_some() || self.watermark.is_poisoned() {
            return None;
        }
        let newest_allowed_ms = now_ms.saturating_sub(millis(compaction.lag_min));
        let closed = &state.segments[..state.segments.len() - 1];
        // Under a syncing policy only what is fsynced is compacted: a compacted (and fsynced)
        // segment must never lose a record to a later one that a crash could still take away.
        let durable = match state.config.flush {
            FlushPolicy::Os => i64::MAX,
            _ => self.durable_offset(),
        }
        .min(below);
        let candidates: Vec<Candidate> = closed
            .iter()
            .take_while(|s| s.end_offset() <= durable)
            .take_while(|s| facts(s).newest_ms.is_none_or(|newest| newest <= newest_allowed_ms))
            // A prefix of the log, stopping at a file that cannot be opened.
            .map_while(|s| {
                let view = s.view().ok()?;
                Some(Candidate { view, end_offset: s.end_offset() })
            })
            .collect();
        if progress.stored.cleaned_through > state.log_end {
            // The log was cut back below what a pass covered (an accepted data loss): what is
            // written from here on is new, so the whole log is compacted anew.
            progress.stored = Checkpoint::default();
        }
        let dirty_from = progress.stored.cleaned_through.max(state.log_start());
        let total_bytes: u64 = candidates.iter().map(|c| c.view.len).sum();
        let dirty_bytes: u64 = candidates.iter().filter(|c| c.end_offset > dirty_from).map(|c| c.view.len).sum();
        let first_dirty = candidates.iter().find(|c| c.end_offset > dirty_from);
        let dirty = first_dirty.is_some()
            && dirty_bytes.saturating_mul(1000)
                >= total_bytes.saturating_mul(u64::from(compaction.dirty_per_mille_min));
        // `max.compaction.lag.ms`: the oldest dirty record waited long enough, whatever the ratio.
        let overdue = match (compaction.lag_max, first_dirty) {
            (Some(lag_max), Some(first)) => {
                first_timestamp_ms(&first.view).is_some_and(|ts| ts <= now_ms.saturating_sub(millis(lag_max)))
            }
            _ => false,
        };
        // After a start, one pass looks at every compacted segment for tombstones due.
        let tombstones_due = progress.tombstones_due_ms.is_some_and(|due| due <= now_ms)
            || (!progress.looked_since_open && !progress.stored.compacted_at_ms.is_empty());
        if !dirty && !overdue && !tombstones_due {
            return None;
        }
        let interval_bytes = state.config.index_interval_bytes;
        Some(Plan { compaction, interval_bytes, candidates, dirty_from })
    }

    /// Swaps a cleaned segment in, unless the segment changed or went meanwhile (retention);
    /// says whether it did.
    fn install(&self, cleaned: Cleaned) -> Result<bool, CompactError> {
        let mut state = self.state();
        let closed = state.segments.len() - 1;
        let found = state.segments[..closed].iter().position(|s| s.base_offset == cleaned.base_offset);
        let Some(index) = found.filter(|&i| state.segments[i].len() == cleaned.source_len) else {
            cleaned.discard(&self.dir);
            return Ok(false);
        };
        let base = cleaned.base_offset;
        let [log_tmp, index_tmp, time_tmp] = compact::temp_paths(&self.dir, base);
        let [log_path, index_path, time_path] =
            [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX].map(|suffix| file_path(&self.dir, base, suffix));
        // The old indexes go first: from here a crash leaves a log without indexes, which
        // recovery rebuilds from whichever log is in place.
        for path in [&index_path, &time_path] {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    cleaned.discard(&self.dir);
                    return Err(e.into());
                }
            }
        }
        if let Err(e) = std::fs::rename(&log_tmp, &log_path) {
            cleaned.discard(&self.dir);
            return Err(e.into());
        }
        // The new log is in place: the segment must follow it whatever happens to the
        // indexes (their entries are kept in memory; recovery rebuilds missing files).
        for (from, to) in [(&index_tmp, &index_path), (&time_tmp, &time_path)] {
            if let Err(e) = std::fs::rename(from, to) {
                tracing::warn!(index = %to.display(), error = %e, "compacted index not renamed; rebuilt on next open");
            }
        }
        let old = &state.segments[index];
        let (end_offset, max_timestamp) = (old.end_offset(), old.max_timestamp());
        let log = match OpenOptions::new().read(true).write(true).open(&log_path) {
            Ok(file) => file,
            Err(_) => cleaned.log,
        };
        let segment = Segment::from_parts(
            &self.dir,
            SegmentParts {
                base_offset: base,
                log,
                log_len: cleaned.len,
                end_offset,
                index: IndexFile::open(index_path, cleaned.offsets)?,
                time_index: IndexFile::open(time_path, cleaned.times)?,
                cadence: Cadence::new(),
                max_timestamp,
            },
        );
        state.segments[index] = segment;
        Ok(true)
    }
}

/// The base timestamp of a segment's first batch (its oldest record's, for producers that
/// stamp in order), or `None` if it cannot be read or is unset (-1).
fn first_timestamp_ms(view: &SegmentView) -> Option<i64> {
    use std::os::unix::fs::FileExt;
    // RecordBatch v2: baseOffset(8) length(4) partitionLeaderEpoch(4) magic(1) crc(4)
    // attributes(2) lastOffsetDelta(4), then baseTimestamp(8).
    const BASE_TIMESTAMP_AT: u64 = 27;
    if view.len < BASE_TIMESTAMP_AT + 8 {
        return None;
    }
    let mut bytes = [0u8; 8];
    view.file.read_exact_at(&mut bytes, BASE_TIMESTAMP_AT).ok()?;
    Some(i64::from_be_bytes(bytes)).filter(|ts| *ts >= 0)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::error::AppendError;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;
    use sluice_records::convert::{encode_batch, new_record, read_v2_records};
    use std::path::Path;

    const RETENTION: Duration = Duration::from_secs(60);
    const ACTIVE: &str = "active active active active active active active active active active active active \
                          active active active active active active active active active active active active \
                          active active active active active active active active active active active active \
                          active active active active active active active active active active active active";

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes_max: 400,
            compaction: Some(Compaction {
                lag_min: Duration::ZERO,
                lag_max: None,
                tombstone_retention: RETENTION,
                dirty_per_mille_min: 0,
            }),
            ..LogConfig::default()
        }
    }

    /// One batch of (key, value) records; a None value is a tombstone.
    fn batch(records: &[(&str, Option<&str>)], compression: Compression) -> Vec<u8> {
        let records: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let value = v.map(|v| Bytes::copy_from_slice(v.as_bytes()));
                new_record(i as i64, 1000, Some(Bytes::copy_from_slice(k.as_bytes())), value, vec![])
            })
            .collect();
        encode_batch(&records, compression).unwrap()
    }

    /// Every record from the log start: (offset, key, value).
    fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let read = log.read(log.log_start_offset(), usize::MAX).unwrap();
        let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
        read_v2_records(&read.bytes, 0)
            .flat_map(|b| b.unwrap().records.unwrap())
            .map(|r| (r.offset, text(r.key).unwrap(), text(r.value)))
            .collect()
    }

    /// `fill_unsynced`, then an fsync of everything.
    fn fill(log: &PartitionLog) {
        fill_unsynced(log);
        log.flush().unwrap();
    }

    /// Writes 40 updates of three keys (plain and gzip batches) and a tombstone for `b`, then
    /// a last record in the active segment.
    fn fill_unsynced(log: &PartitionLog) {
        for round in 0..20 {
            let v = |k: &str| format!("{k}{round}");
            let (a, b, c) = (v("a"), v("b"), v("c"));
            log.append(&mut batch(&[("a", Some(&a)), ("b", Some(&b))], Compression::None)).unwrap();
            log.append(&mut batch(&[("c", Some(&c))], Compression::Gzip)).unwrap();
        }
        log.append(&mut batch(&[("b", None)], Compression::None)).unwrap();
        log.append(&mut batch(&[("c", Some("c-last"))], Compression::Lz4)).unwrap();
        // Larger than what a segment has left: it rolls, so everything above is closed.
        let segments = log.segment_count();
        log.append(&mut batch(&[("d", Some(ACTIVE))], Compression::None)).unwrap();
        assert_eq!(log.segment_count(), segments + 1);
        assert!(log.segment_count() > 3);
    }

    fn latest(log: &PartitionLog) -> Vec<(String, Option<String>)> {
        contents(log).into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, config()).unwrap()
    }

    /// A replicated log's pass covers only segments below what was applied and keeps every
    /// record's offset; a second log fed those compacted batches with `append_with_epoch` (a
    /// follower sent the leader's log) ends with the same offsets and records, while a
    /// producer's append of them is refused (its counts are exact).
    #[test]
    fn replicated_pass_stays_below_the_applied_end_and_a_follower_takes_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let (before, latest_before) = (contents(&log), latest(&log));
        let applied_end = log.segment_base_offsets()[2];
        let report = log.compact_replicated(1_000_000, applied_end).unwrap();
        assert!(report.records_removed > 0, "{report:?}");
        let after = contents(&log);
        let above =
            |c: &[(i64, String, Option<String>)]| c.iter().filter(|r| r.0 >= applied_end).cloned().collect::<Vec<_>>();
        assert_eq!(above(&after), above(&before), "nothing at or above the applied end changed");
        assert!(after.iter().all(|r| before.contains(r)), "kept records keep their offsets");
        assert_eq!(latest(&log).last(), latest_before.last());
        let compacted = log.read(0, usize::MAX).unwrap().bytes;
        let fresh = tempfile::tempdir().unwrap();
        let follower = open(fresh.path());
        follower.append_with_epoch(&mut compacted.clone(), 3).unwrap();
        assert_eq!(follower.log_end_offset(), log.log_end_offset());
        assert_eq!(contents(&follower), after);
        let producer = tempfile::tempdir().unwrap();
        let refused = open(producer.path()).append(&mut compacted.clone());
        assert!(matches!(refused, Err(AppendError::Corrupt { .. })), "a producer's batches are counted exactly");
    }

    /// A pass keeps the latest record per key (the tombstone too, within its retention) with
    /// its original offset, leaves the log end alone, and survives a reopen; a later pass past
    /// `delete.retention.ms` drops the tombstone.
    #[test]
    fn keeps_latest_per_key_and_then_drops_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let before = contents(&log);
        let end = log.log_end_offset();
        let size_before = log.size_bytes();
        let now = 1_000_000;
        let report = log.compact(now).unwrap();
        assert!(report.segments_rewritten > 0 && report.records_removed > 0, "{report:?}");
        assert!(report.bytes_removed > 0);
        let after = contents(&log);
        let expected = |k: &str| before.iter().rev().find(|(_, key, _)| key == k).cloned().unwrap();
        assert_eq!(after, vec![expected("b"), expected("a"), expected("c"), expected("d")].tap_sort());
        assert_eq!(log.log_end_offset(), end);
        let offsets: Vec<i64> = after.iter().map(|r| r.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(log.compact(now).unwrap(), CompactionReport::default(), "nothing dirty, no tombstone due");
        drop(log);
        let log = open(dir.path());
        assert_eq!(contents(&log), after, "the compacted log reopens as it was");
        // The checkpoint kept the segments' compaction time across the reopen: the tombstone
        // stays until `delete.retention.ms` after it, then goes, with nothing new written.
        let later = now + RETENTION.as_millis() as i64;
        assert_eq!(log.compact(later - 1).unwrap().records_removed, 0);
        let report = log.compact(later).unwrap();
        assert_eq!(report.records_removed, 1, "{report:?}");
        assert_eq!(
            latest(&log),
            [("a".into(), Some("a19".into())), ("c".into(), Some("c-last".into())), ("d".into(), Some(ACTIVE.into()))]
        );
        assert_eq!(log.log_end_offset(), end);
        assert!(!log.read(end - 1, 1).unwrap().bytes.is_empty());
        // Runs of emptied batches became single empty batches: far fewer bytes than before.
        assert!(log.size_bytes() < size_before / 2, "{} of {size_before} bytes", log.size_bytes());
    }

    /// A key map too small for the log covers it over several passes, each one correct: the
    /// result is the same as with one big map.
    #[test]
    fn small_key_map_takes_several_passes() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let mut passes = 0;
        while log.compact_within(1_000_000, Scope::WHOLE, 1).unwrap().ran {
            passes += 1;
            assert!(passes < 1000, "passes must end");
        }
        assert!(passes > 2, "{passes} passes");
        let reference = tempfile::tempdir().unwrap();
        let whole = open(reference.path());
        fill(&whole);
        whole.compact(1_000_000).unwrap();
        assert_eq!(contents(&log), contents(&whole));
    }

    /// Under `always`, a segment not yet fsynced is not compacted.
    #[test]
    fn only_durable_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill_unsynced(&log);
        assert!(!log.compact(1_000_000).unwrap().ran, "nothing was fsynced yet");
        log.flush().unwrap();
        assert!(log.compact(1_000_000).unwrap().ran);
    }

    /// A batch whose records cannot be read (its CRC holds) is kept whole, and the pass goes on.
    #[test]
    fn unreadable_records_are_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let mut odd = crate::test_batch::batch(1, 1000, b"not a record");
        log.append(&mut odd).unwrap();
        fill(&log);
        let report = log.compact(1_000_000).unwrap();
        assert!(report.segments_rewritten > 0, "{report:?}");
        assert_eq!(log.read(0, 1).unwrap().bytes, odd, "kept as it was");
    }

    /// `min.compaction.lag.ms`: segments whose records are younger are left alone.
    #[test]
    fn young_segments_wait_for_the_lag() {
        let dir = tempfile::tempdir().unwrap();
        let lagged = LogConfig {
            compaction: Some(Compaction {
                lag_min: Duration::from_secs(10),
                lag_max: None,
                tombstone_retention: RETENTION,
                dirty_per_mille_min: 0,
            }),
            ..config()
        };
        let log = PartitionLog::open(dir.path(), lagged).unwrap();
        fill(&log);
        let before = contents(&log);
        assert!(!log.compact(1000 + 9_999).unwrap().ran);
        assert_eq!(contents(&log), before);
        assert!(log.compact(1000 + 10_000).unwrap().segments_rewritten > 0);
    }

    /// `min.cleanable.dirty.ratio`: a pass waits until enough was written since the last one.
    #[test]
    fn waits_for_the_dirty_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let half = LogConfig {
            compaction: Some(Compaction { dirty_per_mille_min: 500, ..config().compaction.unwrap() }),
            ..config()
        };
        let log = PartitionLog::open(dir.path(), half).unwrap();
        fill(&log);
        assert!(log.compact(1_000_000).unwrap().ran, "everything is dirty after open");
        let segments = log.segment_count();
        while log.segment_count() < segments + 2 {
            log.append(&mut batch(&[("a", Some("again"))], Compression::None)).unwrap();
        }
        log.flush().unwrap();
        assert!(!log.compact(1_000_000).unwrap().ran, "one new segment is under half the log");
        while log.segment_count() < segments + 12 {
            log.append(&mut batch(&[("a", Some("again"))], Compression::None)).unwrap();
        }
        log.flush().unwrap();
        assert!(log.compact(1_000_000).unwrap().ran);
        assert_eq!(log.compaction_totals().passes.load(Ordering::Relaxed), 2);
    }

    /// `max.compaction.lag.ms`: a dirty record that waited that long is compacted even while
    /// the dirty ratio is not reached; a younger one waits for the ratio.
    #[test]
    fn overdue_dirty_records_are_compacted_below_the_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let bounded = LogConfig {
            compaction: Some(Compaction {
                dirty_per_mille_min: 500,
                lag_max: Some(Duration::from_secs(10)),
                ..config().compaction.unwrap()
            }),
            ..config()
        };
        let log = PartitionLog::open(dir.path(), bounded).unwrap();
        fill(&log);
        assert!(log.compact(1000).unwrap().ran, "everything is dirty after open");
        let segments = log.segment_count();
        while log.segment_count() < segments + 2 {
            log.append(&mut batch(&[("a", Some("again"))], Compression::None)).unwrap();
        }
        log.flush().unwrap();
        // The new records are stamped 1000: under half the log, and not yet 10 s old.
        assert!(!log.compact(1000 + 9_999).unwrap().ran);
        assert!(log.compact(1000 + 10_000).unwrap().ran, "overdue: compacted below the ratio");
        assert_eq!(contents(&log).iter().filter(|(_, k, _)| k == "a").count(), 1 + 1);
    }

    /// A compacted log's active segment rolls at `max.compaction.lag.ms` when that is shorter
    /// than `segment.ms`, so its records can be compacted in time.
    #[test]
    fn the_active_segment_rolls_at_the_maximum_lag() {
        let lag_max = Some(Duration::from_secs(5));
        let bounded = LogConfig {
            segment_age_max: Duration::from_secs(60),
            compaction: Some(Compaction { lag_max, ..config().compaction.unwrap() }),
            ..config()
        };
        assert_eq!(bounded.roll_age_max(), Duration::from_secs(5));
        let deleting = LogConfig { compaction: None, ..bounded };
        assert_eq!(deleting.roll_age_max(), Duration::from_secs(60));
    }

    /// A log without `compaction` is never compacted, and the active segment never is.
    #[test]
    fn only_compacted_logs_and_closed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig { segment_bytes_max: 400, ..LogConfig::default() }).unwrap();
        fill(&log);
        assert!(!log.compact(i64::MAX / 2).unwrap().ran);
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        for i in 0..5 {
            log.append(&mut batch(&[("k", Some(&i.to_string()))], Compression::None)).unwrap();
        }
        assert_eq!(log.segment_count(), 1);
        log.compact(1_000_000).unwrap();
        assert_eq!(contents(&log).len(), 5, "the active segment is never compacted");
    }

    /// A reader that took a segment before the swap keeps reading the old file whole.
    #[test]
    fn reader_of_the_old_segment_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let old = log.state().segments[0].view().unwrap();
        log.compact(1_000_000).unwrap();
        assert_ne!(log.state().segments[0].len(), old.len, "the first segment was rewritten");
        let headers = crate::read::headers(&old, 4096).unwrap();
        assert_eq!(headers.first().map(|h| h.base_offset), Some(0));
        assert!(headers.iter().all(|h| h.records_count > 0));
    }

    /// Files a crash leaves mid-swap: temp files are removed on open, and a segment whose
    /// indexes were removed (before or after the rename) is reopened with rebuilt indexes.
    #[test]
    fn recovery_after_a_crash_mid_swap() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill(&log);
        let original = contents(&log);
        drop(log);
        // A crash after the old indexes went, before the cleaned log was renamed in.
        simulate_crash_mid_swap(dir.path());
        let log = open(dir.path());
        assert_eq!(contents(&log), original);
        log.compact(1_000_000).unwrap();
        let compacted = contents(&log);
        drop(log);
        // A crash after the cleaned log was renamed in, before its indexes were.
        simulate_crash_mid_swap(dir.path());
        let log = open(dir.path());
        assert!(log.recovery_report().indexes_rebuilt >= 2);
        assert_eq!(contents(&log), compacted);
        for path in temp_paths(dir.path(), 0) {
            assert!(!path.exists(), "{} left behind", path.display());
        }
    }

    /// What a crash in the middle of `install` leaves of segment 0: half-written temp files
    /// and no indexes.
    fn simulate_crash_mid_swap(dir: &Path) {
        for path in temp_paths(dir, 0) {
            std::fs::write(path, b"half written").unwrap();
        }
        std::fs::remove_file(file_path(dir, 0, INDEX_SUFFIX)).unwrap();
        std::fs::remove_file(file_path(dir, 0, TIME_INDEX_SUFFIX)).unwrap();
    }

    fn temp_paths(dir: &Path, base: i64) -> [std::path::PathBuf; 3] {
        compact::temp_paths(dir, base)
    }

    trait TapSort {
        fn tap_sort(self) -> Self;
    }

    impl TapSort for Vec<(i64, String, Option<String>)> {
        fn tap_sort(mut self) -> Self {
            self.sort();
            self
        }
    }
}
