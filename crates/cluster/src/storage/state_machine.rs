//! `PartitionStateMachine`: a partition group's state machine. The records are already in
//! the log when an entry commits; applying it moves the high watermark (the Kafka offset after
//! the last applied record, published on a watch) and tells an observer (idempotent producer
//! state and the like) which batches are now committed.
//!
//! Applied state is not persisted on every apply: a restart starts from the last snapshot
//! and openraft re-applies the committed entries after it (the committed log id is saved by
//! the log store), so the observer sees those batches again; the records of the newest
//! segments below the snapshot are replayed to it on open.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use sluice_log::BatchHeader;
use tokio::sync::watch;

use super::log_store::{blocking, io_error, offsets_of, GroupLog};
use super::snapshot::{self, SnapshotData, StoredSnapshot};
use crate::types::{Applied, Batches, NodeId, TypeConfig};

/// Told of what the state machine applies. Called on the state machine's task: keep it quick.
pub trait ApplyObserver: Send + Sync + 'static {
    /// Batches committed and applied, `first..=last` offsets (idempotent producer state etc.).
    fn applied(&self, batches: &[u8], first_offset: i64, last_offset: i64);
    /// The log was reset to start at `next_offset` by a snapshot.
    fn reset(&self, next_offset: i64);
}

/// An observer that ignores everything (tests, groups nobody watches).
pub struct NoObserver;

impl ApplyObserver for NoObserver {
    fn applied(&self, _: &[u8], _: i64, _: i64) {}
    fn reset(&self, _: i64) {}
}

/// Bytes read per step when replaying the log to the observer after a snapshot install.
const REPLAY_READ_BYTES: usize = 1024 * 1024;
/// Opening from a snapshot, the observer is shown the records of the last this many segments
/// below it: as many as a single node restores its producer state from.
const REPLAY_SEGMENTS_ON_OPEN: usize = 2;

/// What has been applied.
#[derive(Debug, Clone, Default)]
struct AppliedState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    /// The Kafka offset after the last applied record: the high watermark.
    next_offset: i64,
}

pub struct PartitionStateMachine {
    group: Arc<GroupLog>,
    observer: Arc<dyn ApplyObserver>,
    state: AppliedState,
    committed: watch::Sender<i64>,
    /// Makes snapshot ids unique within this process (with the time, across restarts).
    snapshots_built: Arc<AtomicU64>,
}

impl PartitionStateMachine {
    /// Starts from the stored snapshot, or from where the group's offsets begin. A snapshot
    /// ahead of the local log (an install interrupted before its reset) resets the log now.
    pub(crate) fn open(group: Arc<GroupLog>, observer: Arc<dyn ApplyObserver>) -> std::io::Result<Self> {
        let stored = snapshot::load(&group.dir)?;
        let state = match &stored {
            Some(s) => AppliedState {
                last_applied: s.meta.last_log_id,
                membership: s.meta.last_membership.clone(),
                next_offset: s.data.next_offset,
            },
            None => AppliedState { next_offset: group.side().base().next_offset, ..AppliedState::default() },
        };
        if let Some(s) = &stored {
            if group.log.log_end_offset() < s.data.next_offset {
                reset_log(&group, s.meta.last_log_id, s.data.next_offset).map_err(std::io::Error::other)?;
                observer.reset(s.data.next_offset);
            } else {
                // openraft re-applies only the entries after the snapshot: the observer is
                // shown the recent records below it, so a leader's producer state still
                // answers retries of batches committed shortly before the snapshot.
                let bases = group.log.segment_base_offsets();
                let holding_last = bases.partition_point(|&b| b < s.data.next_offset);
                let first = holding_last.saturating_sub(REPLAY_SEGMENTS_ON_OPEN);
                let from = bases.get(first).copied().unwrap_or_else(|| group.log.log_start_offset());
                replay(&group, observer.as_ref(), from, s.data.next_offset).map_err(std::io::Error::other)?;
            }
        }
        let (committed, _) = watch::channel(state.next_offset);
        Ok(PartitionStateMachine { group, observer, state, committed, snapshots_built: Arc::default() })
    }

    /// The high watermark (next offset after the last applied record), as it moves.
    pub fn committed_watch(&self) -> watch::Receiver<i64> {
        self.committed.subscribe()
    }

    /// The high watermark now.
    pub fn high_watermark(&self) -> i64 {
        self.state.next_offset
    }

    fn apply_one(&mut self, entry: Entry<TypeConfig>) -> Result<Applied, StorageError<NodeId>> {
        let log_id = entry.log_id;
        let applied = match entry.payload {
            EntryPayload::Normal(Batches(bytes)) if !bytes.is_empty() => {
                let (first, last) = offsets_of(&bytes).ok_or_else(|| {
                    let why = std::io::Error::other("entry does not hold whole record batches");
                    StorageIOError::apply(log_id, AnyError::new(&why))
                })?;
                self.observer.applied(&bytes, first, last);
                self.state.next_offset = last + 1;
                Applied { offsets: Some((first, last)), reply: None }
            }
            EntryPayload::Membership(membership) => {
                self.state.membership = StoredMembership::new(Some(log_id), membership);
                Applied::default()
            }
            EntryPayload::Normal(_) | EntryPayload::Blank => Applied::default(),
        };
        self.state.last_applied = Some(log_id);
        Ok(applied)
    }

    fn current_meta(&self) -> SnapshotMeta<NodeId, openraft::BasicNode> {
        let built = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let at = self.state.last_applied.map_or("none".to_string(), |l| format!("{}-{}", l.leader_id.term, l.index));
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.membership.clone(),
            snapshot_id: format!("{at}-{now_ms}-{built}"),
        }
    }
}

/// Builds a snapshot of the applied state when openraft asks for one.
pub struct PartitionSnapshotBuilder {
    group: Arc<GroupLog>,
    snapshot: StoredSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for PartitionSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (group, stored) = (Arc::clone(&self.group), self.snapshot.clone());
        let signature = stored.meta.signature();
        blocking(move || {
            snapshot::store(&group.dir, &stored)
                .map_err(|e| StorageIOError::write_snapshot(Some(signature), AnyError::new(&e)))?;
            to_snapshot(stored)
        })
        .await
    }
}

impl RaftStateMachine<TypeConfig> for PartitionStateMachine {
    type SnapshotBuilder = PartitionSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, openraft::BasicNode>), StorageError<NodeId>> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let replies = entries.into_iter().map(|entry| self.apply_one(entry)).collect::<Result<Vec<_>, _>>()?;
        let next_offset = self.state.next_offset;
        self.committed.send_if_modified(|hw| std::mem::replace(hw, next_offset) != next_offset);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let data =
            SnapshotData { next_offset: self.state.next_offset, log_start_offset: self.group.log.log_start_offset() };
        PartitionSnapshotBuilder {
            group: Arc::clone(&self.group),
            snapshot: StoredSnapshot { meta: self.current_meta(), data },
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let signature = meta.signature();
        let read_err = |e: std::io::Error| StorageIOError::read_snapshot(Some(signature.clone()), AnyError::new(&e));
        let data = snapshot::decode_data(snapshot.get_ref()).map_err(read_err)?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        let (group, observer, from) = (Arc::clone(&self.group), Arc::clone(&self.observer), self.state.next_offset);
        blocking(move || install(&group, observer.as_ref(), &stored, from)).await?;
        self.state = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            next_offset: data.next_offset,
        };
        self.committed.send_replace(data.next_offset);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let group = Arc::clone(&self.group);
        blocking(move || match snapshot::load(&group.dir) {
            Ok(Some(stored)) => to_snapshot(stored).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(StorageIOError::read_snapshot(None, AnyError::new(&e)).into()),
        })
        .await
    }
}

/// Stores the snapshot, then either keeps the local log (it holds the snapshot's last entry
/// and every record below the snapshot's next offset: the observer is shown the records it
/// had not seen applied) or resets the log to start at the snapshot's next offset.
fn install(
    group: &GroupLog,
    observer: &dyn ApplyObserver,
    stored: &StoredSnapshot,
    applied_next_offset: i64,
) -> Result<(), StorageError<NodeId>> {
    let signature = stored.meta.signature();
    snapshot::store(&group.dir, stored)
        .map_err(|e| StorageIOError::write_snapshot(Some(signature), AnyError::new(&e)))?;
    let next_offset = stored.data.next_offset;
    let last = stored.meta.last_log_id;
    let holds_last = match last {
        Some(last) => group.side().get(last.index).map(|r| r.log_id) == Some(last),
        None => true,
    };
    if holds_last && group.log.log_end_offset() >= next_offset {
        return replay(group, observer, applied_next_offset, next_offset);
    }
    reset_log(group, last, next_offset)?;
    observer.reset(next_offset);
    Ok(())
}

/// Drops the whole local log and goes on at `next_offset`, the side index agreeing.
fn reset_log(group: &GroupLog, last: Option<LogId<NodeId>>, next_offset: i64) -> Result<(), StorageError<NodeId>> {
    group.log.reset_to(next_offset).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
    if let Some(last) = last {
        group.side().note_reset(last, next_offset).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
    }
    tracing::info!(dir = %group.dir.display(), next_offset, "log reset by a snapshot");
    Ok(())
}

/// Shows the observer the whole batches in `[from, to)` (records applied through a snapshot
/// rather than entry by entry).
fn replay(group: &GroupLog, observer: &dyn ApplyObserver, from: i64, to: i64) -> Result<(), StorageError<NodeId>> {
    let mut cursor = from.max(group.log.log_start_offset());
    while cursor < to {
        let read = group.log.read(cursor, REPLAY_READ_BYTES).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let mut at = 0usize;
        let (mut first, mut last) = (None, cursor - 1);
        while let Ok(header) = BatchHeader::parse(&read.bytes[at..]) {
            if header.last_offset() >= to || at + header.total_len() > read.bytes.len() {
                break;
            }
            first.get_or_insert(header.base_offset);
            last = header.last_offset();
            at += header.total_len();
        }
        let Some(first) = first else { break };
        observer.applied(&read.bytes[..at], first, last);
        cursor = last + 1;
    }
    Ok(())
}

fn to_snapshot(stored: StoredSnapshot) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
    let data =
        snapshot::encode_data(&stored.data).map_err(|e| io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
    Ok(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(data)) })
}
