//! Follows this node's leadership of the `__consumer_offsets` partitions: a partition it
//! starts leading (or leads in a new term) is read from its start before its groups are
//! served; one it stops leading is dropped with its groups' members. Requests that see a
//! change first (`ReplicatedOffsets::lease`) wake the task, so the period only bounds how late
//! a change nobody asked about is noticed.

use super::coordinator::GroupCoordinator;
use super::offsets_record::OffsetKey;
use super::replicated_offsets::ReplicatedOffsets;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Longest a leadership change goes unnoticed when no request reports it: a new leader has
/// usually loaded its groups before the clients' FindCoordinator retry (100 ms and up) arrives.
const CHECK_PERIOD: Duration = Duration::from_millis(200);

pub async fn run(
    coordinator: Weak<GroupCoordinator>,
    replicated: Arc<ReplicatedOffsets>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_PERIOD) => {}
            _ = replicated.changed.notified() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        let Some(coordinator) = coordinator.upgrade() else { return };
        for (index, leading) in replicated.leadership() {
            let held = replicated.held_epoch(index);
            if held == leading {
                continue;
            }
            if held.is_some() && replicated.forget(index) {
                coordinator.offsets_partition_lost(index);
            }
            if let Some(epoch) = leading {
                load(&coordinator, &replicated, index, epoch).await;
            }
        }
    }
}

/// Reads one partition on the blocking pool; a failed load is forgotten and retried next round.
async fn load(coordinator: &GroupCoordinator, replicated: &Arc<ReplicatedOffsets>, index: i32, epoch: i32) {
    if !replicated.caught_up(index).await {
        tracing::warn!(partition = index, epoch, "offsets partition not caught up; retrying");
        return;
    }
    let loader = Arc::clone(replicated);
    match tokio::task::spawn_blocking(move || loader.load(index, epoch)).await {
        Ok(Ok(groups)) => coordinator.offsets_partition_loaded(groups),
        outcome => {
            tracing::warn!(partition = index, epoch, ?outcome, "committed offsets not loaded; retrying");
            replicated.forget(index);
        }
    }
}

/// A topic was deleted: every group's offsets of it go from the partitions this node leads,
/// as Kafka's coordinators do, written in the background (the caller holds the broker's admin
/// lock). Partitions led elsewhere are cleaned by their leaders; one without a leader at this
/// moment keeps them (a re-created topic's consumers then start from those offsets).
pub fn topic_deleted(replicated: &Arc<ReplicatedOffsets>, topic: &str) -> usize {
    let mut count = 0;
    for lease in replicated.loaded() {
        let writes: Vec<_> = replicated
            .offsets_in(lease)
            .into_iter()
            .filter(|(_, t, _, _)| t == topic)
            .map(|(group, topic, partition, _)| (OffsetKey { group, topic, partition }, None))
            .collect();
        if writes.is_empty() {
            continue;
        }
        count += writes.len();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return count };
        let replicated = Arc::clone(replicated);
        handle.spawn(async move {
            if let Err(e) = replicated.write(lease, writes).await {
                tracing::warn!(partition = lease.partition, error = %e, "offsets of a deleted topic not removed");
            }
        });
    }
    count
}
