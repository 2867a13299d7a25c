//! Moving leadership off a node before it stops, as Kafka's controlled shutdown does: every
//! partition the node leads gets another in-sync replica elected, so a rolling restart costs
//! clients a leader change they are told about (NOT_LEADER_OR_FOLLOWER and new Metadata)
//! instead of an election timeout after the process is gone.
//!
//! The node itself does it (`drain_self`), because only the leader can pause its writes
//! while the successor catches up (`hand_over`). `sluice cluster drain NODE` asked of any
//! node is sent on to NODE; SIGTERM does it for the node itself before the listeners stop,
//! bounded so a shutdown never hangs on it.

use super::replica::broker_id;
use super::{node_rpc, ClusterNode};
use openraft::{BasicNode, RaftMetrics, ServerState};
use sluice_broker::reassignment::{AdminError, Drained};
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Hand-overs tried per partition before the node keeps leading it.
const HAND_OVER_ATTEMPTS: usize = 3;
/// How long the paused leader waits for its successor to hold its whole log.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// How long it waits for the successor's election to make it a follower.
const ELECTION_WAIT: Duration = Duration::from_millis(1500);

impl ClusterNode {
    /// Has `node` hand over every partition leadership it holds (see the module comment).
    pub async fn drain(self: &Arc<Self>, node: i32) -> Result<Drained, AdminError> {
        let id = NodeId::try_from(node).map_err(|_| AdminError::Refused(format!("no node {node}")))?;
        if id == self.node_id {
            return Ok(self.drain_self().await);
        }
        let addr = self
            .state()
            .nodes
            .get(&id)
            .map(|n| n.cluster_addr.clone())
            .ok_or_else(|| AdminError::Refused(format!("node {node} is not registered")))?;
        node_rpc::request_drain(&self.transport, &addr)
            .await
            .map_err(|e| AdminError::Unavailable(format!("node {node} did not drain: {e}")))
    }

    /// Hands every partition this node leads to its first other in-sync replica, all at
    /// once (`hand_over`); what moved and what this node still leads.
    pub async fn drain_self(self: &Arc<Self>) -> Drained {
        let led: Vec<(GroupId, Raft)> = self
            .groups
            .read()
            .map(|groups| {
                groups
                    .iter()
                    .filter(|(group, raft)| {
                        matches!(group, GroupId::Partition { .. })
                            && raft.metrics().borrow().state == ServerState::Leader
                    })
                    .map(|(group, raft)| (group.clone(), raft.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut drained = Drained::default();
        let mut hand_overs = JoinSet::new();
        for (group, raft) in led {
            let GroupId::Partition { topic, partition, .. } = &group else { continue };
            let name = format!("{topic}-{partition}");
            let me = broker_id(self.node_id);
            let successor = self.placement_of(topic, *partition).and_then(|p| {
                p.replicas
                    .iter()
                    .copied()
                    .find(|r| *r != me && p.isr.contains(r))
                    .and_then(|r| NodeId::try_from(r).ok())
            });
            let Some(successor) = successor else {
                drained.kept.push(name);
                continue;
            };
            let this = Arc::clone(self);
            hand_overs.spawn(async move {
                let moved = this.hand_over(&group, &raft, successor).await;
                (name, moved)
            });
        }
        while let Some(joined) = hand_overs.join_next().await {
            let Ok((name, moved)) = joined else { continue };
            if moved {
                drained.moved.push(name);
            } else {
                tracing::warn!(partition = %name, "leadership not handed over");
                drained.kept.push(name);
            }
        }
        drained.moved.sort();
        drained.kept.sort();
        tracing::info!(moved = drained.moved.len(), kept = drained.kept.len(), "node drained of leadership");
        drained
    }

    /// Raft's leadership transfer from the outside: writes paused, wait until `successor`
    /// holds this leader's whole log, ask it to call an election (which it wins: the leader
    /// votes for a log as long as its own), wait for the leader to change; a few attempts.
    /// True once another node leads. Asking before the successor caught up would only
    /// depose this leader for a term nobody wins.
    async fn hand_over(&self, group: &GroupId, raft: &Raft, successor: NodeId) -> bool {
        let GroupId::Partition { topic, partition, .. } = group else { return false };
        let Some(addr) = self.state().nodes.get(&successor).map(|n| n.cluster_addr.clone()) else { return false };
        let _paused = self.hand_overs.pause(group);
        let led_elsewhere = |m: &RaftMetrics<NodeId, BasicNode>| m.current_leader.is_some_and(|l| l != self.node_id);
        for _ in 0..HAND_OVER_ATTEMPTS {
            let mut metrics = raft.metrics();
            let caught_up = tokio::time::timeout(
                CATCH_UP_WAIT,
                metrics.wait_for(|m| {
                    let matched = m.replication.as_ref().and_then(|r| r.get(&successor).copied().flatten());
                    m.state != ServerState::Leader || matched.map(|l| l.index) >= m.last_log_index
                }),
            )
            .await
            .is_ok_and(|seen| seen.is_ok());
            if led_elsewhere(&raft.metrics().borrow()) {
                return true;
            }
            if !caught_up {
                continue;
            }
            if let Err(e) = node_rpc::request_election(&self.transport, &addr, topic, *partition).await {
                tracing::debug!(topic, partition, successor, error = %e, "election not called");
            }
            let mut metrics = raft.metrics();
            let changed = tokio::time::timeout(ELECTION_WAIT, metrics.wait_for(|m| led_elsewhere(m))).await;
            if changed.is_ok_and(|seen| seen.is_ok()) {
                return true;
            }
        }
        led_elsewhere(&raft.metrics().borrow())
    }
}
