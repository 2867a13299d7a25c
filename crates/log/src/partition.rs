//! `PartitionLog`: the public face of one partition's directory of segments.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::append;
use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::config::{FlushPolicy, LogConfig};
use crate::disk::Disk;
use crate::error::{AppendError, FlushError, OpenError, ReadError};
use crate::group_commit::{Durable, Request, Watermark};
use crate::layout::{RELATIVE_OFFSET_LIMIT, SCAN_CHUNK_BYTES, SEGMENT_BYTES_LIMIT};
use crate::read::{self, FirstBatch, Located};
use crate::recovery::{self, Damage};
use crate::recovery_point;
use crate::retention::{self, RetentionHold, SegmentFacts};
use crate::segment::{Segment, SegmentView};

mod compaction;
mod delete_records;
mod truncate;

pub use compaction::{CompactionReport, CompactionTotals};

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest `max_timestamp` among the appended batches.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// The append rolled to a new segment under a syncing policy: the old segment waits for
    /// the flusher (`start_sync`), which the caller should start if no one waits on it.
    pub rolled: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Concatenated whole batches, starting with the batch that contains the requested offset.
    pub bytes: Vec<u8>,
    pub log_start_offset: i64,
    /// Next offset to be assigned (Kafka's high watermark on a single node).
    pub log_end_offset: i64,
}

/// The first batch whose `max_timestamp` is at or after a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampHit {
    pub header: BatchHeader,
    /// The whole batch, so the caller can find the exact record (it may be compressed).
    pub batch: Vec<u8>,
}

/// What recovery found and repaired on open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    /// Bytes cut from the tail of the last segment (torn write or corruption).
    pub truncated_bytes: u64,
    /// Index files rebuilt because they were missing or damaged.
    pub indexes_rebuilt: usize,
    /// Where the cut was made, when `truncated_bytes > 0`.
    pub truncation: Option<Truncation>,
}

/// The torn or corrupt tail recovery cut off the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub segment: PathBuf,
    /// Byte position of the cut: everything from here to the old end was dropped.
    pub position: u64,
    /// The first offset that was not kept (the log end after recovery).
    pub first_dropped_offset: i64,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
}

/// Segments rolled under `FlushPolicy::Os` whose files a later `flush` still syncs. Older
/// ones are forgotten: the OS has long written them back, and the list must not pin file
/// handles of deleted segments without bound. Under a syncing policy none is forgotten:
/// the watermark may not pass a sealed segment's end before it is synced, and each roll
/// starts the flusher, so the list stays short.
const UNSYNCED_SEGMENTS_MAX: usize = 8;

pub struct PartitionLog {
    dir: PathBuf,
    /// Segments and offsets; held only for short bookkeeping and the append write itself.
    state: Mutex<State>,
    /// The durable offset ("every record below N is fsynced"), flush requests, poisoning.
    watermark: Watermark,
    /// fsyncs go through here to be counted (and failed on purpose in tests).
    disk: Disk,
    report: RecoveryReport,
    /// The recovery point last stored; the lock serialises stores of this partition only.
    recovery_point: Mutex<recovery_point::Stored>,
    /// The log end at open. Recovery counts what it found as durable, but a tail written
    /// before a `kill -9` may still be only in the page cache: a periodic checkpoint must
    /// wait until an fsync in this process moved the durable offset past it.
    opened_end: i64,
    /// Compaction's progress; held for a whole pass, so passes of one log never overlap.
    compaction: Mutex<compaction::Progress>,
    compaction_totals: CompactionTotals,
}

struct State {
    config: LogConfig,
    /// Oldest first, never empty; the last one takes appends.
    segments: Vec<Segment>,
    /// Next offset to assign.
    log_end: i64,
    /// Files of segments sealed by a roll and not yet synced, for the flusher's next round.
    sealed: Vec<[Arc<File>; 3]>,
    /// A roll created a segment file whose directory entry is not yet synced.
    dir_unsynced: bool,
    /// Set when recovery found acknowledged data missing: appends and reads are refused
    /// until `accept_data_loss`.
    damage: Option<Damage>,
    /// The log start DeleteRecords set (0: never), which may lie inside the first segment.
    start_floor: i64,
}

/// What one flusher round makes durable: everything below `end`, once every file is synced.
struct Round {
    end: i64,
    /// Sealed segments first, then the directory (new segments' entries), then the active one.
    sealed: Vec<Arc<File>>,
    dir: bool,
    active: Vec<Arc<File>>,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering the last segment.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog, OpenError> {
        let dir = dir.into();
        let disk = Disk::default();
        let recovered = recovery::recover(&dir, &disk, config.index_interval_bytes)?;
        let mut state = State {
            config,
            segments: recovered.segments,
            log_end: recovered.log_end,
            sealed: Vec::new(),
            dir_unsynced: false,
            damage: recovered.damage,
            start_floor: load_log_start(&dir),
        };
        // Segments a DeleteRecords stored its start above but had not deleted before a crash.
        delete_records::delete_segments(&state.take_segments_below_start());
        let stored_point = recovery_point::load(&dir).ok().flatten().unwrap_or_default();
        let progress = compaction::Progress::load(&dir);
        Ok(PartitionLog {
            dir,
            state: Mutex::new(state),
            watermark: Watermark::new(recovered.log_end),
            disk,
            report: recovered.report,
            recovery_point: Mutex::new(stored_point),
            opened_end: recovered.log_end,
            compaction: Mutex::new(progress),
            compaction_totals: CompactionTotals::default(),
        })
    }

    /// Why the partition is refused (acknowledged data is missing), or None.
    pub fn damage(&self) -> Option<String> {
        self.state().damage.as_ref().map(Damage::to_string)
    }

    /// The operator's decision to take a damaged log as it is: everything on disk is
    /// synced, the recovery point is reset to the log end, and the partition serves again
    /// (reads of offsets in a hole go on at the next segment).
    pub fn accept_data_loss(&self) -> Result<(), FlushError> {
        let Some(damage) = self.state().damage.clone() else { return Ok(()) };
        self.flush()?;
        let end = self.log_end_offset();
        let mut stored = self.recovery_point.lock().unwrap_or_else(|e| e.into_inner());
        let accepted = recovery_point::Stored { offset: end, holes_accepted_through: end };
        recovery_point::store(&self.dir, &self.disk, accepted).map_err(FlushError::Io)?;
        *stored = accepted;
        self.state().damage = None;
        tracing::warn!(dir = %self.dir.display(), %damage, recovery_point = end, "data loss accepted by the operator");
        Ok(())
    }

    /// The stored recovery point (the offset below which every record was fsynced when it
    /// was last stored).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.lock().unwrap_or_else(|e| e.into_inner()).offset
    }

    /// Stores the durable offset as the recovery point if it moved forward (never for a
    /// refused log, whose recovery point must stay until the operator accepts the loss).
    /// `flush` calls it; the upkeep task calls it periodically for logs synced by group
    /// commit, as Kafka checkpoints recovery points every minute.
    pub fn checkpoint_recovery_point(&self) -> Result<(), FlushError> {
        if self.durable_offset() <= self.opened_end {
            return Ok(());
        }
        self.store_recovery_point()
    }

    /// `checkpoint_recovery_point` once the durable offset is known to be fsynced.
    fn store_recovery_point(&self) -> Result<(), FlushError> {
        if self.state().damage.is_some() {
            return Ok(());
        }
        let durable = self.durable_offset();
        let mut stored = self.recovery_point.lock().unwrap_or_else(|e| e.into_inner());
        if durable <= stored.offset {
            return Ok(());
        }
        let advanced = recovery_point::Stored { offset: durable, ..*stored };
        recovery_point::store(&self.dir, &self.disk, advanced).map_err(FlushError::Io)?;
        *stored = advanced;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        self.report.clone()
    }

    /// Validates `batches` (one or more concatenated v2 batches), assigns consecutive
    /// offsets from the log end by rewriting each `base_offset`, and writes them.
    /// Nothing is written unless every batch is valid. Does not fsync: see `sync_through`.
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, AppendError> {
        self.append_stamped(batches, None)
    }

    /// `append`, and also writes `leader_epoch` into each batch's `partitionLeaderEpoch`
    /// (outside the CRC). Offsets are assigned from the log end, so a Raft follower that
    /// holds the same prefix of entries assigns the same offsets as the leader did. The
    /// batches may be compacted ones (fewer records than offsets, or none): a leader's
    /// compacted log is what a lagging follower is sent; the broker checks producers'
    /// batches exactly before it proposes them.
    pub fn append_with_epoch(&self, batches: &mut [u8], leader_epoch: i32) -> Result<AppendInfo, AppendError> {
        self.append_stamped(batches, Some(leader_epoch))
    }

    fn append_stamped(&self, batches: &mut [u8], leader_epoch: Option<i32>) -> Result<AppendInfo, AppendError> {
        let counts = if leader_epoch.is_some() { append::Counts::Compacted } else { append::Counts::Exact };
        if self.watermark.is_poisoned() {
            return Err(AppendError::Poisoned);
        }
        let batch_bytes_max = self.state().config.batch_bytes_max;
        // CRCs are checked before taking the lock: appends to one partition overlap here.
        let mut headers = append::validate_all(batches, batch_bytes_max, counts)?;
        if batches.len() as u64 > SEGMENT_BYTES_LIMIT {
            return Err(AppendError::TooLarge { size: batches.len(), max: u32::MAX });
        }
        let mut state = self.state();
        if let Some(damage) = &state.damage {
            return Err(AppendError::Damaged(damage.to_string()));
        }
        let first = state.log_end;
        let last = append::last_offset(&headers, first)?;
        let rolled = self.roll_if_due(&mut state, batches.len() as u64, last)?;
        append::assign_offsets(batches, &mut headers, first);
        if let Some(epoch) = leader_epoch {
            append::assign_leader_epoch(batches, &mut headers, epoch);
        }
        let interval = state.config.index_interval_bytes;
        state.active_mut().append(&self.disk, batches, &headers, interval).map_err(AppendError::Io)?;
        state.log_end = last + 1;
        Ok(AppendInfo {
            first_offset: first,
            last_offset: last,
            max_timestamp: headers.iter().map(|(_, h)| h.max_timestamp).max().unwrap_or(-1),
            log_start_offset: state.log_start(),
            rolled: rolled && state.config.flush != FlushPolicy::Os,
        })
    }

    /// Whole batches from the one containing `offset`, at most `max_bytes` in total except
    /// that the first batch is always returned whole. `offset == log_end` gives no bytes.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, ReadError> {
        self.read_limited(offset, max_bytes, FirstBatch::Whole)
    }

    /// `read`, with the choice of whether the first batch may go past `max_bytes`: a Kafka
    /// Fetch lets only its first non-empty partition's first batch do so (KIP-74).
    pub fn read_limited(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
    ) -> Result<ReadResult, ReadError> {
        self.read_from(offset, max_bytes, first_batch, Floor::LogStart)
    }

    /// `read` of what the segments still hold, also below a log start that DeleteRecords
    /// moved inside them: a Raft log reads back the entries it has not purged yet (a
    /// replicated partition's log start moves before its Raft log lets go of them).
    pub fn read_retained(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, ReadError> {
        self.read_from(offset, max_bytes, FirstBatch::Whole, Floor::FirstSegment)
    }

    fn read_from(
        &self,
        offset: i64,
        max_bytes: usize,
        first_batch: FirstBatch,
        floor: Floor,
    ) -> Result<ReadResult, ReadError> {
        let (mut located, mut result) = {
            let state = self.state();
            state.check_served()?;
            let result =
                ReadResult { bytes: Vec::new(), log_start_offset: state.log_start(), log_end_offset: state.log_end };
            let lowest = match floor {
                Floor::LogStart => state.log_start(),
                Floor::FirstSegment => state.segments[0].base_offset.min(state.log_end),
            };
            check_range(
                offset,
                &ReadResult { bytes: Vec::new(), log_start_offset: lowest, log_end_offset: state.log_end },
            )?;
            if offset == state.log_end {
                return Ok(result);
            }
            (state.locate(offset).map_err(ReadError::Io)?, result)
        };
        let mut cursor = offset;
        loop {
            let collected = read::collect(&located, cursor, max_bytes, first_batch, &mut result.bytes)?;
            cursor = collected.next_offset;
            if !collected.segment_done || result.bytes.len() >= max_bytes {
                return Ok(result);
            }
            let state = self.state();
            result.log_start_offset = state.log_start();
            result.log_end_offset = state.log_end;
            let lowest = match floor {
                Floor::LogStart => state.log_start(),
                Floor::FirstSegment => state.segments[0].base_offset,
            };
            if cursor >= state.log_end || cursor < lowest {
                return Ok(result);
            }
            located = state.locate(cursor).map_err(ReadError::Io)?;
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state().log_start()
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.state().log_end
    }

    /// The first batch whose `max_timestamp >= timestamp_ms`, or None if there is none.
    pub fn find_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampHit>, ReadError> {
        let mut searched: Option<i64> = None;
        loop {
            let candidate = {
                let state = self.state();
                state.check_served()?;
                state.timestamp_candidate(timestamp_ms, searched).map_err(ReadError::Io)?
            };
            let Some((located, start)) = candidate else {
                return Ok(None);
            };
            if let Some(hit) = read::find_timestamp(&located, start, timestamp_ms)? {
                return Ok(Some(hit));
            }
            searched = Some(located.view.base_offset);
        }
    }

    /// The largest batch `max_timestamp` in the log, None while it holds no batch.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.state().segments.iter().filter_map(Segment::max_timestamp).max()
    }

    /// Headers of every batch in the newest `segments` segments, oldest first
    /// (used to rebuild idempotent producer state after a restart).
    pub fn recent_batch_headers(&self, segments: usize) -> Result<Vec<BatchHeader>, ReadError> {
        let views: Vec<SegmentView> = {
            let state = self.state();
            let skip = state.segments.len().saturating_sub(segments);
            state.segments[skip..].iter().map(Segment::view).collect::<io::Result<_>>().map_err(ReadError::Io)?
        };
        let mut headers = Vec::new();
        for view in &views {
            headers.extend(read::headers(view, SCAN_CHUNK_BYTES)?);
        }
        Ok(headers)
    }

    pub fn size_bytes(&self) -> u64 {
        self.state().segments.iter().map(Segment::len).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.state().segments.iter().map(|s| s.base_offset).collect()
    }

    /// Base offset and `.log` size in bytes of every segment, oldest first (admin API).
    pub fn segment_sizes(&self) -> Vec<(i64, u64)> {
        self.state().segments.iter().map(|s| (s.base_offset, s.len())).collect()
    }

    pub fn config(&self) -> LogConfig {
        self.state().config.clone()
    }

    /// New limits apply from the next append or retention pass.
    pub fn set_config(&self, config: LogConfig) {
        self.state().config = config;
    }

    /// Deletes whole segments (never the active one) past retention; rolls an aged active segment.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, FlushError> {
        self.enforce_retention_holding(now_ms, None)
    }

    /// `enforce_retention`, but segments a reader still needs (`hold`) are kept while the
    /// log is within the hold's size cap.
    pub fn enforce_retention_holding(
        &self,
        now_ms: i64,
        hold: Option<RetentionHold>,
    ) -> Result<RetentionReport, FlushError> {
        self.enforce_retention_below(now_ms, hold, i64::MAX)
    }

    /// The log start offset retention would leave now (the base offset of the first segment
    /// it would keep), deleting nothing: a replicated log first releases its Raft entries
    /// below it (`enforce_retention_below`).
    pub fn retention_target(&self, now_ms: i64, hold: Option<RetentionHold>) -> i64 {
        let state = self.state();
        let count = retention_count(&state, now_ms, hold);
        state.segments.get(count).map_or(state.log_end, |s| s.base_offset)
    }

    /// `enforce_retention_holding`, deleting only segments wholly below `below` (a replicated
    /// log's records its Raft log no longer holds entries for).
    pub fn enforce_retention_below(
        &self,
        now_ms: i64,
        hold: Option<RetentionHold>,
        below: i64,
    ) -> Result<RetentionReport, FlushError> {
        let (doomed, sync_roll) = {
            let mut state = self.state();
            let rolled = self.roll_if_aged(&mut state)?;
            let count = retention_count(&state, now_ms, hold);
            let bases: Vec<i64> = state.segments.iter().map(|s| s.base_offset).collect();
            let floor = Some(RetentionHold { keep_from_offset: below, log_bytes_max: u64::MAX });
            let count = retention::apply_hold(count, &bases, 0, floor);
            (state.segments.drain(..count).collect::<Vec<_>>(), rolled && state.config.flush != FlushPolicy::Os)
        };
        if sync_roll {
            // Retention runs on the upkeep thread, which may block: sync the sealed segment
            // now (outside the lock) rather than leave it for the next acknowledgement.
            self.sync_through(self.log_end_offset())?;
        }
        let report = RetentionReport {
            segments_deleted: doomed.len(),
            bytes_deleted: doomed.iter().map(Segment::len).sum(),
            log_start_offset: self.log_start_offset(),
        };
        // Unlinking happens outside the lock; readers holding the files keep reading them.
        let mut first_error = None;
        for segment in &doomed {
            if let Err(e) = segment.delete_files() {
                tracing::warn!(segment = %segment.log_path().display(), error = %e, "could not delete segment");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(FlushError::Io(e)),
            None => Ok(report),
        }
    }

    /// Blocks until every record below `offset` is fsynced. Concurrent callers share fsyncs
    /// (group commit): one caller runs the flusher while the others wait for its rounds.
    /// An offset past the log end (records a `truncate_suffix` dropped) waits for the end.
    pub fn sync_through(&self, offset: i64) -> Result<(), FlushError> {
        self.sync_blocking(offset, false)
    }

    /// fsyncs everything appended so far, the active segment's indexes included.
    pub fn flush(&self) -> Result<(), FlushError> {
        let end = self.log_end_offset();
        self.sync_blocking(end, true)?;
        // The flush synced the whole active segment, the tail found at open included.
        self.store_recovery_point()
    }

    /// Waits, without blocking a thread, until every record below `offset` is fsynced. When
    /// no flusher runs, one is started on the current tokio runtime's blocking pool.
    pub async fn wait_durable(self: &Arc<Self>, offset: i64) -> Result<(), FlushError> {
        match self.watermark.request(offset, false) {
            Request::Covered => return Ok(()),
            Request::Poisoned => return Err(FlushError::Poisoned),
            Request::Lead => self.spawn_flusher(),
            Request::Queued => {}
        }
        let mut durable = self.watermark.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let settled = *durable.wait_for(|d| d.settles(offset)).await.map_err(|_| FlushError::Poisoned)?;
        match settled.offset >= offset {
            true => Ok(()),
            false => Err(FlushError::Poisoned),
        }
    }

    /// Asks for every record below `offset` to become durable without waiting for it
    /// (after a roll, so the sealed segment is synced soon even if nobody waits).
    pub fn start_sync(self: &Arc<Self>, offset: i64) {
        if self.watermark.request(offset, false) == Request::Lead {
            self.spawn_flusher();
        }
    }

    /// The durable watermark as a watch: `changed()` resolves when it moves or poisons.
    pub fn durable_watch(&self) -> tokio::sync::watch::Receiver<Durable> {
        self.watermark.subscribe()
    }

    /// Calls `listener` with the new watermark each time it moves (from the flusher's
    /// thread, so it must be quick): how the broker wakes readers that follow it. Only the
    /// first listener is kept.
    pub fn on_durable(&self, listener: impl Fn(Durable) + Send + Sync + 'static) {
        self.watermark.set_listener(Box::new(listener));
    }

    /// Offset below which every record is known to be fsynced.
    pub fn durable_offset(&self) -> i64 {
        self.watermark.current().offset
    }

    /// Runs flusher rounds until no request is outstanding: each notes the log end, syncs
    /// without the append lock, then publishes the end (or poisons the log). Call it only
    /// after `Request::Lead`; it blocks on fsyncs.
    fn run_flusher(&self) -> Result<(), FlushError> {
        let mut result = Ok(());
        while let Some(indexes) = self.watermark.next_round() {
            // A file that cannot be reopened cannot be synced: what it holds is not durable,
            // so the log is poisoned as for a failed fsync (waiters must not hang).
            let round = {
                let mut state = self.state();
                let generation = self.watermark.generation();
                state.take_round(indexes).map(|round| (round, generation))
            };
            match round.and_then(|(round, generation)| self.sync_round(&round).map(|()| (round.end, generation))) {
                Ok((end, generation)) => {
                    self.watermark.publish_round(end, generation);
                    self.watermark.forget_beyond(self.state().log_end);
                }
                Err(e) => {
                    self.poison(&e);
                    result = Err(FlushError::Io(e));
                }
            }
        }
        result
    }

    fn sync_round(&self, round: &Round) -> io::Result<()> {
        round.sealed.iter().try_for_each(|f| self.disk.sync_data(f))?;
        if round.dir {
            self.disk.sync_dir(&self.dir)?;
        }
        round.active.iter().try_for_each(|f| self.disk.sync_data(f))
    }

    fn spawn_flusher(self: &Arc<Self>) {
        let log = Arc::clone(self);
        // The flusher reports its own failure by poisoning (logged); waiters see the poison.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || log.run_flusher())),
            Err(_) => drop(log.run_flusher()),
        }
    }

    fn sync_blocking(&self, offset: i64, indexes: bool) -> Result<(), FlushError> {
        let mut indexes = indexes;
        loop {
            // Records a truncation dropped are not waited for: only what is left can be synced.
            let offset = offset.min(self.log_end_offset());
            match self.watermark.request(offset, indexes) {
                Request::Covered => return Ok(()),
                Request::Poisoned => return Err(FlushError::Poisoned),
                Request::Lead => self.run_flusher()?,
                // A flush of the indexes is done only when the running flusher stops.
                Request::Queued => drop(self.watermark.wait_blocking(if indexes { i64::MAX } else { offset })),
            }
            indexes = false;
        }
    }

    /// fsync calls made since open (group commit keeps this well below the append count).
    pub fn fsync_count(&self) -> u64 {
        self.disk.fsync_count()
    }

    /// Whether an earlier fsync failed; the log then refuses writes until reopened.
    pub fn is_poisoned(&self) -> bool {
        self.watermark.is_poisoned()
    }

    /// Flushes and closes the log.
    pub fn close(self) -> Result<(), FlushError> {
        self.flush()
    }

    /// Closes the log and removes its directory.
    pub fn delete(self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(dir)
    }

    /// Rolls if the active segment is full, too old, or the append's offsets would not fit
    /// it; says whether it rolled.
    fn roll_if_due(&self, state: &mut State, incoming_bytes: u64, last_offset: i64) -> Result<bool, AppendError> {
        let active = state.active();
        if active.is_empty() {
            return Ok(false);
        }
        let size_max = state.config.segment_bytes_max.min(SEGMENT_BYTES_LIMIT);
        let due = active.len() + incoming_bytes > size_max
            || active.age().is_some_and(|age| age >= state.config.roll_age_max())
            || last_offset - active.base_offset > RELATIVE_OFFSET_LIMIT;
        if !due {
            return Ok(false);
        }
        self.roll(state).map_err(AppendError::Io)?;
        Ok(true)
    }

    fn roll_if_aged(&self, state: &mut State) -> Result<bool, FlushError> {
        let active = state.active();
        let aged = active.age().is_some_and(|age| age >= state.config.roll_age_max());
        if active.is_empty() || !aged {
            return Ok(false);
        }
        if self.watermark.is_poisoned() {
            return Err(FlushError::Poisoned);
        }
        self.roll(state).map_err(FlushError::Io)?;
        Ok(true)
    }

    /// Seals the active segment and starts a new one at the log end, without an fsync: the
    /// sealed segment's files and the new directory entry are synced by the flusher's next
    /// round, before the watermark passes anything written after this point.
    fn roll(&self, state: &mut State) -> io::Result<()> {
        state.active_mut().seal()?;
        let files = state.active().files()?;
        let segment = Segment::create(&self.dir, state.log_end)?;
        state.remember_sealed(files);
        state.dir_unsynced = true;
        state.segments.push(segment);
        Ok(())
    }

    fn poison(&self, e: &io::Error) {
        tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; the log refuses writes until reopened");
        self.watermark.poison();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append visible:
        // `log_end` and segment lengths move only after the write succeeded.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Test seam: while closed, this log's fsyncs wait at the gate.
    #[cfg(feature = "test-seams")]
    pub fn sync_gate(&self) -> &crate::disk::gate::Gate {
        self.disk.gate()
    }
}

impl State {
    fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    fn log_start(&self) -> i64 {
        // Never past the log end, should a truncation have cut the log below the floor.
        self.segments[0].base_offset.max(self.start_floor.min(self.log_end))
    }

    fn check_served(&self) -> Result<(), ReadError> {
        match &self.damage {
            Some(damage) => Err(ReadError::Damaged(damage.to_string())),
            None => Ok(()),
        }
    }

    /// The segment holding `offset` (which is within the log) and where to start walking it.
    fn locate(&self, offset: i64) -> io::Result<Located> {
        let mut index = self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        // An accepted hole: offsets between a segment's end and the next base are gone, so
        // the read goes on at the next segment (as Kafka serves a batch past the offset asked).
        if offset >= self.segments[index].end_offset() && index + 1 < self.segments.len() {
            index += 1;
        }
        self.locate_in(index, offset)
    }

    fn locate_in(&self, index: usize, offset: i64) -> io::Result<Located> {
        let segment = &self.segments[index];
        let (position, position_offset) = segment.lookup(offset);
        let interval = self.config.index_interval_bytes as usize;
        Ok(Located {
            view: segment.view()?,
            position,
            position_offset,
            walk_chunk_bytes: (interval + BATCH_HEADER_LEN).min(SCAN_CHUNK_BYTES),
        })
    }

    /// The first segment after `searched` whose largest timestamp reaches `timestamp`, and
    /// the offset from which its time index says to look.
    fn timestamp_candidate(&self, timestamp: i64, searched: Option<i64>) -> io::Result<Option<(Located, i64)>> {
        let index = self.segments.iter().position(|s| {
            // `None < Some(_)`: with nothing searched yet every segment qualifies.
            let after_searched = searched < Some(s.base_offset);
            after_searched && s.max_timestamp().is_some_and(|m| m >= timestamp)
        });
        let Some(index) = index else { return Ok(None) };
        let start = self.segments[index].time_search_start(timestamp);
        Ok(Some((self.locate_in(index, start)?, start)))
    }

    /// The next flusher round: everything written so far, and the files it lies in.
    fn take_round(&mut self, indexes: bool) -> io::Result<Round> {
        let active = match indexes {
            true => self.active().files()?.to_vec(),
            false => vec![self.active().log_file()?],
        };
        Ok(Round {
            end: self.log_end,
            sealed: self.sealed.drain(..).flatten().collect(),
            dir: std::mem::take(&mut self.dir_unsynced),
            active,
        })
    }

    fn remember_sealed(&mut self, files: [Arc<File>; 3]) {
        if self.config.flush == FlushPolicy::Os && self.sealed.len() >= UNSYNCED_SEGMENTS_MAX {
            self.sealed.remove(0);
        }
        self.sealed.push(files);
    }
}

/// The stored DeleteRecords log start; an unreadable file is logged and ignored (the records
/// it hid become readable again, nothing is lost).
fn load_log_start(dir: &Path) -> i64 {
    crate::log_start::load(dir)
        .unwrap_or_else(|why| {
            tracing::warn!(%why, "ignoring unreadable log start offset");
            None
        })
        .unwrap_or(0)
}

/// The lowest offset a read may start at.
#[derive(Debug, Clone, Copy)]
enum Floor {
    /// The log start: what clients may read.
    LogStart,
    /// The first segment's base: everything still on disk (Raft reads).
    FirstSegment,
}

fn check_range(offset: i64, result: &ReadResult) -> Result<(), ReadError> {
    if offset < result.log_start_offset || offset > result.log_end_offset {
        return Err(ReadError::OffsetOutOfRange {
            offset,
            log_start: result.log_start_offset,
            log_end: result.log_end_offset,
        });
    }
    Ok(())
}

/// What retention weighs: size, and the newest timestamp (the file's modification time
/// for segments whose batches carry no timestamps).
/// How many of the oldest segments retention deletes now, given the hold.
fn retention_count(state: &State, now_ms: i64, hold: Option<RetentionHold>) -> usize {
    let facts: Vec<SegmentFacts> = state.segments.iter().map(facts).collect();
    let config = &state.config;
    let count = retention::segments_to_delete(&facts, config.retention_bytes_max, config.retention_age_max, now_ms);
    let bases: Vec<i64> = state.segments.iter().map(|s| s.base_offset).collect();
    let total: u64 = facts.iter().map(|f| f.size_bytes).sum();
    retention::apply_hold(count, &bases, total, hold)
}

fn facts(segment: &Segment) -> SegmentFacts {
    let newest_ms = match segment.max_timestamp() {
        _ if segment.is_empty() => None,
        Some(ts) if ts >= 0 => Some(ts),
        _ => segment.modified_ms(),
    };
    SegmentFacts { size_bytes: segment.len(), newest_ms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batch::batch;

    fn open(dir: &Path) -> PartitionLog {
        PartitionLog::open(dir, LogConfig::default()).unwrap()
    }

    /// A failed fsync poisons the log: appends and syncs fail from then on, reads still work.
    #[test]
    fn failed_fsync_poisons() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(&mut batch(1, 0, b"a")).unwrap();
        log.sync_through(1).unwrap();
        assert_eq!(log.durable_offset(), 1);
        log.append(&mut batch(1, 0, b"b")).unwrap();
        log.disk().fail_next_sync();
        assert!(matches!(log.sync_through(2), Err(FlushError::Io(_))));
        assert!(log.is_poisoned());
        assert_eq!(log.durable_offset(), 1);
        assert!(matches!(log.append(&mut batch(1, 0, b"c")), Err(AppendError::Poisoned)));
        assert!(matches!(log.sync_through(2), Err(FlushError::Poisoned)));
        assert!(matches!(log.flush(), Err(FlushError::Poisoned)));
        assert_eq!(log.read(0, 1000).unwrap().bytes.len(), 2 * 62);
        drop(log);
        let log = open(dir.path());
        assert!(!log.is_poisoned());
        assert_eq!(log.durable_offset(), 2);
    }

    /// A failed write is cut back: the log end does not move and the next append lands
    /// where the failed one would have.
    #[test]
    fn failed_write_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        log.append(&mut batch(1, 0, b"a")).unwrap();
        log.disk().fail_next_write();
        assert!(matches!(log.append(&mut batch(3, 0, &[9; 100])), Err(AppendError::Io(_))));
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.size_bytes(), 62);
        let file_len = std::fs::metadata(dir.path().join("00000000000000000000.log")).unwrap().len();
        assert_eq!(file_len, 62);
        let mut b = batch(1, 0, b"b");
        assert_eq!(log.append(&mut b).unwrap().first_offset, 1);
        assert_eq!(log.read(1, 1).unwrap().bytes, b);
    }

    /// A roll no longer fsyncs: a failed sync of the sealed segment poisons the log at the
    /// next sync, and the watermark stays below the sealed segment's end.
    #[test]
    fn failed_sealed_segment_sync_poisons() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes_max: 100, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config).unwrap();
        log.append(&mut batch(1, 0, b"a")).unwrap();
        let fsyncs = log.fsync_count();
        assert!(log.append(&mut batch(1, 0, b"b")).unwrap().rolled);
        assert_eq!(log.fsync_count(), fsyncs, "a roll must not fsync");
        log.disk().fail_next_sync();
        assert!(matches!(log.sync_through(2), Err(FlushError::Io(_))));
        assert!(log.is_poisoned());
        assert_eq!(log.durable_offset(), 0);
        assert!(matches!(log.append(&mut batch(1, 0, b"c")), Err(AppendError::Poisoned)));
    }

    /// While the sealed segment's fsync is held, appends (and a further roll) proceed, and
    /// the watermark does not move until that sync and the rest of its round are done.
    #[test]
    fn roll_sync_does_not_hold_the_append_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes_max: 100, ..LogConfig::default() };
        let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
        log.append(&mut batch(1, 0, b"a")).unwrap();
        assert!(log.append(&mut batch(1, 0, b"b")).unwrap().rolled);
        log.disk().gate().close();
        let syncer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.sync_through(2))
        };
        wait_until(|| log.disk().gate().waiting() == 1);
        // The flusher is blocked inside the sealed segment's fsync: the append lock is free.
        let appended = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.append(&mut batch(1, 0, b"c")).map(|info| info.rolled))
        };
        wait_until(|| appended.is_finished());
        assert!(appended.join().unwrap().unwrap(), "the third append rolls again");
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.durable_offset(), 0);
        log.disk().gate().open();
        syncer.join().unwrap().unwrap();
        assert!(log.durable_offset() >= 2);
        log.sync_through(3).unwrap();
        assert_eq!(log.durable_offset(), 3);
    }

    /// Syncs requested while a round runs wait for the next one and share it.
    #[test]
    fn waiters_during_a_round_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(open(dir.path()));
        log.append(&mut batch(1, 0, b"a")).unwrap();
        log.disk().gate().close();
        let first = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.sync_through(1))
        };
        wait_until(|| log.disk().gate().waiting() == 1);
        let before = log.fsync_count();
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let info = log.append(&mut batch(1, i, b"b")).unwrap();
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.sync_through(info.last_offset + 1))
            })
            .collect();
        log.disk().gate().open();
        first.join().unwrap().unwrap();
        for waiter in waiters {
            waiter.join().unwrap().unwrap();
        }
        assert_eq!(log.durable_offset(), 5);
        // The held round's fsync (counted after the gate) plus at most one more round.
        assert!(log.fsync_count() - before <= 2, "{} fsyncs", log.fsync_count() - before);
    }

    /// `wait_durable` starts a flusher on the runtime's blocking pool and resolves when the
    /// watermark covers the offset; after a failed fsync it reports poisoning.
    #[test]
    fn wait_durable_async() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(open(dir.path()));
        log.append(&mut batch(2, 0, b"a")).unwrap();
        let mut watch = log.durable_watch();
        runtime.block_on(log.wait_durable(2)).unwrap();
        assert_eq!(log.durable_offset(), 2);
        assert!(watch.has_changed().unwrap());
        assert_eq!(watch.borrow_and_update().offset, 2);
        log.append(&mut batch(1, 0, b"b")).unwrap();
        log.disk().fail_next_sync();
        assert!(matches!(runtime.block_on(log.wait_durable(3)), Err(FlushError::Poisoned)));
        assert!(watch.borrow().poisoned);
        assert_eq!(log.durable_offset(), 2);
    }

    /// Polls `condition` until it holds, failing the test after a generous bound.
    fn wait_until(condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "condition not reached");
            std::thread::yield_now();
        }
    }
}
