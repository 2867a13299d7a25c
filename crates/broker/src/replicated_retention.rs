//! Retention on a replicated partition. Each replica decides on its own (as each Kafka broker
//! applies retention to its own log), but its segments are also its Raft log: before they go,
//! the Raft log drops the entries they hold (`Replica::release_below`: a snapshot covering
//! them, then a purge), so Raft never reads a deleted record and a follower that needs them
//! gets a snapshot instead. Only segments wholly below what the replica has applied can go.

use crate::broker::Broker;
use crate::partition::Partition;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Partitions with a retention pass under way, so a slow purge is not started twice.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<HashSet<(String, i32)>>);

impl InFlight {
    /// Starts a retention pass for `partition` on its own task, unless one is under way.
    pub(crate) fn start(self: &Arc<Self>, broker: &Arc<Broker>, topic: &str, partition: Arc<Partition>, now_ms: i64) {
        let key = (topic.to_string(), partition.index);
        if !self.0.lock().map(|mut set| set.insert(key.clone())).unwrap_or(false) {
            return;
        }
        let (me, broker) = (Arc::clone(self), Arc::clone(broker));
        tokio::spawn(async move {
            // The Raft log may release less than retention wants (entries not applied yet, a
            // purge delayed by a replication reading them): try again shortly, a few times,
            // rather than leave the rest to the next periodic check.
            for _ in 0..RETRIES_MAX {
                if enforce(&broker, &key.0, &partition, now_ms).await {
                    break;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
            if let Ok(mut set) = me.0.lock() {
                set.remove(&key);
            }
        });
    }
}

/// Attempts of one retention pass while the Raft log releases less than retention wants.
const RETRIES_MAX: usize = 10;
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One retention pass over a replicated partition: what retention would delete, released by
/// the Raft log first, then deleted up to what was released. False when the Raft log
/// released less than retention wanted.
async fn enforce(broker: &Broker, topic: &str, partition: &Arc<Partition>, now_ms: i64) -> bool {
    let Some(replica) = partition.replica() else { return true };
    let log = partition.log_handle();
    let hold = broker.retention_hold(topic, partition.index);
    let target = log.retention_target(now_ms, hold);
    if target <= log.log_start_offset() {
        return true;
    }
    let released = replica.release_below(target).await;
    if released <= log.log_start_offset() {
        return false;
    }
    let index = partition.index;
    let deleted = tokio::task::spawn_blocking(move || log.enforce_retention_below(now_ms, hold, released)).await;
    match deleted {
        Ok(Ok(report)) if report.segments_deleted > 0 => tracing::info!(
            topic,
            partition = index,
            segments = report.segments_deleted,
            bytes = report.bytes_deleted,
            log_start_offset = report.log_start_offset,
            "retention deleted segments of a replicated log"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(topic, partition = index, error = %e, "retention failed"),
        Err(e) => tracing::error!(topic, partition = index, error = %e, "retention task failed"),
    }
    released >= target
}
