//! The metadata group's snapshot: the whole state with the log id and membership it reflects,
//! as JSON. Small (metadata only), so it is built in memory from a shared copy of the state.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::{
    BasicNode, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::limits::SNAPSHOT_BYTES_MAX;
use super::state::ClusterState;
use crate::types::{NodeId, TypeConfig};

/// What a snapshot holds. `last_applied` and `membership` repeat the snapshot's meta so the
/// bytes alone describe themselves (and install can check they belong together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotImage {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub state: ClusterState,
}

/// The same, borrowed, for writing without copying the state.
#[derive(Serialize)]
struct SnapshotImageRef<'a> {
    last_applied: &'a Option<LogId<NodeId>>,
    membership: &'a StoredMembership<NodeId, BasicNode>,
    state: &'a ClusterState,
}

/// The latest snapshot built or installed: what `get_current_snapshot` returns.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub data: Vec<u8>,
}

/// The latest snapshot, shared by the state machine and the builders it hands out.
pub type CurrentSnapshot = Arc<Mutex<Option<StoredSnapshot>>>;

impl StoredSnapshot {
    pub fn to_snapshot(&self) -> Snapshot<TypeConfig> {
        Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(self.data.clone())) }
    }
}

/// Why snapshot bytes cannot be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotReadError {
    #[error("snapshot of {0} bytes is over the {SNAPSHOT_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("not a metadata snapshot: {0}")]
    Json(#[from] serde_json::Error),
    #[error("snapshot data is of log id {data:?}, its meta says {meta:?}")]
    MetaMismatch { data: Option<LogId<NodeId>>, meta: Option<LogId<NodeId>> },
}

impl SnapshotReadError {
    /// The error openraft expects from `install_snapshot`.
    pub fn into_storage_error(self, meta: &SnapshotMeta<NodeId, BasicNode>) -> StorageError<NodeId> {
        StorageIOError::read_snapshot(Some(meta.signature()), &self).into()
    }
}

/// Reads snapshot bytes, checking their size bound and that they describe `meta`.
pub fn read_image(meta: &SnapshotMeta<NodeId, BasicNode>, data: &[u8]) -> Result<SnapshotImage, SnapshotReadError> {
    if data.len() > SNAPSHOT_BYTES_MAX {
        return Err(SnapshotReadError::TooLarge(data.len()));
    }
    let image: SnapshotImage = serde_json::from_slice(data)?;
    if image.last_applied != meta.last_log_id || image.membership != meta.last_membership {
        return Err(SnapshotReadError::MetaMismatch { data: image.last_applied, meta: meta.last_log_id });
    }
    Ok(image)
}

/// Builds a snapshot from a copy of the state taken when the builder was made.
pub struct MetaSnapshotBuilder {
    pub(super) state: Arc<ClusterState>,
    pub(super) last_applied: Option<LogId<NodeId>>,
    pub(super) membership: StoredMembership<NodeId, BasicNode>,
    pub(super) current: CurrentSnapshot,
    /// Counts snapshots built, so two built at the same log id still get distinct ids.
    pub(super) built: Arc<AtomicU64>,
}

impl RaftSnapshotBuilder<TypeConfig> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let image =
            SnapshotImageRef { last_applied: &self.last_applied, membership: &self.membership, state: &self.state };
        let data = serde_json::to_vec(&image).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let number = self.built.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.last_applied {
            Some(log_id) => format!("meta-{}-{}-{number}", log_id.leader_id, log_id.index),
            None => format!("meta-none-{number}"),
        };
        let meta =
            SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        let stored = StoredSnapshot { meta, data };
        let snapshot = stored.to_snapshot();
        keep_newest(&self.current, stored);
        Ok(snapshot)
    }
}

/// Makes `stored` the current snapshot unless a newer one is already there: a builder runs
/// beside the state machine, and an install may have finished while it was writing.
pub fn keep_newest(current: &CurrentSnapshot, stored: StoredSnapshot) {
    // A poisoned lock only means another holder panicked between statements; the value is whole.
    let mut current = current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if current.as_ref().is_none_or(|c| c.meta.last_log_id <= stored.meta.last_log_id) {
        *current = Some(stored);
    }
}
