//! The group storage against openraft's own storage test suite, and against what is ours:
//! offsets and epochs assigned on append, truncation, and reopening after a crash left the
//! segments and the side index disagreeing.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StorageError};
use sluice_log::batch::{
    ATTRIBUTES_AT, BATCH_LENGTH_AT, CRC_AT, LAST_OFFSET_DELTA_AT, LOG_OVERHEAD, MAGIC_AT, RECORDS_COUNT_AT,
};
use sluice_log::{BatchHeader, LogConfig, PartitionLog, BATCH_HEADER_LEN};

use super::*;
use crate::types::{Applied, Batches, NodeId, TypeConfig};

/// Bound on every test's storage call, so a hang fails instead of blocking the suite.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

struct TempStore;

impl StoreBuilder<TypeConfig, LogStore, PartitionStateMachine, tempfile::TempDir> for TempStore {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, PartitionStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let (store, machine) = open(dir.path());
        Ok((dir, store, machine))
    }
}

fn open(dir: &Path) -> (LogStore, PartitionStateMachine) {
    open_observed(dir, Arc::new(NoObserver))
}

fn open_observed(dir: &Path, observer: Arc<dyn ApplyObserver>) -> (LogStore, PartitionStateMachine) {
    let log = Arc::new(PartitionLog::open(dir.join("log"), LogConfig::default()).unwrap());
    open_group_storage(&dir.join("raft"), log, observer).unwrap()
}

/// openraft's storage suite passes: vote, log state, reads, truncation, purge, apply,
/// snapshots built and installed.
#[test]
fn openraft_storage_suite() {
    Suite::test_all(TempStore).unwrap();
}

/// A valid v2 batch of `records` records with `payload` as its body (offsets unassigned).
pub(super) fn batch(records: i32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; BATCH_HEADER_LEN];
    b.extend_from_slice(payload);
    let batch_length = (b.len() - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    b[MAGIC_AT] = 2;
    b[LAST_OFFSET_DELTA_AT..][..4].copy_from_slice(&(records - 1).to_be_bytes());
    b[RECORDS_COUNT_AT..][..4].copy_from_slice(&records.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn normal(term: u64, index: u64, bytes: Vec<u8>) -> Entry<TypeConfig> {
    Entry { log_id: log_id(term, index), payload: EntryPayload::Normal(Batches(Bytes::from(bytes))) }
}

fn blank(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry { log_id: log_id(term, index), payload: EntryPayload::Blank }
}

/// Appends as `RaftLogStorage::append` does (whose callback only openraft can build) and
/// waits until the entries are durable.
async fn append(store: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
    let pending = tokio::time::timeout(CALL_TIMEOUT, store.write(entries)).await.unwrap().unwrap();
    let durable = tokio::task::spawn_blocking(move || pending.make_durable());
    tokio::time::timeout(CALL_TIMEOUT, durable).await.unwrap().unwrap().unwrap();
}

async fn entries(store: &mut LogStore) -> Vec<Entry<TypeConfig>> {
    tokio::time::timeout(CALL_TIMEOUT, store.try_get_log_entries(0..)).await.unwrap().unwrap()
}

/// Base offsets and leader epochs of the batches in an entry.
fn headers(entry: &Entry<TypeConfig>) -> Vec<(i64, i32)> {
    let EntryPayload::Normal(Batches(bytes)) = &entry.payload else { return Vec::new() };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((h.base_offset, h.partition_leader_epoch));
        at += h.total_len();
    }
    out
}

/// Appended entries read back with dense Kafka offsets (Raft-only entries take none) and
/// the entry's term as each batch's leader epoch; the log holds the same bytes.
#[tokio::test]
async fn append_assigns_offsets_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _machine) = open(dir.path());
    let mut two = batch(2, b"ab");
    two.extend(batch(3, b"cde"));
    append(&mut store, vec![blank(1, 1), normal(1, 2, two), normal(2, 3, Vec::new()), normal(2, 4, batch(1, b"f"))])
        .await;
    let read = entries(&mut store).await;
    assert_eq!(read.len(), 4);
    assert!(matches!(read[0].payload, EntryPayload::Blank));
    assert_eq!(headers(&read[1]), vec![(0, 1), (2, 1)]);
    assert_eq!(headers(&read[2]), vec![]);
    assert_eq!(headers(&read[3]), vec![(5, 2)]);
    let log = store.partition_log();
    assert_eq!(log.log_end_offset(), 6);
    assert!(log.durable_offset() >= 6, "the callback fires once the batches are durable");
    let EntryPayload::Normal(Batches(bytes)) = &read[3].payload else { panic!() };
    assert_eq!(log.read(5, 1000).unwrap().bytes, bytes.to_vec());
}

/// A truncation drops the entries and their batches; the next entries take the freed
/// offsets, and a reopen sees exactly the new log.
#[tokio::test]
async fn truncate_then_append_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, machine) = open(dir.path());
    append(&mut store, vec![normal(1, 1, batch(2, b"a")), blank(1, 2), normal(1, 3, batch(2, b"b"))]).await;
    tokio::time::timeout(CALL_TIMEOUT, store.truncate(log_id(1, 2))).await.unwrap().unwrap();
    assert_eq!(store.partition_log().log_end_offset(), 2);
    append(&mut store, vec![normal(2, 2, batch(3, b"c"))]).await;
    let read = entries(&mut store).await;
    assert_eq!(read.iter().map(|e| e.log_id).collect::<Vec<_>>(), vec![log_id(1, 1), log_id(2, 2)]);
    assert_eq!(headers(&read[1]), vec![(2, 2)]);
    drop((store, machine));
    let (mut store, _machine) = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 2)));
    assert_eq!(store.partition_log().log_end_offset(), 5);
    assert_eq!(headers(&entries(&mut store).await[1]), vec![(2, 2)]);
}

/// A torn side index tail (the last record half written) drops that entry on reopen, and its
/// batches, which the segments hold, are cut so the next entry reuses their offsets.
#[tokio::test]
async fn reopen_after_torn_side_index_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, machine) = open(dir.path());
    append(&mut store, vec![normal(1, 1, batch(2, b"a")), normal(1, 2, batch(4, b"b"))]).await;
    drop((store, machine));
    let side = dir.path().join("raft").join(side_index::SIDE_INDEX_FILE);
    let len = std::fs::metadata(&side).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&side).unwrap().set_len(len - 5).unwrap();
    let (mut store, _machine) = open(dir.path());
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 1)));
    assert_eq!(store.partition_log().log_end_offset(), 2);
    append(&mut store, vec![normal(1, 2, batch(1, b"c"))]).await;
    assert_eq!(headers(&entries(&mut store).await[1]), vec![(2, 1)]);
}

/// Batches in the segments past the last side record (a crash between the two writes) are
/// cut on reopen; records for batches the segments lost are dropped.
#[tokio::test]
async fn reopen_after_segments_ahead_and_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, machine) = open(dir.path());
    append(&mut store, vec![normal(1, 1, batch(2, b"a"))]).await;
    // Written to the segments without a side record, as if the process died in between.
    store.partition_log().append_with_epoch(&mut batch(3, b"orphan"), 1).unwrap();
    store.partition_log().flush().unwrap();
    drop((store, machine));
    let (mut store, machine) = open(dir.path());
    assert_eq!(store.partition_log().log_end_offset(), 2);
    append(&mut store, vec![normal(1, 2, batch(1, b"b")), normal(1, 3, batch(1, b"c"))]).await;
    // Now the segments lose the last batch (a torn segment tail) but the side index kept it.
    store.partition_log().truncate_suffix(3).unwrap();
    drop((store, machine));
    let (mut store, _machine) = open(dir.path());
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 2)));
    let read = entries(&mut store).await;
    assert_eq!(read.iter().flat_map(headers).collect::<Vec<_>>(), vec![(0, 1), (2, 1)]);
}

/// Records what the state machine shows its observer.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(i64, i64)>>,
    resets: Mutex<Vec<i64>>,
}

impl ApplyObserver for Recorder {
    fn applied(&self, _batches: &[u8], first_offset: i64, last_offset: i64) {
        self.applied.lock().unwrap().push((first_offset, last_offset));
    }
    fn reset(&self, next_offset: i64) {
        self.resets.lock().unwrap().push(next_offset);
    }
}

/// Applying batch entries answers their offsets, moves the high watermark on the watch and
/// tells the observer; Raft-only entries take no offset; membership is tracked.
#[tokio::test]
async fn apply_publishes_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut store, mut machine) = open_observed(dir.path(), recorder.clone());
    let members = Membership::new(vec![BTreeSet::from([1u64, 2, 3])], None);
    let membership = Entry { log_id: log_id(1, 2), payload: EntryPayload::Membership(members.clone()) };
    append(&mut store, vec![blank(1, 1), membership, normal(1, 3, batch(4, b"a")), normal(1, 4, batch(1, b"b"))]).await;
    let mut watch = machine.committed_watch();
    let applied = machine.apply(entries(&mut store).await).await.unwrap();
    assert_eq!(
        applied,
        vec![
            Applied::default(),
            Applied::default(),
            Applied { offsets: Some((0, 3)), reply: None },
            Applied { offsets: Some((4, 4)), reply: None }
        ]
    );
    assert!(watch.has_changed().unwrap());
    assert_eq!(*watch.borrow_and_update(), 5);
    assert_eq!(machine.high_watermark(), 5);
    assert_eq!(*recorder.applied.lock().unwrap(), vec![(0, 3), (4, 4)]);
    let (last, stored) = machine.applied_state().await.unwrap();
    assert_eq!(last, Some(log_id(1, 4)));
    assert_eq!(stored.membership(), &members);
}

/// A snapshot from a leader whose offsets are past this replica's log end resets the log to
/// start there (the observer is told); the next entries continue at the leader's offsets.
#[tokio::test]
async fn install_snapshot_ahead_resets_log() {
    let leader_dir = tempfile::tempdir().unwrap();
    let (mut leader_store, mut leader) = open(leader_dir.path());
    append(&mut leader_store, vec![normal(1, 1, batch(10, b"a")), normal(1, 2, batch(5, b"b"))]).await;
    leader.apply(entries(&mut leader_store).await).await.unwrap();
    let snapshot = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut store, mut follower) = open_observed(follower_dir.path(), recorder.clone());
    append(&mut store, vec![normal(1, 1, batch(3, b"old"))]).await;
    let mut data = follower.begin_receiving_snapshot().await.unwrap();
    *data = *snapshot.snapshot;
    follower.install_snapshot(&snapshot.meta, data).await.unwrap();
    assert_eq!(*recorder.resets.lock().unwrap(), vec![15]);
    assert_eq!(follower.high_watermark(), 15);
    let log = store.partition_log();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (15, 15));
    store.purge(log_id(1, 2)).await.unwrap();
    append(&mut store, vec![normal(2, 3, batch(1, b"c"))]).await;
    assert_eq!(headers(&entries(&mut store).await[0]), vec![(15, 2)]);
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    drop((store, follower));
    // After a restart the state machine starts from the stored snapshot.
    let (store, follower) = open(follower_dir.path());
    assert_eq!(follower.high_watermark(), 15);
    assert_eq!(store.partition_log().log_end_offset(), 16);
}

/// A snapshot this replica already holds the log for keeps the log, and the observer is shown
/// the batches it had not seen applied.
#[tokio::test]
async fn install_snapshot_held_locally_keeps_log_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut store, mut machine) = open_observed(dir.path(), recorder.clone());
    append(&mut store, vec![normal(1, 1, batch(2, b"a")), normal(1, 2, batch(3, b"b")), normal(1, 3, batch(1, b"c"))])
        .await;
    let read = entries(&mut store).await;
    machine.apply(read[..1].to_vec()).await.unwrap();
    // The leader's snapshot covers entries 1..=2 (offsets 0..5).
    let other_dir = tempfile::tempdir().unwrap();
    let (mut other_store, mut other) = open(other_dir.path());
    append(&mut other_store, vec![normal(1, 1, batch(2, b"a")), normal(1, 2, batch(3, b"b"))]).await;
    other.apply(entries(&mut other_store).await).await.unwrap();
    let snapshot = other.get_snapshot_builder().await.build_snapshot().await.unwrap();
    machine.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
    assert!(recorder.resets.lock().unwrap().is_empty());
    assert_eq!(*recorder.applied.lock().unwrap(), vec![(0, 1), (2, 4)]);
    assert_eq!(machine.high_watermark(), 5);
    assert_eq!(store.partition_log().log_end_offset(), 6);
    assert_eq!(entries(&mut store).await.len(), 3);
}

/// Under `FlushPolicy::Os` an append is reported without an fsync (losable, as documented).
#[tokio::test]
async fn os_policy_reports_without_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: sluice_log::FlushPolicy::Os, ..LogConfig::default() };
    let log = Arc::new(PartitionLog::open(dir.path().join("log"), config).unwrap());
    let (mut store, _machine) = open_group_storage(&dir.path().join("raft"), log, Arc::new(NoObserver)).unwrap();
    let fsyncs = store.partition_log().fsync_count();
    append(&mut store, vec![normal(1, 1, batch(2, b"a"))]).await;
    assert_eq!(store.partition_log().fsync_count(), fsyncs);
    assert_eq!(store.partition_log().log_end_offset(), 2);
}

/// A proposal tagged by `WrittenWaiters::register` is answered with the offsets it took as
/// soon as the append has written it (before anything is durable or applied); the log holds
/// the real offsets, never the tag; a registration dropped unanswered leaves no waiter.
#[tokio::test]
async fn a_tagged_proposal_learns_its_offsets_from_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _machine) = open(dir.path());
    let waiters = Arc::clone(store.written_waiters());
    let mut first = batch(2, b"ab");
    let registration = waiters.register(&mut first).expect("a batch to tag");
    assert!(BatchHeader::parse(&first).unwrap().base_offset < 0, "tagged with a negative base offset");
    let forgotten = waiters.register(&mut batch(1, b"x")).expect("a batch to tag");
    drop(forgotten);
    assert_eq!(waiters.waiting(), 1);

    let pending =
        tokio::time::timeout(CALL_TIMEOUT, store.write(vec![normal(1, 1, batch(3, b"c")), normal(1, 2, first)]))
            .await
            .unwrap()
            .unwrap();
    let written = tokio::time::timeout(CALL_TIMEOUT, registration.written).await.unwrap().unwrap();
    assert_eq!(written, (3, 4));
    assert_eq!(waiters.waiting(), 0);
    drop(pending);
    let mut reader = store.clone();
    let read = entries(&mut reader).await;
    assert_eq!(headers(&read[1]), vec![(3, 1)]);
}

/// Retention on a replica: after a snapshot, the entries holding only records below an
/// offset are purged (the side index forgets them; what stays needed starts at the first
/// kept entry). Reopened from the snapshot, the state machine shows the observer the records
/// below it (openraft re-applies only what follows), so producer state survives a restart.
#[tokio::test]
async fn purge_below_retention_and_reopen_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, mut machine) = open(dir.path());
    append(&mut store, vec![normal(1, 1, batch(2, b"a")), blank(1, 2), normal(1, 3, batch(3, b"b"))]).await;
    machine.apply(entries(&mut store).await).await.unwrap();
    machine.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_eq!(store.purge_point_below(0), None);
    assert_eq!(store.purge_point_below(3), Some(2), "the blank entry goes with the batch before it");
    store.purge(log_id(1, 2)).await.unwrap();
    assert_eq!(store.first_needed_offset(), 2);
    assert_eq!(store.get_log_state().await.unwrap().last_purged_log_id, Some(log_id(1, 2)));
    drop((store, machine));
    let recorder = Arc::new(Recorder::default());
    let (mut store, machine) = open_observed(dir.path(), recorder.clone());
    assert_eq!(machine.high_watermark(), 5);
    assert_eq!(*recorder.applied.lock().unwrap(), vec![(0, 4)], "records below the snapshot replayed");
    assert_eq!(entries(&mut store).await.len(), 1, "only the kept entry");
    assert_eq!(store.first_needed_offset(), 2);
}
