//! Committed offsets in a cluster: records of the internal `__consumer_offsets` topic, one
//! partition per group (`offsets_partition`), written through the partition's Raft group like
//! a Produce with acks=all and acknowledged once a majority holds them. The leader of a
//! partition is the coordinator of its groups: it reads the partition from its start when it
//! becomes leader (`load`), serves their offsets from memory while it leads in that term, and
//! forgets them when it stops leading. Each partition's offsets are tagged with the Raft term
//! (Kafka's leader epoch) they were loaded in, so a node that lost and regained leadership
//! never serves what it knew from an older term.

use super::offsets::{Committed, OFFSETS_MAX};
use super::offsets_partition::{partition_of, OFFSETS_TOPIC};
use super::offsets_record::{decode_key, decode_value, encode_key, encode_value, OffsetKey};
use super::GroupError;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::{Durability, Partition};
use bytes::Bytes;
use kafka_protocol::records::Compression;
use sluice_records::convert::{encode_batch, new_record, read_v2_records};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest an offsets write waits for its majority commit: a partition that lost its majority
/// must not hold a request (and a blocking thread) for ever; the client retries.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a new leader waits for a majority to confirm it, and again for its partition's
/// visible end to reach what its log holds, before loading.
const LOAD_CATCH_UP: Duration = Duration::from_secs(5);
/// Bytes read from the partition at a time while loading.
const LOAD_READ_BYTES: usize = 1 << 20;
/// Largest offsets partition a load reads, in reads of `LOAD_READ_BYTES`: a bound on the loop
/// (replicated compaction does not run yet, so the partition only grows; 64 GiB is years of
/// commits for any realistic set of groups).
const LOAD_READS_MAX: usize = 65_536;

/// group → (topic, partition) → the committed offset and the log offset of its record (a
/// later record wins, whatever order the commits' replies arrive in).
type GroupOffsets = HashMap<String, HashMap<(String, i32), (Committed, i64)>>;

/// What this node holds of one offsets partition.
enum Held {
    /// Leading in `epoch`; the partition is being read.
    Loading { epoch: i32 },
    /// Leading in `epoch`; every committed record of the partition is in `offsets`.
    Ready { epoch: i32, offsets: GroupOffsets },
}

/// A group's coordinator check passed: its offsets partition and the term it is led in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub partition: i32,
    pub epoch: i32,
}

pub struct ReplicatedOffsets {
    broker: Weak<Broker>,
    partitions: u32,
    held: Mutex<HashMap<i32, Held>>,
    /// Wakes the leadership task (`offsets_leadership`) when a request saw a change.
    pub(super) changed: Notify,
}

/// One offset to write: a commit, or a tombstone (`None`).
pub type OffsetWrite = (OffsetKey, Option<Committed>);

impl ReplicatedOffsets {
    pub fn new(broker: Weak<Broker>, partitions: u32) -> ReplicatedOffsets {
        ReplicatedOffsets { broker, partitions, held: Mutex::new(HashMap::new()), changed: Notify::new() }
    }

    /// The offsets partition of a group: by the topic's own partition count once it exists
    /// (the same on every node, whatever each was started with), the setting before.
    pub fn partition_of(&self, group_id: &str) -> i32 {
        partition_of(group_id, self.partition_count())
    }

    fn partition_count(&self) -> u32 {
        let existing = self.broker.upgrade().and_then(|b| b.topic(OFFSETS_TOPIC)).map(|t| t.partition_count());
        existing.unwrap_or(self.partitions)
    }

    fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.broker.upgrade()?.partition(OFFSETS_TOPIC, index).ok()
    }

    /// Whether this node coordinates the group now: it leads the group's offsets partition and
    /// has loaded it in the current term. `NotCoordinator` elsewhere (clients find the
    /// coordinator again), `CoordinatorLoadInProgress` while loading.
    pub fn lease(&self, group_id: &str) -> Result<Lease, GroupError> {
        let index = self.partition_of(group_id);
        let Some(partition) = self.partition(index) else { return Err(GroupError::NotCoordinator) };
        let role = partition.role(-1);
        let held = self.lock()?;
        match held.get(&index) {
            Some(Held::Ready { epoch, .. }) if role.is_leader && *epoch == role.epoch => {
                Ok(Lease { partition: index, epoch: role.epoch })
            }
            state => {
                if role.is_leader || state.is_some() {
                    // Leadership changed since the leadership task last looked.
                    self.changed.notify_one();
                }
                Err(if role.is_leader { GroupError::CoordinatorLoadInProgress } else { GroupError::NotCoordinator })
            }
        }
    }

    /// The committed offset of one partition of a group this node coordinates.
    pub fn get(&self, lease: Lease, group: &str, topic: &str, partition: i32) -> Result<Option<Committed>, GroupError> {
        self.with_ready(lease, |offsets| {
            offsets.get(group).and_then(|m| m.get(&(topic.to_string(), partition))).map(|(c, _)| c.clone())
        })
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn all(&self, lease: Lease, group: &str) -> Result<Vec<(String, i32, Committed)>, GroupError> {
        self.with_ready(lease, |offsets| {
            let mut all: Vec<_> = offsets
                .get(group)
                .map(|m| m.iter().map(|((t, p), (c, _))| (t.clone(), *p, c.clone())).collect())
                .unwrap_or_default();
            all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            all
        })
    }

    /// Groups with offsets in a partition this node has loaded (for expiry and topic deletion).
    pub fn loaded(&self) -> Vec<Lease> {
        let Ok(held) = self.lock() else { return Vec::new() };
        held.iter()
            .filter_map(|(p, h)| match h {
                Held::Ready { epoch, .. } => Some(Lease { partition: *p, epoch: *epoch }),
                Held::Loading { .. } => None,
            })
            .collect()
    }

    /// Every (group, topic, partition) with an offset in a loaded partition, and its offset.
    pub fn offsets_in(&self, lease: Lease) -> Vec<(String, String, i32, Committed)> {
        self.with_ready(lease, |offsets| {
            offsets
                .iter()
                .flat_map(|(g, m)| m.iter().map(move |((t, p), (c, _))| (g.clone(), t.clone(), *p, c.clone())))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Writes commits and tombstones of one group's partition through its Raft group and, once
    /// a majority committed them, applies them here (if this node still leads in that term).
    pub async fn write(&self, lease: Lease, writes: Vec<OffsetWrite>) -> Result<(), GroupError> {
        if writes.is_empty() {
            return Ok(());
        }
        let new =
            self.with_ready(lease, |offsets| writes.iter().filter(|(k, c)| c.is_some() && !has(offsets, k)).count())?;
        if new > 0 && self.live()? + new > OFFSETS_MAX {
            return Err(GroupError::Storage);
        }
        let partition = self.partition(lease.partition).ok_or(GroupError::NotCoordinator)?;
        let batch = encode(&writes)?;
        let appended = tokio::time::timeout(WRITE_TIMEOUT, partition.append(batch, Durability::Committed)).await;
        let outcome = appended.map_err(|_| GroupError::CoordinatorNotAvailable)?.map_err(|e| {
            tracing::debug!(partition = lease.partition, error = %e, "offsets write not committed");
            write_error(&e)
        })?;
        let mut held = self.lock()?;
        if let Some(Held::Ready { epoch, offsets }) = held.get_mut(&lease.partition) {
            if *epoch == lease.epoch {
                for (i, (key, value)) in writes.into_iter().enumerate() {
                    apply(offsets, key, value, outcome.base_offset + i as i64);
                }
            }
        }
        Ok(())
    }

    /// `write` from a blocking context (the blocking pool, or a runtime worker through
    /// `block_in_place`), as the coordinator's other offset writes are.
    pub fn write_blocking(&self, lease: Lease, writes: Vec<OffsetWrite>) -> Result<(), GroupError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| GroupError::CoordinatorNotAvailable)?;
        tokio::task::block_in_place(|| handle.block_on(self.write(lease, writes)))
    }

    /// The leadership task's view: which partitions this node leads now, in which term.
    pub(super) fn leadership(&self) -> Vec<(i32, Option<i32>)> {
        let count = i32::try_from(self.partition_count()).unwrap_or(i32::MAX);
        (0..count)
            .map(|index| {
                let role = self.partition(index).map(|p| p.role(-1));
                (index, role.filter(|r| r.is_leader).map(|r| r.epoch))
            })
            .collect()
    }

    /// The term a partition is held (loading or loaded) in, if any.
    pub(super) fn held_epoch(&self, index: i32) -> Option<i32> {
        let held = self.lock().ok()?;
        held.get(&index).map(|h| match h {
            Held::Loading { epoch } | Held::Ready { epoch, .. } => *epoch,
        })
    }

    /// Forgets a partition (this node stopped leading it, or leads it in a newer term).
    pub(super) fn forget(&self, index: i32) -> bool {
        self.lock().map(|mut held| held.remove(&index).is_some()).unwrap_or(false)
    }

    /// Confirms this node's leadership with a majority, then waits until the partition shows
    /// everything its log holds. Called once this node leads in the current term with
    /// everything in its log at the term's start applied (so all of it committed, and only
    /// this node would add to it, which it does not before loading); the applied commit point
    /// still reaches the partition's visible end through a task of its own, which may not
    /// have run yet. False if either did not happen within `LOAD_CATCH_UP`.
    pub(super) async fn caught_up(&self, index: i32) -> bool {
        let Some(partition) = self.partition(index) else { return false };
        // A restarted node may lead in a term the others have left: its log may then miss
        // commits made since, so it loads only once a majority confirmed it.
        let Some(replica) = partition.replica() else { return false };
        match tokio::time::timeout(LOAD_CATCH_UP, replica.confirm_leadership()).await {
            Ok(true) => {}
            _ => return false,
        }
        let target = partition.written_end_offset();
        let mut visible = partition.subscribe();
        let reached = tokio::time::timeout(LOAD_CATCH_UP, visible.wait_for(|end| *end >= target)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Reads the partition from its start (blocking: disk reads) and holds its offsets as of
    /// `epoch`; answers the groups found. The caller checked that this node leads in `epoch`
    /// and has applied everything committed before it, so the committed end read here covers
    /// every earlier commit and no later one exists (commits wait for the load).
    pub(super) fn load(&self, index: i32, epoch: i32) -> Result<Vec<String>, GroupError> {
        self.lock()?.insert(index, Held::Loading { epoch });
        let partition = self.partition(index).ok_or(GroupError::NotCoordinator)?;
        let offsets = read_partition(&partition).map_err(|e| {
            tracing::error!(partition = index, error = %e, "cannot load committed offsets");
            GroupError::Storage
        })?;
        let groups: Vec<String> = offsets.keys().cloned().collect();
        let count: usize = offsets.values().map(HashMap::len).sum();
        let mut held = self.lock()?;
        match held.get(&index) {
            Some(Held::Loading { epoch: e }) if *e == epoch => {
                held.insert(index, Held::Ready { epoch, offsets });
                tracing::info!(
                    partition = index,
                    epoch,
                    groups = groups.len(),
                    offsets = count,
                    "committed offsets loaded"
                );
                Ok(groups)
            }
            _ => Err(GroupError::NotCoordinator),
        }
    }

    fn live(&self) -> Result<usize, GroupError> {
        let held = self.lock()?;
        Ok(held
            .values()
            .map(|h| match h {
                Held::Ready { offsets, .. } => offsets.values().map(HashMap::len).sum(),
                Held::Loading { .. } => 0,
            })
            .sum())
    }

    fn with_ready<T>(&self, lease: Lease, f: impl FnOnce(&GroupOffsets) -> T) -> Result<T, GroupError> {
        let held = self.lock()?;
        match held.get(&lease.partition) {
            Some(Held::Ready { epoch, offsets }) if *epoch == lease.epoch => Ok(f(offsets)),
            Some(Held::Loading { .. }) => Err(GroupError::CoordinatorLoadInProgress),
            _ => Err(GroupError::NotCoordinator),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<i32, Held>>, GroupError> {
        self.held.lock().map_err(|_| GroupError::CoordinatorNotAvailable)
    }
}

/// Kafka's mapping of a failed offsets append (`GroupMetadataManager.storeOffsets`): a lost
/// leadership or a failing disk sends clients to find the coordinator again; a lost majority is
/// a coordinator not available for now.
fn write_error(e: &BrokerError) -> GroupError {
    match e {
        BrokerError::NotLeader { .. } | BrokerError::Storage(_) | BrokerError::Log { .. } => GroupError::NotCoordinator,
        BrokerError::ReplicationFailed(_) | BrokerError::UnknownTopicOrPartition => GroupError::CoordinatorNotAvailable,
        _ => GroupError::Storage,
    }
}

fn has(offsets: &GroupOffsets, key: &OffsetKey) -> bool {
    offsets.get(&key.group).is_some_and(|m| m.contains_key(&(key.topic.clone(), key.partition)))
}

/// Applies one record at `log_offset`; an older record than what is held changes nothing.
fn apply(offsets: &mut GroupOffsets, key: OffsetKey, value: Option<Committed>, log_offset: i64) {
    let slot = (key.topic, key.partition);
    match value {
        Some(c) => {
            let map = offsets.entry(key.group).or_default();
            if map.get(&slot).is_none_or(|(_, at)| *at < log_offset) {
                map.insert(slot, (c, log_offset));
            }
        }
        None => {
            if let Some(map) = offsets.get_mut(&key.group) {
                if map.get(&slot).is_some_and(|(_, at)| *at < log_offset) {
                    map.remove(&slot);
                }
                if map.is_empty() {
                    offsets.remove(&key.group);
                }
            }
        }
    }
}

/// One uncompressed v2 batch of the writes, keys and values in Kafka's layout.
fn encode(writes: &[OffsetWrite]) -> Result<Vec<u8>, GroupError> {
    let now = super::coordinator::now_ms();
    let records: Vec<_> = writes
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            new_record(i as i64, now, Some(encode_key(key)), value.as_ref().map(encode_value), Vec::new())
        })
        .collect();
    encode_batch(&records, Compression::None).map_err(|e| {
        tracing::error!(error = %e, "cannot encode committed offsets");
        GroupError::Storage
    })
}

/// Every committed record of the partition, from its log start to its committed end.
fn read_partition(partition: &Partition) -> Result<GroupOffsets, BrokerError> {
    let mut offsets = GroupOffsets::new();
    let end = partition.log_end_offset();
    let mut next = partition.log_start_offset();
    for _ in 0..LOAD_READS_MAX {
        if next >= end {
            return Ok(offsets);
        }
        let read = partition.read(next, LOAD_READ_BYTES)?;
        let before = next;
        for batch in read_v2_records(&read.bytes, next) {
            let Ok(batch) = batch else { break };
            next = next.max(batch.last_offset + 1);
            let records = batch.records.unwrap_or_else(|e| {
                tracing::warn!(base_offset = batch.base_offset, error = %e, "skipping unreadable offsets batch");
                Vec::new()
            });
            for record in records {
                let Some(key) = record.key.as_deref().and_then(decode_key) else { continue };
                let value: Option<Bytes> = record.value;
                let committed = match value {
                    Some(v) => match decode_value(&v) {
                        Some(c) => Some(c),
                        None => continue,
                    },
                    None => None,
                };
                apply(&mut offsets, key, committed, record.offset);
            }
        }
        if next == before {
            return Err(BrokerError::Storage(format!(
                "{OFFSETS_TOPIC}-{}: no progress reading at offset {next}",
                partition.index
            )));
        }
    }
    Err(BrokerError::Storage(format!("{OFFSETS_TOPIC}-{}: too large to load", partition.index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, partition: i32) -> OffsetKey {
        OffsetKey { group: "g".into(), topic: topic.into(), partition }
    }

    fn at(offset: i64) -> Option<Committed> {
        Some(Committed { offset, leader_epoch: -1, metadata: None, commit_ts_ms: 0 })
    }

    fn held(offsets: &GroupOffsets, topic: &str, partition: i32) -> Option<i64> {
        offsets.get("g")?.get(&(topic.to_string(), partition)).map(|(c, _)| c.offset)
    }

    #[test]
    fn the_later_record_wins_whatever_order_replies_arrive_in() {
        let mut offsets = GroupOffsets::new();
        apply(&mut offsets, key("t", 0), at(20), 11);
        apply(&mut offsets, key("t", 0), at(10), 10);
        assert_eq!(held(&offsets, "t", 0), Some(20), "an older record's late reply changes nothing");
        apply(&mut offsets, key("t", 0), None, 9);
        assert_eq!(held(&offsets, "t", 0), Some(20), "nor does an older tombstone");
        apply(&mut offsets, key("t", 0), None, 12);
        assert_eq!(held(&offsets, "t", 0), None, "a later tombstone deletes");
        assert!(offsets.is_empty(), "a group without offsets is gone");
        apply(&mut offsets, key("t", 1), at(5), 13);
        assert_eq!(held(&offsets, "t", 1), Some(5));
    }

    #[test]
    fn writes_encode_as_one_batch_of_keyed_records() {
        let writes = vec![(key("t", 0), at(3)), (key("t", 1), None)];
        let batch = encode(&writes).expect("encode");
        let records: Vec<_> =
            read_v2_records(&batch, 0).flat_map(|b| b.expect("batch").records.expect("records")).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref().and_then(decode_key), Some(key("t", 0)));
        assert_eq!(records[0].value.as_deref().and_then(decode_value).map(|c| c.offset), Some(3));
        assert_eq!(records[1].value, None, "a tombstone has a null value");
    }
}
