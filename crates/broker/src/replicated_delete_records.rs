//! DeleteRecords on a replicated partition, as Kafka's: the leader moves the log start and the
//! followers follow it. The new start is a metadata command (`ClusterView::delete_records`),
//! so every replica learns it, also one that was down or is wiped and rebuilt later, and a
//! failover never brings the deleted records back. Each replica applies it to its own log as
//! far as it has applied (`follow_floor`): the log start moves at once; segments go only once
//! the Raft log let go of the entries they hold (`Replica::release_below`, as retention
//! does), and until then the Raft log still reads them (`PartitionLog::read_retained`).

use crate::broker::Broker;
use crate::delete_records::HIGH_WATERMARK;
use crate::error::{BrokerError, BrokerResult, LogError};
use crate::partition::Partition;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

impl Partition {
    /// DeleteRecords on the leader of a replicated partition: Kafka's rules for `offset`
    /// (`HIGH_WATERMARK`: every committed record), the new start recorded cluster-wide, then
    /// applied here. Returns the new log start offset (Kafka's `low_watermark`).
    pub async fn delete_records_replicated(self: &Arc<Self>, broker: &Broker, offset: i64) -> BrokerResult<i64> {
        self.check_leader()?;
        let cluster = broker.cluster().ok_or_else(|| BrokerError::NotInCluster("no cluster".into()))?;
        let high_watermark = self.log_end_offset();
        let target = if offset == HIGH_WATERMARK { high_watermark } else { offset };
        if !(0..=high_watermark).contains(&target) {
            let log_start = self.log_start_offset();
            return Err(BrokerError::OffsetOutOfRange { offset, log_start, log_end: high_watermark });
        }
        if target <= self.log_start_offset() {
            return Ok(self.log_start_offset());
        }
        cluster.delete_records(&self.topic, self.index, target).await?;
        follow_floor(self, target).await
    }
}

/// Moves this replica's log start up to `floor`, as far as it has applied, and deletes the
/// segments wholly below it that its Raft log no longer needs. Returns the log start.
pub(crate) async fn follow_floor(partition: &Arc<Partition>, floor: i64) -> BrokerResult<i64> {
    let Some(replica) = partition.replica() else { return Ok(partition.log_start_offset()) };
    let target = floor.min(partition.log_end_offset());
    let released = replica.release_below(target).await;
    let log = partition.log_handle();
    let moved = tokio::task::spawn_blocking(move || log.advance_log_start_within(target, released)).await;
    let failed = |e: String| BrokerError::Storage(format!("{}-{}: {e}", partition.topic, partition.index));
    match moved {
        Ok(Ok(start)) => Ok(start),
        Ok(Err(e)) => Err(BrokerError::Log {
            partition: format!("{}-{}", partition.topic, partition.index),
            source: LogError::from(e),
        }),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// Whether the replica's log is behind the recorded floor: its start is below it (and it has
/// applied past its start), or segments wholly below its start are still on disk.
fn behind(partition: &Partition, floor: i64) -> bool {
    let start = partition.log_start_offset();
    let applied = partition.log_end_offset();
    let below_floor = floor > start && applied > start;
    let bases = partition.log().segment_base_offsets();
    below_floor || bases.get(1).is_some_and(|&next| next <= start.min(floor))
}

/// Partitions with a `follow_floor` under way, so a slow purge is not started twice.
#[derive(Default)]
pub(crate) struct Following(Mutex<HashSet<(String, i32)>>);

impl Following {
    /// Starts `follow_floor` on its own task for every local replica behind its recorded floor.
    pub(crate) fn follow_all(self: &Arc<Self>, broker: &Arc<Broker>) {
        let Some(cluster) = broker.cluster() else { return };
        for topic in broker.topics() {
            for partition in topic.partitions() {
                if partition.replica().is_none() {
                    continue;
                }
                let Some(floor) = cluster.log_start_floor(&topic.name, partition.index).filter(|&f| f > 0) else {
                    continue;
                };
                if behind(&partition, floor) {
                    self.start(topic.name.to_string(), partition, floor);
                }
            }
        }
    }

    fn start(self: &Arc<Self>, topic: String, partition: Arc<Partition>, floor: i64) {
        let key = (topic, partition.index);
        if !self.0.lock().map(|mut set| set.insert(key.clone())).unwrap_or(false) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = follow_floor(&partition, floor).await {
                tracing::warn!(topic = %key.0, partition = key.1, floor, error = %e, "log start not moved yet");
            }
            if let Ok(mut set) = me.0.lock() {
                set.remove(&key);
            }
        });
    }
}
