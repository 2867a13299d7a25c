//! `LogStore`: openraft's log storage over one partition's log (batches, at their Kafka
//! offsets, in the segments) plus the side index (every entry's log id and kind) and the vote.
//!
//! Blocking file I/O runs on tokio's blocking pool, never on the runtime's core threads.
//! An append writes the batches, then the side records, and returns (the entries are then
//! readable); a second blocking task makes both durable (the log's group commit, then an
//! fsync of the side index) and only then reports the entries flushed. Under
//! `FlushPolicy::Os` nothing is fsynced and the report follows the write: such entries can
//! be lost by a power cut, as everything else under that policy. `FlushPolicy::Interval` is
//! treated as `Always` here: a Raft append is reported only once fsynced.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, StorageError, StorageIOError, Vote,
};
use sluice_log::{BatchHeader, FlushPolicy, PartitionLog};

use super::side_index::{EntryKind, SideIndex, SideRecord};
use super::vote::VoteFiles;
use super::written::{Offsets, WrittenWaiters};
use crate::types::{Batches, NodeId, TypeConfig};

/// The most batch bytes one read of the segments asks for when serving entries: bounds one
/// read buffer, not the answer (openraft bounds how many entries it asks for).
const READ_RUN_BYTES_MAX: usize = 8 * 1024 * 1024;

/// The most batch bytes one AppendEntries carries (one entry may be larger). openraft 0.9
/// gives an AppendEntries its heartbeat interval to come back, the follower's write and fsync
/// included; fsync costs a fixed wait plus the bytes, so an RPC should carry as much as
/// comfortably fits that interval on a loaded disk. Entries are produce requests (grouped by
/// the proposer, up to 2 MiB), so the entry count alone bounds nothing. Measured on 2 shared
/// cores at load 10 (BENCHMARKS.md): 8 MiB timed out 69 times in one run, 4 MiB never.
pub const APPEND_ENTRIES_BYTES_MAX: usize = 4 * 1024 * 1024;

/// What the log store and the state machine of one group share.
pub(crate) struct GroupLog {
    /// The group's directory: side index, vote, committed log id, snapshot.
    pub dir: PathBuf,
    pub log: Arc<PartitionLog>,
    pub side: Mutex<SideIndex>,
    pub votes: VoteFiles,
    /// Proposals waiting for this (leader's) log to hold them: Kafka's acks=1.
    pub written: Arc<WrittenWaiters>,
}

impl GroupLog {
    pub fn side(&self) -> MutexGuard<'_, SideIndex> {
        // Every side index change completes or leaves memory as it was before a panic.
        self.side.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// openraft's `RaftLogStorage` (and its reader) for one partition group. Clones share state.
#[derive(Clone)]
pub struct LogStore {
    group: Arc<GroupLog>,
}

impl LogStore {
    pub(crate) fn new(group: Arc<GroupLog>) -> LogStore {
        LogStore { group }
    }

    /// OffsetForLeaderEpoch from the side index: the largest leader epoch (Raft term) at or
    /// below `epoch` and the offset where it ended.
    pub fn epoch_end_offset(&self, epoch: u64) -> Option<(u64, i64)> {
        self.group.side().epoch_end_offset(epoch)
    }

    /// The partition log under this store.
    pub fn partition_log(&self) -> &Arc<PartitionLog> {
        &self.group.log
    }

    /// Retention: the last Raft index such that it and every entry before it hold only
    /// records below `offset` (Raft-only entries go with them), if that is past what is
    /// already purged. Entries up to it may be purged before the segments below `offset` go.
    pub fn purge_point_below(&self, offset: i64) -> Option<u64> {
        self.group.side().purge_point_below(offset)
    }

    /// The first offset the kept Raft entries still hold (the first kept batch entry's base
    /// offset, or the offset after the purged ones): segments wholly below it hold no record
    /// the Raft log may still read.
    pub fn first_needed_offset(&self) -> i64 {
        self.group.side().first_needed_offset()
    }

    /// The group's proposals waiting for their append (acks=1).
    pub fn written_waiters(&self) -> &Arc<WrittenWaiters> {
        &self.group.written
    }
}

impl LogStore {
    /// The side records of `[start, end)` for an AppendEntries, or None when `start` is at
    /// or below the last purged index. openraft 0.9 purges a non-leader's log at once, but a
    /// node that just stepped down may still run its old replication tasks: one asking from
    /// a purged index must get nothing (openraft sends that as a heartbeat), never the entries
    /// after the purge point, which it would send after the wrong prev_log_id (found by the
    /// simulation). Only replication reads through here: openraft's storage contract (its
    /// test suite) wants `try_get_log_entries` to return what is left of a purged range.
    fn unpurged_records(&self, start: u64, end: u64) -> Option<Vec<SideRecord>> {
        let side = self.group.side();
        if side.last_purged().is_some_and(|purged| start <= purged.index) {
            return None;
        }
        Some(side.range(start, end))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let (start, end) = bounds(&range);
        let records = self.group.side().range(start, end);
        let group = Arc::clone(&self.group);
        blocking(move || read_entries(&group.log, records)).await
    }

    /// What one AppendEntries carries: the entries from `start`, at most
    /// [`APPEND_ENTRIES_BYTES_MAX`] of batches (always at least one entry).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let Some(mut records) = self.unpurged_records(start, end) else { return Ok(Vec::new()) };
        records.truncate(entries_within(&records, APPEND_ENTRIES_BYTES_MAX));
        let group = Arc::clone(&self.group);
        blocking(move || read_entries(&group.log, records)).await
    }
}

/// How many of `records`, from the first, hold at most `budget` bytes of batches; at least one.
fn entries_within(records: &[SideRecord], budget: usize) -> usize {
    let mut bytes = 0usize;
    let within = records.iter().take_while(|r| {
        bytes += match r.kind {
            EntryKind::Batches { bytes, .. } => bytes as usize,
            _ => 0,
        };
        bytes <= budget
    });
    within.count().max(1)
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let side = self.group.side();
        let last_purged_log_id = side.last_purged();
        let last_log_id = side.last().map(|r| r.log_id).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let (group, vote) = (Arc::clone(&self.group), *vote);
        blocking(move || group.votes.save_vote(&vote).map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e)))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.group.votes.read_vote().map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let group = Arc::clone(&self.group);
        blocking(move || {
            group.votes.save_committed(committed).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.group.votes.read_committed().map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let pending = self.write(entries.into_iter().collect()).await?;
        // Not awaited: openraft goes on while the group commit makes the entries durable.
        drop(tokio::task::spawn_blocking(move || callback.log_io_completed(pending.make_durable())));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let group = Arc::clone(&self.group);
        blocking(move || truncate_since(&group, log_id.index)).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let group = Arc::clone(&self.group);
        blocking(move || {
            let purged = group.side().purge_to(log_id);
            purged.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
        })
        .await
    }
}

/// What an append left to make durable: the log up to its end after the append, and the
/// side index.
pub(crate) struct Pending {
    group: Arc<GroupLog>,
    log_end: i64,
}

impl Pending {
    /// Both halves durable: the segments through the append's end (group commit), then the
    /// side index. Blocks on fsyncs. Under `FlushPolicy::Os` nothing is synced.
    pub(crate) fn make_durable(self) -> Result<(), std::io::Error> {
        if self.group.log.config().flush == FlushPolicy::Os {
            return Ok(());
        }
        // The two fsyncs run at once: each costs mostly a fixed wait for the device's cache
        // flush, which concurrent fsyncs on one file system share.
        let side = self.group.side().sync_handle();
        std::thread::scope(|scope| {
            let side_synced = scope.spawn(|| side.sync_data());
            let log_synced = self.group.log.sync_through(self.log_end).map_err(std::io::Error::other);
            let side_synced =
                side_synced.join().unwrap_or_else(|_| Err(std::io::Error::other("side index fsync panicked")));
            log_synced.and(side_synced)
        })
    }
}

impl LogStore {
    /// Writes `entries` (readable once this returns), answers the proposals among them that
    /// wait for their append, and gives back what makes them durable.
    pub(crate) async fn write(&self, entries: Vec<Entry<TypeConfig>>) -> Result<Pending, StorageError<NodeId>> {
        let group = Arc::clone(&self.group);
        let (log_end, proposals) = blocking(move || write_entries(&group, entries)).await?;
        for (tag, offsets) in proposals {
            self.group.written.written(tag, offsets);
        }
        Ok(Pending { group: Arc::clone(&self.group), log_end })
    }
}

/// What a write did: the log end after it, and the offsets each tagged proposal took
/// (`written`), by tag.
type Written = (i64, Vec<(i64, Offsets)>);

/// Writes every entry's batches (offsets from the log end, epoch = the entry's term), then
/// all their side records with one write.
fn write_entries(group: &GroupLog, entries: Vec<Entry<TypeConfig>>) -> Result<Written, StorageError<NodeId>> {
    let mut records = Vec::with_capacity(entries.len());
    let mut proposals = Vec::new();
    let mut failed = None;
    for entry in entries {
        let log_id = entry.log_id;
        let kind = match entry.payload {
            EntryPayload::Blank => EntryKind::Blank,
            EntryPayload::Membership(membership) => EntryKind::Membership(membership),
            EntryPayload::Normal(Batches(bytes)) if bytes.is_empty() => EntryKind::NoRecords,
            EntryPayload::Normal(Batches(bytes)) => match write_batches(&group.log, log_id, bytes) {
                Ok((kind, tag)) => {
                    if let (Some(tag), EntryKind::Batches { base_offset, last_offset, .. }) = (tag, &kind) {
                        proposals.push((tag, (*base_offset, *last_offset)));
                    }
                    kind
                }
                Err(e) => {
                    // The entries before it are in the segments: their side records go too,
                    // so memory and files stay one log (openraft stops on the error anyway).
                    failed = Some(e);
                    break;
                }
            },
        };
        records.push(SideRecord { log_id, kind });
    }
    let mut side = group.side();
    side.append(&records).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
    match failed {
        Some(e) => Err(e),
        None => Ok((group.log.log_end_offset(), proposals)),
    }
}

/// Appends one entry's batches; also returns the proposal's tag its first batch carried, if
/// any (`written`).
fn write_batches(
    log: &PartitionLog,
    log_id: LogId<NodeId>,
    bytes: Bytes,
) -> Result<(EntryKind, Option<i64>), StorageError<NodeId>> {
    let fail =
        |e: &(dyn std::error::Error + 'static)| StorageIOError::write_log_entry(log_id, AnyError::from_dyn(e, None));
    let epoch = i32::try_from(log_id.leader_id.term).map_err(|_| {
        fail(&std::io::Error::other(format!("term {} does not fit a leader epoch", log_id.leader_id.term)))
    })?;
    let len = u32::try_from(bytes.len()).map_err(|e| fail(&e))?;
    // The append stamps offsets and epoch in place: an entry decoded off the wire (or proposed
    // here) is its bytes' only owner, so this copies only when something else shares them.
    let mut owned = bytes.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    let proposed_base = BatchHeader::parse(&owned).map(|h| h.base_offset).ok();
    let info = log.append_with_epoch(&mut owned, epoch).map_err(|e| fail(&e))?;
    // A replicated entry carries the offsets the leader's log gave it; a proposal carries the
    // producer's 0 or a waiter's tag (negative). Anything else means this replica's offsets
    // left the leader's.
    if let Some(base) = proposed_base.filter(|&b| b > 0 && b != info.first_offset) {
        tracing::error!(%log_id, leader_base = base, local_base = info.first_offset, "replica offsets diverge from the leader's");
    }
    let kind = EntryKind::Batches { base_offset: info.first_offset, last_offset: info.last_offset, bytes: len };
    Ok((kind, proposed_base.and_then(WrittenWaiters::tag_of)))
}

/// Drops the entries from `index` on: the side index first (so a crash between the two
/// leaves segments ahead of it, which the next open cuts), then the segments from the first
/// dropped batch.
fn truncate_since(group: &GroupLog, index: u64) -> Result<(), StorageError<NodeId>> {
    let dropped = group.side().truncate_from(index).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
    let cut = dropped.iter().find_map(|r| match r.kind {
        EntryKind::Batches { base_offset, .. } => Some(base_offset),
        _ => None,
    });
    if let Some(offset) = cut {
        group.log.truncate_suffix(offset).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
    }
    Ok(())
}

/// Builds the entries for `records`, reading their batches back from the segments (they
/// carry the offsets and epoch assigned on append, so followers store them verbatim).
fn read_entries(log: &PartitionLog, records: Vec<SideRecord>) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
    let mut entries = Vec::with_capacity(records.len());
    let mut run: Vec<SideRecord> = Vec::new();
    let mut run_bytes = 0usize;
    for record in records {
        match &record.kind {
            EntryKind::Batches { bytes, .. } => {
                if run_bytes + *bytes as usize > READ_RUN_BYTES_MAX && !run.is_empty() {
                    read_run(log, std::mem::take(&mut run), &mut entries)?;
                    run_bytes = 0;
                }
                run_bytes += *bytes as usize;
                run.push(record);
            }
            _ => {
                read_run(log, std::mem::take(&mut run), &mut entries)?;
                run_bytes = 0;
                entries.push(Entry { log_id: record.log_id, payload: raft_only_payload(record.kind) });
            }
        }
    }
    read_run(log, run, &mut entries)?;
    Ok(entries)
}

fn raft_only_payload(kind: EntryKind) -> EntryPayload<TypeConfig> {
    match kind {
        EntryKind::Blank => EntryPayload::Blank,
        EntryKind::Membership(membership) => EntryPayload::Membership(membership),
        EntryKind::NoRecords | EntryKind::Batches { .. } => EntryPayload::Normal(Batches(Bytes::new())),
    }
}

/// Reads consecutive batch entries with one read of the segments and splits it by entry on
/// offsets: each entry gets the batches from its first offset through its last. The split
/// goes by offsets, not by the sizes in the side index: compaction rewrites a replica's
/// closed segments (offsets stay, batches shrink, emptied ones merge), so those sizes only
/// bound the read. A read that ends inside an entry is followed by another from
/// there, twice as large when it served no entry at all.
fn read_run(
    log: &PartitionLog,
    run: Vec<SideRecord>,
    out: &mut Vec<Entry<TypeConfig>>,
) -> Result<(), StorageError<NodeId>> {
    let mut pending = &run[..];
    let mut budget: usize =
        run.iter().map(|r| if let EntryKind::Batches { bytes, .. } = r.kind { bytes as usize } else { 0 }).sum();
    while let Some(first) = pending.first() {
        let EntryKind::Batches { base_offset, last_offset, .. } = first.kind else {
            pending = &pending[1..];
            continue;
        };
        let read = log
            .read_retained(base_offset, budget.max(1))
            .map_err(|e| StorageIOError::read_log_at_index(first.log_id.index, AnyError::new(&e)))?;
        let served = split_entries(Bytes::from(read.bytes), pending, out)?;
        if served == 0 {
            if budget >= READ_ENTRY_BYTES_MAX {
                return Err(missing(first.log_id, base_offset, last_offset));
            }
            budget = budget.saturating_mul(2).max(sluice_log::BATCH_HEADER_LEN);
            continue;
        }
        pending = &pending[served..];
    }
    Ok(())
}

/// The most one read for one entry grows to before its batches count as missing: an entry
/// is at most a proposal group (2 MiB) or a producer's request, far below this.
const READ_ENTRY_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Hands out the entries of `records` (batch entries, in order) whose batches `bytes` (whole
/// batches from the one holding the first entry's first offset) holds entirely; returns how
/// many. Compaction may have merged the emptied batches of several entries into one empty
/// batch: an entry gets its own empty batch for the part of such a batch in its range, so
/// every entry still carries exactly its offsets. A gap, or a batch with records crossing an
/// entry's bounds, is an error: the segments no longer hold that entry.
fn split_entries(
    bytes: Bytes,
    records: &[SideRecord],
    out: &mut Vec<Entry<TypeConfig>>,
) -> Result<usize, StorageError<NodeId>> {
    let mut at = 0usize;
    for (served, record) in records.iter().enumerate() {
        let EntryKind::Batches { base_offset, last_offset, .. } = record.kind else { return Ok(served) };
        let gone = || missing(record.log_id, base_offset, last_offset);
        let (mut start, mut next, mut built) = (at, base_offset, None::<Vec<u8>>);
        let mut at_entry = at;
        while next <= last_offset {
            let Some(header) = bytes.get(at_entry..).and_then(|rest| BatchHeader::parse(rest).ok()) else {
                return Ok(served);
            };
            let len = header.total_len();
            if len < sluice_log::BATCH_HEADER_LEN || at_entry + len > bytes.len() {
                return Ok(served);
            }
            if header.last_offset() < next {
                // Before the entry (never between its batches, which are dense).
                at_entry += len;
                start = start.max(at_entry);
                continue;
            }
            if header.base_offset > next {
                return Err(gone());
            }
            let whole = header.base_offset == next && header.last_offset() <= last_offset;
            if whole {
                if let Some(built) = built.as_mut() {
                    built.extend_from_slice(&bytes[at_entry..at_entry + len]);
                }
                next = header.last_offset() + 1;
                at_entry += len;
                continue;
            }
            if header.records_count != 0 {
                return Err(gone());
            }
            // A merged empty batch: this entry's part of it, as an empty batch of its own.
            let part_last = header.last_offset().min(last_offset);
            let part = sluice_log::batch::empty_batch(
                &BatchHeader { base_offset: next, ..header },
                part_last,
                header.max_timestamp,
            );
            built.get_or_insert_with(|| bytes[start..at_entry].to_vec()).extend_from_slice(&part);
            next = part_last + 1;
            if header.last_offset() <= last_offset {
                at_entry += len;
            }
        }
        let entry_bytes = match built {
            Some(built) => Bytes::from(built),
            None => bytes.slice(start..at_entry),
        };
        at = at_entry;
        out.push(Entry { log_id: record.log_id, payload: EntryPayload::Normal(Batches(entry_bytes)) });
    }
    Ok(records.len())
}

/// First and last offsets of whole batches that exactly fill `bytes`, or None.
pub(crate) fn offsets_of(bytes: &[u8]) -> Option<(i64, i64)> {
    let mut at = 0usize;
    let mut first = None;
    let mut last = None;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).ok()?;
        let len = header.total_len();
        if len < sluice_log::BATCH_HEADER_LEN || at + len > bytes.len() {
            return None;
        }
        first.get_or_insert(header.base_offset);
        last = Some(header.last_offset());
        at += len;
    }
    Some((first?, last?))
}

fn missing(log_id: LogId<NodeId>, base: i64, last: i64) -> StorageError<NodeId> {
    let why = std::io::Error::other(format!("batches {base}..={last} of entry {log_id} are not in the segments"));
    StorageIOError::read_log_entry(log_id, AnyError::new(&why)).into()
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

pub(crate) fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: std::io::Error) -> StorageError<NodeId> {
    StorageError::from_io_error(subject, verb, e)
}

/// Runs blocking storage work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(StorageIOError::write(AnyError::new(&e)).into()),
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use openraft::CommittedLeaderId;

    /// An empty batch (as compaction writes) spanning `base..=last`.
    fn empty(base: i64, last: i64) -> Vec<u8> {
        let mut template = vec![0u8; sluice_log::BATCH_HEADER_LEN];
        sluice_log::batch::set_base_offset(&mut template, base);
        template[16] = 2; // magic
        let header = BatchHeader::parse(&template).unwrap();
        sluice_log::batch::empty_batch(&header, last, 1000)
    }

    fn record(index: u64, base_offset: i64, last_offset: i64) -> SideRecord {
        let log_id = LogId::new(CommittedLeaderId::new(1, 1), index);
        SideRecord { log_id, kind: EntryKind::Batches { base_offset, last_offset, bytes: 0 } }
    }

    fn offsets(entry: &Entry<TypeConfig>) -> Vec<(i64, i64)> {
        let EntryPayload::Normal(Batches(bytes)) = &entry.payload else { panic!("not a batch entry") };
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let header = BatchHeader::parse(&bytes[at..]).unwrap();
            sluice_log::batch::validate(&bytes[at..], usize::MAX).unwrap();
            out.push((header.base_offset, header.last_offset()));
            at += header.total_len();
        }
        out
    }

    /// Compaction merged the emptied batches of two entries (and part of a third) into one
    /// empty batch: each entry is handed exactly its own offsets, as valid empty batches, and
    /// an entry the bytes do not reach is left for the next read.
    #[test]
    fn a_merged_empty_batch_is_cut_back_per_entry() {
        let mut bytes = empty(0, 9);
        bytes.extend(empty(10, 10));
        let records = [record(1, 0, 3), record(2, 4, 6), record(3, 7, 10), record(4, 11, 12)];
        let mut out = Vec::new();
        let served = split_entries(Bytes::from(bytes), &records, &mut out).unwrap();
        assert_eq!(served, 3);
        let got: Vec<_> = out.iter().map(offsets).collect();
        assert_eq!(got, vec![vec![(0, 3)], vec![(4, 6)], vec![(7, 9), (10, 10)]]);
    }

    /// A batch that starts after the entry's first offset (a gap) means the entry is gone.
    #[test]
    fn a_gap_is_an_error() {
        let bytes = empty(5, 9);
        let mut out = Vec::new();
        assert!(split_entries(Bytes::from(bytes), &[record(1, 3, 9)], &mut out).is_err());
    }
}
