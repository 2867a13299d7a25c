//! Raft storage of a partition group over the partition's own log (DESIGN.md, "The
//! cluster": the partition log is the Raft log).
//!
//! - `side_index`: every Raft entry's log id and kind (Kafka offsets of its batches, or a
//!   Raft-only entry), persisted beside the segments.
//! - `vote`: the vote and the committed log id.
//! - `log_store`: openraft's `RaftLogStorage` over the segments and the side index.
//! - `state_machine`: openraft's `RaftStateMachine`: the high watermark and an observer of
//!   committed batches.
//! - `snapshot`: the metadata-only snapshot.
//! - `written`: proposals waiting for the leader's own append (Kafka's acks=1).
//!
//! Files of a group's directory (`dir` of `open_group_storage`, e.g. the partition
//! directory's `raft/`): `side-index`, `side-index.base`, `vote`, `committed`, `snapshot`
//! (docs/format.md, "Raft side index and vote").

// openraft's traits return its `StorageError` (over 200 bytes); helpers return it too
// rather than convert at every call.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod side_index;
mod snapshot;
pub mod state_machine;
pub mod vote;
pub mod written;

#[cfg(test)]
mod simulation_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex};

use sluice_log::PartitionLog;

pub use log_store::LogStore;
pub use side_index::SideIndexError;
pub use snapshot::SnapshotData;
pub use state_machine::{ApplyObserver, NoObserver, PartitionSnapshotBuilder, PartitionStateMachine};
pub use written::{Registration, WrittenWaiters};

use log_store::GroupLog;
use side_index::SideIndex;
use vote::VoteFiles;

/// Why a group's storage could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageOpenError {
    #[error(transparent)]
    SideIndex(#[from] SideIndexError),
    /// The segments and the side index could not be brought to agree.
    #[error("reconciling the log with the side index: {0}")]
    Reconcile(#[source] sluice_log::TruncateError),
    #[error("state machine: {0}")]
    StateMachine(#[source] std::io::Error),
}

/// Opens a partition group's Raft storage: the side index, vote and snapshot in `dir` (the
/// partition directory's `sluice_log::RAFT_DIR`, which the log's recovery ignores) over `log`. A new side index adopts the records already in `log` as the prefix before Raft.
/// The segments and the side index are reconciled first (see `reconcile`).
pub fn open_group_storage(
    dir: &Path,
    log: Arc<PartitionLog>,
    observer: Arc<dyn ApplyObserver>,
) -> Result<(LogStore, PartitionStateMachine), StorageOpenError> {
    let mut side = SideIndex::open(dir, log.log_end_offset())?;
    reconcile(&mut side, &log)?;
    let group = Arc::new(GroupLog {
        dir: dir.to_path_buf(),
        log,
        side: Mutex::new(side),
        votes: VoteFiles::new(dir),
        written: Arc::default(),
    });
    let machine = PartitionStateMachine::open(Arc::clone(&group), observer).map_err(StorageOpenError::StateMachine)?;
    Ok((LogStore::new(group), machine))
}

/// Makes the segments and the side index agree after a crash. An append writes batches, then
/// side records, and reports both durable only after both are synced, so: side records whose
/// batches are not wholly in the segments were never reported durable and are dropped (with
/// every record after them); batches past the last side record were never reported either and
/// are cut off the segments.
fn reconcile(side: &mut SideIndex, log: &PartitionLog) -> Result<(), StorageOpenError> {
    let log_end = log.log_end_offset();
    if let Some(index) = side.first_batches_ending_past(log_end) {
        let dropped = side.truncate_from(index).map_err(|e| SideIndexError::Io { path: side.path(), source: e })?;
        tracing::warn!(index, log_end, dropped = dropped.len(), "side index ahead of the segments: entries dropped");
    }
    let expected_end = side.next_offset().max(log.log_start_offset());
    if log_end > expected_end {
        tracing::warn!(log_end, expected_end, "segments ahead of the side index: cutting them back");
        log.truncate_suffix(expected_end).map_err(StorageOpenError::Reconcile)?;
    } else if log_end < expected_end && side.is_empty() {
        // Only the base says where the offsets go on: a snapshot reset was interrupted.
        tracing::warn!(log_end, expected_end, "log behind the side index base: resetting it");
        log.reset_to(expected_end).map_err(StorageOpenError::Reconcile)?;
    }
    Ok(())
}
