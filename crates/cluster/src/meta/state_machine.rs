//! The metadata group's openraft state machine: decodes each committed command, applies it to
//! the `ClusterState`, answers the proposer through `Applied::reply`, and publishes every new
//! state on a `watch` so the node can react (start partition groups, answer Metadata).
//!
//! It persists nothing: the log storage replays the log from the start on restart. Once the
//! log is purged behind a snapshot, the state before the purge lives only in that snapshot,
//! so whoever purges must keep the current snapshot durable and restore it at start
//! (`MetaStateMachine::from_snapshot`).

use std::io::Cursor;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use tokio::sync::watch;

use super::command::{MetaCommand, MetaReply};
use super::snapshot::{read_image, CurrentSnapshot, MetaSnapshotBuilder, SnapshotReadError, StoredSnapshot};
use super::state::ClusterState;
use crate::types::{Applied, NodeId, TypeConfig};

/// The metadata group's state machine (in memory; see the module comment on durability).
pub struct MetaStateMachine {
    /// Shared with the watch's receivers and with snapshot builders; copied on write.
    state: Arc<ClusterState>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    current_snapshot: CurrentSnapshot,
    /// Snapshots built so far, for distinct snapshot ids.
    snapshots_built: Arc<AtomicU64>,
    published: watch::Sender<Arc<ClusterState>>,
}

impl Default for MetaStateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl MetaStateMachine {
    /// An empty state machine: nothing applied yet.
    pub fn new() -> Self {
        let state = Arc::new(ClusterState::default());
        let (published, _) = watch::channel(state.clone());
        MetaStateMachine {
            state,
            last_applied: None,
            membership: StoredMembership::default(),
            current_snapshot: Arc::new(Mutex::new(None)),
            snapshots_built: Arc::new(AtomicU64::new(0)),
            published,
        }
    }

    /// A state machine restored from a snapshot kept by the caller (after a log purge).
    pub fn from_snapshot(meta: &SnapshotMeta<NodeId, BasicNode>, data: Vec<u8>) -> Result<Self, SnapshotReadError> {
        let mut machine = Self::new();
        machine.replace_with_snapshot(meta, data)?;
        Ok(machine)
    }

    /// Every applied state, latest first: a receiver sees the state after each `apply` call
    /// and after a snapshot install. It is published before `apply` returns, so once
    /// `client_write` answers, the watch already holds a state that includes the command.
    /// Subscribe before handing the machine to `Raft::new` (clone the receiver for more).
    pub fn state_watch(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.published.subscribe()
    }

    /// The state as of the last applied entry.
    pub fn state(&self) -> Arc<ClusterState> {
        self.state.clone()
    }

    fn replace_with_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: Vec<u8>,
    ) -> Result<(), SnapshotReadError> {
        let image = read_image(meta, &data)?;
        self.state = Arc::new(image.state);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        *self.current_snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(StoredSnapshot { meta: meta.clone(), data });
        self.published.send_replace(self.state.clone());
        Ok(())
    }

    /// Applies one entry's command. A command that does not decode is answered `Invalid` and
    /// changes nothing — on every node alike, so it cannot split the replicas' states.
    fn apply_command(&mut self, log_id: LogId<NodeId>, data: &[u8]) -> Result<Applied, serde_json::Error> {
        let (reply, offsets) = match MetaCommand::decode(data) {
            Ok(decoded) => {
                let reply = Arc::make_mut(&mut self.state).apply(decoded.command);
                (reply, Some((decoded.first_offset, decoded.last_offset)))
            }
            Err(e) => {
                tracing::warn!(%log_id, error = %e, "metadata entry is not a command; skipped");
                (MetaReply::Invalid(format!("entry {log_id} is not a metadata command: {e}")), None)
            }
        };
        Ok(Applied { offsets, reply: Some(reply.encode()?) })
    }
}

impl RaftStateMachine<TypeConfig> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut changed = false;
        for entry in entries {
            let log_id = entry.log_id;
            let applied = match entry.payload {
                EntryPayload::Blank => Applied::default(),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                    Applied::default()
                }
                EntryPayload::Normal(batches) => {
                    changed = true;
                    self.apply_command(log_id, &batches.0).map_err(|e| StorageIOError::apply(log_id, &e))?
                }
            };
            self.last_applied = Some(log_id);
            replies.push(applied);
        }
        if changed {
            self.published.send_replace(self.state.clone());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetaSnapshotBuilder {
            state: self.state.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            current: self.current_snapshot.clone(),
            built: self.snapshots_built.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.replace_with_snapshot(meta, snapshot.into_inner()).map_err(|e| e.into_storage_error(meta))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.current_snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(current.as_ref().map(StoredSnapshot::to_snapshot))
    }
}
