//! Moving a partition's replicas (the reassignment engine). The metadata group records where
//! a partition should go (`ReassignPartition` sets `target_replicas`); the move itself is the
//! partition group's Raft membership change, driven by that group's leader:
//!
//! 1. every target node starts the partition's group uninitialized (`reconcile`), so it only
//!    learns the log from the leader;
//! 2. the leader adds the new nodes as learners and waits until they caught up (a move to a
//!    node that never does stays under way until cancelled, as Kafka's does);
//! 3. it changes the voters to the target (openraft's joint consensus), dropping the others;
//! 4. it proposes `FinishReassignment`: the target becomes the replicas;
//! 5. every node no longer a replica shuts its group down and drops its copy (`drop_replicas`).
//!
//! A new replica applies the same log as the others, so its offsets and idempotent producer
//! state are theirs. Each node hosting a moving partition runs one mover task for it, which
//! acts only while its node leads the group: after a leader change or a restart the new
//! leader's mover resumes from the target in the metadata and the group's membership.
//! A cancel (the target cleared) drives the membership back to the replicas the same way.

use super::ClusterNode;
use openraft::{BasicNode, ChangeMembers, ServerState};
use sluice_cluster::meta::{ClusterState, MetaCommand, MetaReply, PartitionState};
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one round of the mover waits for new learners to catch up. A learner that has
/// not is never made a voter (as Kafka waits for new replicas to join the ISR): a move to a
/// dead or lagging node stays under way, retried round after round, until it catches up or
/// the move is cancelled (noticed between rounds).
const CATCH_UP_ROUND: Duration = Duration::from_secs(5);
/// A learner this close to the leader's last entry counts as caught up: a few AppendEntries.
const CAUGHT_UP_ENTRIES: u64 = 16;
/// A mover with nothing to react to looks again after this long (a failed step is retried).
const MOVER_PAUSE: Duration = Duration::from_millis(500);

/// Partitions with a mover task on this node, and whether copies left from before a restart
/// were looked for.
pub struct Moves {
    moving: Mutex<HashSet<GroupId>>,
    swept: AtomicBool,
    /// When this process started (ms, its clock): its registration stamped at or after it
    /// marks the metadata as caught up with everything committed before this start.
    started_ms: i64,
}

impl Moves {
    pub fn new() -> Moves {
        Moves { moving: Mutex::default(), swept: AtomicBool::new(false), started_ms: super::meta_client::now_ms() }
    }

    /// Claims `group` for a new mover; false when one runs already.
    fn claim(&self, group: &GroupId) -> bool {
        self.moving.lock().is_ok_and(|mut moving| moving.insert(group.clone()))
    }

    fn release(&self, group: &GroupId) {
        if let Ok(mut moving) = self.moving.lock() {
            moving.remove(group);
        }
    }
}

/// Whether `node` runs the partition's group: a replica now, or the target of its move.
pub fn hosts(partition: &PartitionState, node: NodeId) -> bool {
    partition.replicas.contains(&node) || partition.target_replicas.as_ref().is_some_and(|t| t.contains(&node))
}

/// The voters the partition's group should have.
fn desired(partition: &PartitionState) -> BTreeSet<NodeId> {
    partition.target_replicas.as_ref().unwrap_or(&partition.replicas).iter().copied().collect()
}

/// The group's membership as this node last applied it.
struct Members {
    voters: BTreeSet<NodeId>,
    learners: BTreeSet<NodeId>,
    joint: bool,
}

fn members(raft: &Raft) -> Members {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let membership = m.membership_config.membership();
    Members {
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        joint: membership.get_joint_config().len() > 1,
    }
}

impl ClusterNode {
    /// Starts a mover for every moving partition whose group runs here (called after every
    /// reconcile).
    pub(super) fn follow_moves(self: &Arc<Self>, state: &ClusterState) {
        for (name, topic) in &state.topics {
            for (index, partition) in topic.partitions.iter().enumerate() {
                if partition.target_replicas.is_none() {
                    continue;
                }
                let group = GroupId::Partition { topic: name.clone(), partition: index as i32, topic_id: topic.id };
                let Some(raft) = self.group(&group) else { continue };
                if self.moves.claim(&group) {
                    tokio::spawn(Arc::clone(self).drive_move(name.clone(), index as i32, group, raft));
                }
            }
        }
    }

    /// Drives one partition's move while this node leads its group, until the membership is
    /// what the metadata wants and the metadata says so, or the group stops here.
    async fn drive_move(self: Arc<Self>, topic: String, partition: i32, group: GroupId, raft: Raft) {
        let mut state_changes = self.state.clone();
        let mut metrics = raft.metrics();
        loop {
            let state = self.state();
            let Some(wanted) = state.partition(&topic, partition) else { break };
            if !hosts(wanted, self.node_id) {
                break;
            }
            let goal = desired(wanted);
            let now = members(&raft);
            let settled = !now.joint && now.voters == goal && now.learners.is_empty();
            let leads = raft.metrics().borrow().state == ServerState::Leader;
            if settled && wanted.target_replicas.is_none() {
                break;
            }
            if leads {
                let step = if settled {
                    self.finish_move(&topic, partition, wanted).await
                } else {
                    self.move_step(&raft, &state, &goal, &now).await
                };
                if let Err(e) = step {
                    tracing::warn!(topic, partition, error = %e, "partition move step failed; retrying");
                    // Metrics change with every commit under load: never retry faster than this.
                    tokio::time::sleep(MOVER_PAUSE).await;
                }
            }
            tokio::select! {
                changed = state_changes.changed() => if changed.is_err() { break },
                changed = metrics.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(MOVER_PAUSE) => {}
            }
        }
        self.moves.release(&group);
    }

    /// One step towards `goal`: new nodes become learners, then (once caught up) the voters
    /// become `goal`; learners outside it are removed.
    async fn move_step(
        &self,
        raft: &Raft,
        state: &ClusterState,
        goal: &BTreeSet<NodeId>,
        now: &Members,
    ) -> Result<(), String> {
        for id in goal.iter().filter(|id| !now.voters.contains(id) && !now.learners.contains(id)) {
            let addr = state.nodes.get(id).map(|n| n.cluster_addr.clone()).ok_or(format!("node {id} is unknown"))?;
            raft.add_learner(*id, BasicNode { addr }, false).await.map_err(|e| e.to_string())?;
            tracing::info!(node = id, "partition move: learner added");
        }
        if now.joint || now.voters != *goal {
            if !wait_caught_up(raft, goal).await {
                return Err(format!("new replicas of {goal:?} not caught up yet"));
            }
            raft.change_membership(ChangeMembers::ReplaceAllVoters(goal.clone()), false)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(voters = ?goal, "partition move: voters changed");
        }
        let stray: BTreeSet<NodeId> = members(raft).learners.difference(goal).copied().collect();
        if !stray.is_empty() {
            raft.change_membership(ChangeMembers::RemoveNodes(stray), false).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The group's voters are the target: the target becomes the partition's replicas.
    async fn finish_move(&self, topic: &str, partition: i32, wanted: &PartitionState) -> Result<(), String> {
        let Some(target) = wanted.target_replicas.clone() else { return Ok(()) };
        let finish = MetaCommand::FinishReassignment { topic: topic.to_string(), partition, replicas: target };
        match self.propose_meta(&finish).await.map_err(|e| e.to_string())? {
            MetaReply::Ok => {
                tracing::info!(topic, partition, replicas = ?wanted.target_replicas, "partition move finished");
                Ok(())
            }
            // The target changed meanwhile (a new move or a cancel): the next round follows it.
            other => Err(format!("finish refused: {other:?}")),
        }
    }

    /// Shuts down and drops the local copy of every partition this node no longer hosts
    /// (called after every reconcile). The topic's directory stays, as on every node: the
    /// partition is replaced by an empty one that takes no append.
    pub(super) async fn drop_replicas(self: &Arc<Self>, state: &ClusterState) -> anyhow::Result<()> {
        let local: Vec<(GroupId, Raft)> = match self.groups.read() {
            Ok(groups) => groups
                .iter()
                .filter(|(group, _)| matches!(group, GroupId::Partition { .. }))
                .map(|(group, raft)| (group.clone(), raft.clone()))
                .collect(),
            Err(_) => anyhow::bail!("group registry poisoned"),
        };
        for (group, raft) in local {
            let GroupId::Partition { topic, partition, topic_id } = &group else { continue };
            let (topic, partition) = (topic.clone(), *partition);
            // Only partitions of the topic the metadata still has: a deleted (or deleted and
            // re-created) topic is `topic_sync`'s, not this step's.
            if state.topics.get(&topic).map(|t| t.id) != Some(*topic_id) {
                continue;
            }
            let Some(p) = state.partition(&topic, partition) else { continue };
            if hosts(p, self.node_id) {
                continue;
            }
            if let Ok(mut groups) = self.groups.write() {
                groups.remove(&group);
            }
            let _ = raft.shutdown().await;
            if let Some(local_topic) = self.broker.topic(&topic) {
                let defaults = self.broker.config().log_defaults.clone();
                tokio::task::spawn_blocking(move || local_topic.reset_partition(partition, &defaults)).await??;
            }
            tracing::info!(topic, partition, "no longer a replica: group stopped, local copy dropped");
        }
        // Only once this node's own registration (proposed after it started) is applied here:
        // before that the state may be older than what was committed while it was down, and
        // a partition moved onto it since would look like one moved off.
        let caught_up = state.nodes.get(&self.node_id).is_some_and(|n| n.last_seen_ms >= self.moves.started_ms);
        if caught_up && !self.moves.swept.load(Ordering::Acquire) {
            self.drop_stale_copies(state).await?;
            self.moves.swept.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Once after start: drops the copies of partitions that moved off this node while it was
    /// down (their Raft state is still here, but no group runs for them), so a later move back
    /// starts clean instead of from a stale membership and vote.
    async fn drop_stale_copies(&self, state: &ClusterState) -> anyhow::Result<()> {
        for (name, topic) in &state.topics {
            let Some(local_topic) = self.broker.topic(name) else { continue };
            for (index, p) in topic.partitions.iter().enumerate() {
                let stale = local_topic
                    .partition(index as i32)
                    .is_some_and(|local| local.log().dir().join(sluice_log::RAFT_DIR).exists());
                if hosts(p, self.node_id) || !stale {
                    continue;
                }
                let (local_topic, defaults) = (Arc::clone(&local_topic), self.broker.config().log_defaults.clone());
                tokio::task::spawn_blocking(move || local_topic.reset_partition(index as i32, &defaults)).await??;
                tracing::info!(topic = name, partition = index, "moved off while down: local copy dropped");
            }
        }
        Ok(())
    }
}

/// Waits until every node of `goal` that is not a voter yet is within `CAUGHT_UP_ENTRIES` of
/// the leader's log, for at most `CATCH_UP_ROUND`; whether they are.
async fn wait_caught_up(raft: &Raft, goal: &BTreeSet<NodeId>) -> bool {
    let deadline = tokio::time::Instant::now() + CATCH_UP_ROUND;
    let mut metrics = raft.metrics();
    loop {
        let caught_up = {
            let m = metrics.borrow_and_update();
            let last = m.last_log_index.unwrap_or(0);
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            m.replication.as_ref().is_some_and(|progress| {
                goal.iter().filter(|id| !voters.contains(id)).all(|id| {
                    progress
                        .get(id)
                        .and_then(|matched| matched.as_ref())
                        .is_some_and(|matched| matched.index + CAUGHT_UP_ENTRIES >= last)
                })
            })
        };
        if caught_up || stopped_leading(&metrics) {
            return caught_up;
        }
        match tokio::time::timeout_at(deadline, metrics.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return false,
        }
    }
}

/// Whether this node stopped leading (then the next leader's mover carries on).
fn stopped_leading(metrics: &tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>>) -> bool {
    metrics.borrow().state != ServerState::Leader
}
