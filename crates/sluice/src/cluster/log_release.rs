//! Retention on a replica (`Replica::release_below`): before the broker deletes segments, the
//! partition's Raft log lets go of the entries they hold. openraft 0.9 purges only entries a
//! snapshot covers (`trigger().purge_log` is capped at the last snapshot), so this builds one
//! first when needed (metadata only: cheap), then purges, and waits for both with a bound.
//! The log store's purge drops the side index's records, so its memory follows the log.
//! A leader purges only once no replication task reads the entries; a follower that still
//! needs them is sent the snapshot and its log restarts at the snapshot's offset.

use sluice_cluster::storage::LogStore;
use sluice_cluster::types::Raft;
use std::time::Duration;

/// Upper bound on waiting for a snapshot or a purge; what is done by then counts, the rest
/// waits for the next retention pass.
const RELEASE_WAIT_MAX: Duration = Duration::from_secs(10);

/// Purges the Raft entries holding only records below `offset` (as far as a snapshot of this
/// replica's applied state covers them) and returns the offset below which the segments
/// hold nothing the Raft log may still read, at most `offset`.
pub async fn release_below(raft: &Raft, store: &LogStore, offset: i64) -> i64 {
    if let Some(index) = store.purge_point_below(offset) {
        purge_to(raft, index).await;
    }
    offset.min(store.first_needed_offset())
}

async fn purge_to(raft: &Raft, index: u64) {
    let (snapshot, applied) = {
        let m = raft.metrics().borrow().clone();
        (m.snapshot, m.last_applied)
    };
    if snapshot.map(|s| s.index) < Some(index) && applied > snapshot {
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        let built = raft.wait(Some(RELEASE_WAIT_MAX)).metrics(|m| m.snapshot != snapshot, "snapshot built").await;
        if let Err(e) = built {
            tracing::warn!(error = %e, "no snapshot for retention yet");
        }
    }
    let Some(covered) = raft.metrics().borrow().snapshot.map(|s| s.index.min(index)) else { return };
    if raft.metrics().borrow().purged.map(|p| p.index) >= Some(covered) {
        return;
    }
    if raft.trigger().purge_log(covered).await.is_err() {
        return;
    }
    let purged =
        raft.wait(Some(RELEASE_WAIT_MAX)).metrics(|m| m.purged.map(|p| p.index) >= Some(covered), "log purged").await;
    if let Err(e) = purged {
        tracing::info!(error = %e, "Raft log not purged yet (a replication may still read it)");
    }
}
