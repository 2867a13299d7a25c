//! The group coordinator: every group of this node, the one deadline heap, the offsets
//! store, and the sweeper task. Listeners call these functions; a JoinGroup or SyncGroup
//! that must wait gets a oneshot receiver completed by the state machine.

use super::offsets::{Committed, OffsetStore, GROUP_ID_BYTES_MAX, METADATA_BYTES_MAX, TOPIC_BYTES_MAX};
use super::replicated_offsets::{Lease, ReplicatedOffsets};
use super::state::{Group, GroupState, PROTOCOLS_MAX};
use super::timeouts::{Deadlines, Kind, STALE_ENTRIES_MAX};
use super::GroupError;
use crate::broker::Broker;
use crate::error::{BrokerError, BrokerResult};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Condvar;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch, Notify};

/// Groups held by one coordinator: bounds memory (each group holds members and offsets).
pub const GROUPS_MAX: usize = 10_000;
/// How often the sweeper fsyncs offsets written since the last sync: the window of
/// commits a power loss (not a process crash) can lose when commits are not synced
/// before their acknowledgement (`GroupConfig::sync_commits` off), and of expiry tombstones.
const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Longest the sweeper sleeps with nothing due, so housekeeping (fsync, retention,
/// compaction) still runs.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);

/// Group settings; the defaults are Kafka's.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub session_timeout_min: Duration,
    /// `group.max.session.timeout.ms`.
    pub session_timeout_max: Duration,
    /// `offsets.retention.minutes`: offsets of an empty group expire this long after
    /// the later of the commit and the group becoming empty.
    pub offsets_retention: Duration,
    /// An OffsetCommit is acknowledged only once fsynced (group commit). On when the
    /// broker's default flush policy syncs every write; off, the sweeper fsyncs every
    /// `SYNC_PERIOD` after the acknowledgement.
    pub sync_commits: bool,
    /// `group.initial.rebalance.delay.ms` (KIP-134): the first rebalance of an empty group
    /// waits this long, and again each time a new member joins meanwhile (up to the
    /// rebalance timeout), so consumers started together share one rebalance. Zero: none.
    pub initial_rebalance_delay: Duration,
    /// In a cluster: partitions of `__consumer_offsets` (Kafka `offsets.topic.num.partitions`),
    /// fixed when the topic is created. Kafka's default is 50; each partition is a Raft group
    /// on every replica, so Sluice's default is smaller.
    pub offsets_topic_partitions: u32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout_min: Duration::from_millis(6_000),
            session_timeout_max: Duration::from_millis(1_800_000),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            sync_commits: true,
            initial_rebalance_delay: Duration::from_millis(3_000),
            offsets_topic_partitions: super::offsets_partition::PARTITIONS_DEFAULT,
        }
    }
}

pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// JoinGroup v4+: a new member first gets its id with `MEMBER_ID_REQUIRED`.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member's metadata for the chosen protocol: for the leader only.
    pub members: Vec<JoinedMember>,
    /// The leader already has a valid assignment (static leader rejoined a stable group).
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn failed(error: GroupError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

pub enum JoinReply {
    Now(JoinResult),
    Wait(oneshot::Receiver<JoinResult>),
}

impl JoinReply {
    pub fn error(error: GroupError, member_id: &str) -> JoinReply {
        JoinReply::Now(JoinResult::failed(error, member_id))
    }
}

pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn failed(error: GroupError) -> SyncResult {
        SyncResult { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

pub enum SyncReply {
    Now(SyncResult),
    Wait(oneshot::Receiver<SyncResult>),
}

pub struct CommitRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

/// Lag of one partition: how far the committed offset is behind the log end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub log_end: i64,
    pub lag: i64,
}

pub(super) struct Inner {
    pub(super) groups: HashMap<String, Group>,
    deadlines: Deadlines,
}

pub struct GroupCoordinator {
    config: GroupConfig,
    pub(super) inner: Mutex<Inner>,
    pub(super) store: Mutex<OffsetStore>,
    /// Group commit of the offsets log: true while one caller fsyncs outside the store's
    /// lock; the others wait on `synced` and are usually covered by that fsync.
    syncing: Mutex<bool>,
    synced: Condvar,
    /// Wakes the sweeper when an earlier deadline may have been pushed.
    wake: Notify,
    /// In a cluster: offsets live in `__consumer_offsets` and this node coordinates only the
    /// groups whose partition it leads (`store` then stays unused).
    replicated: OnceLock<Arc<ReplicatedOffsets>>,
    /// Tests: the next fsync of the offsets log fails.
    #[cfg(test)]
    pub(super) fail_next_sync: std::sync::atomic::AtomicBool,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl GroupCoordinator {
    /// Loads committed offsets from `<data_dir>/groups/`; every group with offsets starts Empty.
    pub fn open(data_dir: &Path, config: GroupConfig) -> BrokerResult<GroupCoordinator> {
        let dir = data_dir.join("groups");
        let store = OffsetStore::open(&dir).map_err(|e| BrokerError::Storage(format!("{}: {e}", dir.display())))?;
        let now = now_ms();
        let groups: HashMap<String, Group> =
            store.groups().map(|g| (g.clone(), Group::new(g, now, config.initial_rebalance_delay))).collect();
        tracing::info!(groups = groups.len(), offsets = store.len(), "committed offsets loaded");
        Ok(GroupCoordinator {
            config,
            inner: Mutex::new(Inner { groups, deadlines: Deadlines::default() }),
            store: Mutex::new(store),
            syncing: Mutex::new(false),
            synced: Condvar::new(),
            wake: Notify::new(),
            replicated: OnceLock::new(),
            #[cfg(test)]
            fail_next_sync: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Cluster mode: committed offsets move to `__consumer_offsets` and groups are coordinated
    /// by the leaders of its partitions. Starts the task that loads and drops partitions as
    /// this node's leadership changes. Call once, inside the runtime.
    pub fn replicate_offsets(self: &Arc<Self>, broker: Weak<Broker>, shutdown: watch::Receiver<bool>) {
        let replicated = Arc::new(ReplicatedOffsets::new(broker, self.config.offsets_topic_partitions));
        if self.replicated.set(Arc::clone(&replicated)).is_ok() {
            tokio::spawn(super::offsets_leadership::run(Arc::downgrade(self), replicated, shutdown));
        }
    }

    /// The replicated offsets, in a cluster.
    pub fn replicated(&self) -> Option<&Arc<ReplicatedOffsets>> {
        self.replicated.get()
    }

    /// In a cluster: whether this node coordinates the group now (`NOT_COORDINATOR`,
    /// `COORDINATOR_LOAD_IN_PROGRESS` otherwise). A single node coordinates every group.
    fn lease(&self, group_id: &str) -> Result<Option<Lease>, GroupError> {
        self.replicated.get().map(|r| r.lease(group_id)).transpose()
    }

    /// This node stopped leading an offsets partition: its groups' members go (they find the
    /// new coordinator and rejoin there); waiting joins and syncs are answered `NOT_COORDINATOR`.
    pub(super) fn offsets_partition_lost(&self, index: i32) {
        let Some(replicated) = self.replicated.get() else { return };
        let Ok(mut inner) = self.lock() else { return };
        let before = inner.groups.len();
        inner.groups.retain(|id, group| {
            let kept = replicated.partition_of(id) != index;
            if !kept {
                group.unload();
            }
            kept
        });
        tracing::info!(partition = index, groups = before - inner.groups.len(), "no longer coordinating");
        rebuild_deadlines(&mut inner);
    }

    /// This node loaded an offsets partition: its groups with offsets start Empty, as on a
    /// single node's start.
    pub(super) fn offsets_partition_loaded(&self, groups: Vec<String>) {
        let Ok(mut inner) = self.lock() else { return };
        let now = now_ms();
        for id in groups {
            if inner.groups.len() >= GROUPS_MAX {
                break;
            }
            if !inner.groups.contains_key(&id) {
                inner.groups.insert(id.clone(), Group::new(&id, now, self.config.initial_rebalance_delay));
            }
        }
    }

    pub fn join(&self, req: JoinRequest) -> JoinReply {
        if let Err(e) = valid_group_id(&req.group_id).and_then(|()| self.lease(&req.group_id)) {
            return JoinReply::error(e, &req.member_id);
        }
        if req.session_timeout < self.config.session_timeout_min
            || req.session_timeout > self.config.session_timeout_max
        {
            return JoinReply::error(GroupError::InvalidSessionTimeout, &req.member_id);
        }
        if req.protocols.len() > PROTOCOLS_MAX {
            return JoinReply::error(GroupError::InconsistentGroupProtocol, &req.member_id);
        }
        let Ok(mut inner) = self.lock() else { return JoinReply::error(GroupError::CoordinatorNotAvailable, "") };
        let Inner { groups, deadlines } = &mut *inner;
        if !groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return JoinReply::error(GroupError::UnknownMemberId, &req.member_id);
            }
            if groups.len() >= GROUPS_MAX {
                return JoinReply::error(GroupError::CoordinatorNotAvailable, "");
            }
            groups
                .insert(req.group_id.clone(), Group::new(&req.group_id, now_ms(), self.config.initial_rebalance_delay));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return JoinReply::error(GroupError::CoordinatorNotAvailable, "");
        };
        let reply = group.join(req, Instant::now(), deadlines);
        self.after_change(&mut inner);
        reply
    }

    pub fn sync(&self, req: SyncRequest) -> SyncReply {
        let failed = |e| SyncReply::Now(SyncResult::failed(e));
        if let Err(e) = valid_group_id(&req.group_id).and_then(|()| self.lease(&req.group_id)) {
            return failed(e);
        }
        let Ok(mut inner) = self.lock() else { return failed(GroupError::CoordinatorNotAvailable) };
        let Some(group) = inner.groups.get_mut(&req.group_id) else { return failed(GroupError::UnknownMemberId) };
        let reply = group.sync(req, Instant::now());
        self.after_change(&mut inner);
        reply
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        valid_group_id(group_id)?;
        self.lease(group_id)?;
        let mut inner = self.lock()?;
        let group = inner.groups.get_mut(group_id).ok_or(GroupError::UnknownMemberId)?;
        group.heartbeat(member_id, instance_id, generation, Instant::now())
    }

    /// LeaveGroup for one or more members: the outer error is for the whole group.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        valid_group_id(group_id)?;
        self.lease(group_id)?;
        let mut inner = self.lock()?;
        let Inner { groups, deadlines } = &mut *inner;
        let Some(group) = groups.get_mut(group_id) else {
            // As Kafka: no group-level error, each member is unknown.
            return Ok(vec![Err(GroupError::UnknownMemberId); members.len()]);
        };
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let now = Instant::now();
        let results =
            members.iter().map(|(id, instance)| group.leave(id, instance.as_deref(), now, deadlines)).collect();
        self.after_change(&mut inner);
        Ok(results)
    }

    /// OffsetCommit. The listener has already checked each partition exists; the outer
    /// error refuses the whole request (membership), the inner ones single offsets.
    /// Blocking: it writes, and with `sync_commits` waits for the fsync (group commit), so
    /// listeners call it off the async runtime.
    pub fn commit_offsets(
        &self,
        req: &CommitRequest,
        offsets: &[OffsetToCommit],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        valid_group_id(&req.group_id)?;
        let lease = self.lease(&req.group_id)?;
        {
            let mut inner = self.lock()?;
            if !inner.groups.contains_key(&req.group_id) {
                if req.generation >= 0 {
                    return Err(GroupError::IllegalGeneration);
                }
                if inner.groups.len() >= GROUPS_MAX {
                    return Err(GroupError::CoordinatorNotAvailable);
                }
                inner.groups.insert(
                    req.group_id.clone(),
                    Group::new(&req.group_id, now_ms(), self.config.initial_rebalance_delay),
                );
            }
            let group = inner.groups.get_mut(&req.group_id).ok_or(GroupError::CoordinatorNotAvailable)?;
            group.check_commit(&req.member_id, req.instance_id.as_deref(), req.generation, Instant::now())?;
        }
        let ts = now_ms();
        let mut results = Vec::with_capacity(offsets.len());
        let mut entries = Vec::with_capacity(offsets.len());
        for o in offsets {
            if o.topic.is_empty() || o.topic.len() > TOPIC_BYTES_MAX {
                results.push(Err(GroupError::UnknownTopicOrPartition));
                continue;
            }
            if o.metadata.as_ref().is_some_and(|m| m.len() > METADATA_BYTES_MAX) {
                results.push(Err(GroupError::OffsetMetadataTooLarge));
                continue;
            }
            results.push(Ok(()));
            let committed = Committed {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: o.metadata.clone(),
                commit_ts_ms: ts,
            };
            entries.push((o.topic.clone(), o.partition, committed));
        }
        if let (Some(lease), Some(replicated)) = (lease, self.replicated.get()) {
            let writes =
                entries.into_iter().map(|(topic, partition, c)| (offset_key(&req.group_id, topic, partition), Some(c)));
            if let Err(e) = replicated.write_blocking(lease, writes.collect()) {
                return Ok(results.into_iter().map(|r| r.and(Err(e))).collect());
            }
        } else if !entries.is_empty() {
            let written = self.store.lock().map_err(|_| GroupError::Storage)?.commit(&req.group_id, &entries);
            let durable = match written {
                Ok(seq) if self.config.sync_commits => self.sync_through(seq),
                other => other.map(|_| ()),
            };
            if let Err(e) = durable {
                tracing::warn!(group = %req.group_id, error = %e, "offset commit failed");
                return Ok(results.into_iter().map(|r| r.and(Err(GroupError::Storage))).collect());
            }
        }
        Ok(results)
    }

    /// The topic was deleted: every group's committed offsets of it go, durably (Kafka
    /// does the same), so a re-created topic is read from its start.
    pub fn topic_deleted(&self, topic: &str) -> Result<usize, GroupError> {
        if let Some(replicated) = self.replicated.get() {
            return Ok(super::offsets_leadership::topic_deleted(replicated, topic));
        }
        let deleted = {
            let mut store = self.store.lock().map_err(|_| GroupError::Storage)?;
            store.delete_topic(topic).map(|n| (n, store.written_seq()))
        };
        let (removed, seq) = deleted.map_err(|e| {
            tracing::error!(topic, error = %e, "cannot delete committed offsets of a deleted topic");
            GroupError::Storage
        })?;
        if removed > 0 {
            self.sync_through(seq).map_err(|_| GroupError::Storage)?;
            tracing::info!(topic, offsets = removed, "committed offsets of deleted topic removed");
        }
        Ok(removed)
    }

    /// Waits until every offsets-log write through `seq` is fsynced. The first caller
    /// fsyncs (outside the store's lock); callers arriving meanwhile wait and are usually
    /// covered by it. Fails once a fsync has failed: the store is then poisoned.
    fn sync_through(&self, seq: u64) -> std::io::Result<()> {
        let lock_error = || std::io::Error::other("offsets log lock poisoned");
        loop {
            if self.store.lock().map_err(|_| lock_error())?.is_synced_through(seq)? {
                return Ok(());
            }
            let mut syncing = self.syncing.lock().map_err(|_| lock_error())?;
            if *syncing {
                drop(self.synced.wait(syncing).map_err(|_| lock_error())?);
                continue;
            }
            *syncing = true;
            drop(syncing);
            let result = self.sync_once();
            *self.syncing.lock().map_err(|_| lock_error())? = false;
            self.synced.notify_all();
            result?;
        }
    }

    /// One fsync of everything written so far, outside the store's lock; a failure
    /// poisons the store (an fsync is never retried).
    fn sync_once(&self) -> std::io::Result<()> {
        let lock_error = || std::io::Error::other("offsets log lock poisoned");
        let Some(target) = self.store.lock().map_err(|_| lock_error())?.sync_target()? else { return Ok(()) };
        let result = self.fsync(&target.file);
        let mut store = self.store.lock().map_err(|_| lock_error())?;
        match result {
            Ok(()) => {
                store.synced(target.through_seq);
                Ok(())
            }
            Err(e) => {
                store.sync_failed(&e);
                Err(e)
            }
        }
    }

    fn fsync(&self, file: &std::fs::File) -> std::io::Result<()> {
        #[cfg(test)]
        if self.fail_next_sync.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        file.sync_data()
    }

    /// OffsetFetch: `None` partitions means every committed offset of the group.
    /// Bytes the offsets log cut from a torn or corrupt tail at start-up.
    pub fn offsets_truncated_at_open(&self) -> u64 {
        self.store.lock().map(|store| store.truncated_at_open()).unwrap_or(0)
    }

    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<(String, i32, Option<Committed>)>, GroupError> {
        valid_group_id(group_id)?;
        if let (Some(lease), Some(replicated)) = (self.lease(group_id)?, self.replicated.get()) {
            return match partitions {
                Some(list) => {
                    list.iter().map(|(t, p)| Ok((t.clone(), *p, replicated.get(lease, group_id, t, *p)?))).collect()
                }
                None => Ok(replicated.all(lease, group_id)?.into_iter().map(|(t, p, c)| (t, p, Some(c))).collect()),
            };
        }
        let store = self.store.lock().map_err(|_| GroupError::Storage)?;
        Ok(match partitions {
            Some(list) => list.iter().map(|(t, p)| (t.clone(), *p, store.get(group_id, t, *p).cloned())).collect(),
            None => store.all(group_id).into_iter().map(|(t, p, c)| (t, p, Some(c))).collect(),
        })
    }

    pub fn describe(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        self.lease(group_id)?;
        let inner = self.lock()?;
        let Some(g) = inner.groups.get(group_id) else {
            return Ok(GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                generation: -1,
                members: Vec::new(),
            });
        };
        let protocol = g.protocol.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol),
                assignment: if g.state == GroupState::Stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect();
        Ok(GroupDescription {
            group_id: group_id.to_string(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if g.state == GroupState::Stable { protocol } else { String::new() },
            generation: g.generation,
            members,
        })
    }

    pub fn list(&self) -> Vec<GroupListing> {
        let Ok(inner) = self.lock() else { return Vec::new() };
        let mut all: Vec<GroupListing> = inner
            .groups
            .values()
            .map(|g| GroupListing {
                group_id: g.id.to_string(),
                protocol_type: g.protocol_type.clone().unwrap_or_else(|| "consumer".to_string()),
                state: g.state,
            })
            .collect();
        all.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        all
    }

    /// DeleteGroups for one group: only an empty group (no members) can be deleted.
    pub fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        valid_group_id(group_id)?;
        let lease = self.lease(group_id)?;
        let mut inner = self.lock()?;
        let group = inner.groups.get(group_id).ok_or(GroupError::GroupIdNotFound)?;
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        if group.state != GroupState::Empty {
            return Err(GroupError::NonEmptyGroup);
        }
        if let (Some(lease), Some(replicated)) = (lease, self.replicated.get()) {
            // Tombstones for every offset, as Kafka writes; the group is gone once committed.
            drop(inner);
            let doomed = replicated.all(lease, group_id)?;
            let writes = doomed.into_iter().map(|(t, p, _)| (offset_key(group_id, t, p), None)).collect();
            replicated.write_blocking(lease, writes)?;
            self.lock()?.groups.remove(group_id);
            return Ok(());
        }
        let mut store = self.store.lock().map_err(|_| GroupError::Storage)?;
        if store.has_offsets(group_id) {
            store.delete_group(group_id).map_err(|_| GroupError::Storage)?;
        }
        inner.groups.remove(group_id);
        Ok(())
    }

    /// OffsetDelete: refused per partition while active members subscribe to the topic.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        valid_group_id(group_id)?;
        let lease = self.lease(group_id)?;
        let inner = self.lock()?;
        let group = inner.groups.get(group_id).ok_or(GroupError::GroupIdNotFound)?;
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let subscribed = if group.state == GroupState::Empty { Vec::new() } else { group.subscribed_topics() };
        let mut results = Vec::with_capacity(partitions.len());
        let mut deletable = Vec::new();
        for (topic, partition) in partitions {
            if topic.is_empty() || topic.len() > TOPIC_BYTES_MAX {
                results.push(Err(GroupError::UnknownTopicOrPartition));
            } else if subscribed.contains(topic) {
                results.push(Err(GroupError::GroupSubscribedToTopic));
            } else {
                results.push(Ok(()));
                deletable.push((topic.clone(), *partition));
            }
        }
        drop(inner);
        if let (Some(lease), Some(replicated)) = (lease, self.replicated.get()) {
            let writes = deletable.into_iter().map(|(t, p)| (offset_key(group_id, t, p), None)).collect();
            replicated.write_blocking(lease, writes)?;
        } else if !deletable.is_empty() {
            let mut store = self.store.lock().map_err(|_| GroupError::Storage)?;
            store.delete(group_id, &deletable).map_err(|_| GroupError::Storage)?;
        }
        Ok(results)
    }

    /// Committed offset against log end for every partition the group committed.
    pub fn lag(&self, broker: &Broker, group_id: &str) -> Vec<PartitionLag> {
        let Ok(committed) = self.fetch_offsets(group_id, None) else { return Vec::new() };
        committed
            .into_iter()
            .filter_map(|(topic, partition, c)| {
                let c = c?;
                let log_end = broker.partition(&topic, partition).ok()?.log_end_offset();
                Some(PartitionLag { topic, partition, committed: c.offset, log_end, lag: (log_end - c.offset).max(0) })
            })
            .collect()
    }

    /// fsyncs offsets written since the last sync (also run on shutdown). Blocking.
    pub fn flush(&self) {
        let Some(seq) = self.store.lock().ok().map(|s| s.written_seq()) else { return };
        if let Err(e) = self.sync_through(seq) {
            tracing::debug!(error = %e, "offsets log not synced");
        }
    }

    /// The sweeper: fires due deadlines, fsyncs offsets, expires offsets of empty
    /// groups, compacts the offsets log. One task per coordinator, stopped by `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_sync = Instant::now();
        let mut last_retention = Instant::now();
        let retention_check =
            (self.config.offsets_retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let next = self.lock().ok().and_then(|i| i.deadlines.next_at());
            let wake_at =
                next.map_or(Instant::now() + HOUSEKEEPING_PERIOD, |n| n.min(Instant::now() + HOUSEKEEPING_PERIOD));
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                let me = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || me.flush()).await;
                return;
            }
            self.fire_due(Instant::now());
            if last_sync.elapsed() >= SYNC_PERIOD {
                last_sync = Instant::now();
                let me = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || me.flush()).await;
            }
            if last_retention.elapsed() >= retention_check {
                last_retention = Instant::now();
                let me = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || me.housekeeping(now_ms())).await;
            }
        }
    }

    /// Fires every deadline due at `now`.
    pub fn fire_due(&self, now: Instant) {
        let Ok(mut inner) = self.lock() else { return };
        let Inner { groups, deadlines } = &mut *inner;
        let due = deadlines.pop_due(now);
        if due.is_empty() {
            // Nothing fired: waking the sweeper again would make it spin on an idle broker.
            return;
        }
        for d in due {
            let Some(group) = groups.get_mut(&*d.group) else { continue };
            match &d.kind {
                Kind::Session(member) => {
                    group.session_expired(member, now, deadlines);
                }
                Kind::Pending(member) => group.pending_expired(member, d.at, now, deadlines),
                Kind::Rebalance(generation) => group.rebalance_expired(*generation, d.at, now, deadlines),
            }
        }
        // No wake-up here: the sweeper itself is the caller and re-reads the next deadline.
        // (Notifying would leave a permit that makes its next wait return at once: a spin.)
        bound_heap(&mut inner);
    }

    /// Expires offsets of groups empty for longer than the retention, drops empty groups
    /// without offsets, and compacts the offsets log when it is mostly garbage. Blocking;
    /// the compaction's copy runs with no lock held, so heartbeats and commits go on.
    pub fn housekeeping(&self, now_ms: i64) {
        self.expire_offsets(now_ms);
        self.compact();
    }

    fn expire_offsets(&self, now_ms: i64) {
        if let Some(replicated) = self.replicated.get() {
            self.expire_replicated(replicated, now_ms);
            return;
        }
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        let Ok(mut inner) = self.lock() else { return };
        let Ok(mut store) = self.store.lock() else { return };
        let mut remove_groups = Vec::new();
        for (id, group) in &inner.groups {
            if group.state != GroupState::Empty {
                continue;
            }
            let since = group.empty_since_ms.unwrap_or(0);
            let expired: Vec<(String, i32)> = store
                .all(id)
                .into_iter()
                .filter(|(_, _, c)| now_ms - c.commit_ts_ms.max(since) >= retention_ms)
                .map(|(t, p, _)| (t, p))
                .collect();
            if !expired.is_empty() {
                tracing::info!(group = %id, partitions = expired.len(), "committed offsets expired");
                // Tombstones only reach the page cache here; the sweeper's fsync follows.
                if let Err(e) = store.delete(id, &expired) {
                    tracing::error!(group = %id, error = %e, "offset expiry failed");
                }
            }
            if !store.has_offsets(id) {
                remove_groups.push(id.clone());
            }
        }
        drop(store);
        for id in remove_groups {
            inner.groups.remove(&id);
        }
    }

    /// `expire_offsets` in a cluster: tombstones through each partition this node leads.
    fn expire_replicated(&self, replicated: &ReplicatedOffsets, now_ms: i64) {
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        for lease in replicated.loaded() {
            let empty_since: HashMap<String, i64> = match self.lock() {
                Ok(inner) => inner
                    .groups
                    .values()
                    .filter(|g| g.state == GroupState::Empty)
                    .map(|g| (g.id.to_string(), g.empty_since_ms.unwrap_or(0)))
                    .collect(),
                Err(_) => return,
            };
            let expired: Vec<_> = replicated
                .offsets_in(lease)
                .into_iter()
                .filter(|(g, _, _, c)| {
                    empty_since.get(g).is_some_and(|since| now_ms - c.commit_ts_ms.max(*since) >= retention_ms)
                })
                .map(|(g, t, p, _)| (offset_key(&g, t, p), None))
                .collect();
            if expired.is_empty() {
                continue;
            }
            tracing::info!(partition = lease.partition, offsets = expired.len(), "committed offsets expired");
            if let Err(e) = replicated.write_blocking(lease, expired) {
                tracing::warn!(partition = lease.partition, error = %e, "offset expiry not written");
            }
        }
        // Empty groups left without offsets go, as on a single node.
        let Ok(mut inner) = self.lock() else { return };
        inner.groups.retain(|id, g| {
            g.state != GroupState::Empty
                || replicated.lease(id).and_then(|lease| replicated.all(lease, id)).map_or(true, |o| !o.is_empty())
        });
    }

    /// Compaction in three steps: snapshot under the store's lock, write and fsync the new
    /// file with no lock, swap under the store's lock (carrying over what was appended
    /// meanwhile). The coordinator's own lock is never taken.
    fn compact(&self) {
        let Some(plan) = self.store.lock().ok().and_then(|mut s| s.plan_compaction()) else { return };
        let written = plan.write();
        let Ok(mut store) = self.store.lock() else { return };
        let result = match written {
            Ok(()) => store.finish_compaction(plan),
            Err(e) => {
                store.abandon_compaction(&plan);
                Err(e)
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "offsets log compaction failed");
        }
    }

    /// Entries in the deadline heap (live and stale): for tests of its bound.
    pub fn deadline_entries(&self) -> usize {
        self.lock().map(|i| i.deadlines.len()).unwrap_or(0)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, GroupError> {
        self.inner.lock().map_err(|_| GroupError::CoordinatorNotAvailable)
    }

    /// After a change from a request: keep the heap bounded and let the sweeper re-arm
    /// its timer, since the change may have pushed an earlier deadline.
    fn after_change(&self, inner: &mut Inner) {
        bound_heap(inner);
        self.wake.notify_one();
    }
}

/// Rebuilds the heap from live state when stale entries pile up.
fn bound_heap(inner: &mut Inner) {
    let live: usize = inner.groups.values().map(|g| g.members.len() + g.pending.len() + 2).sum();
    if inner.deadlines.len() > live + STALE_ENTRIES_MAX {
        rebuild_deadlines(inner);
    }
}

fn rebuild_deadlines(inner: &mut Inner) {
    let Inner { groups, deadlines } = inner;
    deadlines.clear();
    for g in groups.values() {
        for m in g.members.values() {
            deadlines.push(m.session_deadline, &g.id, Kind::Session(m.id.clone()));
        }
        for (id, at) in &g.pending {
            deadlines.push(*at, &g.id, Kind::Pending(id.clone()));
        }
        if let Some(at) = g.rebalance_deadline {
            deadlines.push(at, &g.id, Kind::Rebalance(g.generation));
        }
    }
}

fn offset_key(group: &str, topic: String, partition: i32) -> super::offsets_record::OffsetKey {
    super::offsets_record::OffsetKey { group: group.to_string(), topic, partition }
}

fn valid_group_id(id: &str) -> Result<(), GroupError> {
    if id.is_empty() || id.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    Ok(())
}
