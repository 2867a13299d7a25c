//! The cluster's status for operators (`ClusterView::status`): each local Raft group's figures
//! from openraft's metrics, the nodes and the other partitions from the metadata state, and
//! whether each node answers this one's pings (`liveness`).

use super::liveness::{self, Seen};
use super::ClusterNode;
use openraft::{RaftMetrics, ServerState};
use sluice_broker::cluster_view::{
    ClusterStatus, FollowerStatus, GroupStatus, Leadership, NodeStatus, PartitionRef, PartitionStatus, RaftRole,
};
use sluice_cluster::meta::ClusterState;
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::{BTreeMap, BTreeSet};

type Metrics = RaftMetrics<NodeId, openraft::BasicNode>;

impl ClusterNode {
    pub fn status(&self) -> ClusterStatus {
        let state = self.state();
        let metadata = group_status(&self.meta.metrics().borrow());
        let down: BTreeSet<NodeId> = state
            .nodes
            .keys()
            .copied()
            .filter(|id| *id != self.node_id && self.liveness.seen(*id).up == Some(false))
            .collect();
        let mut partitions = Vec::new();
        let mut all = Vec::new();
        for (topic, t) in &state.topics {
            for (index, p) in t.partitions.iter().enumerate() {
                let partition = index as i32;
                let group = GroupId::Partition { topic: topic.clone(), partition, topic_id: t.id };
                let local = self.group(&group).map(|raft| local_partition(&raft, topic, partition, &p.isr));
                let (leader, isr) = match &local {
                    Some(l) => (l.raft.leader.or(p.leader), l.isr.clone()),
                    None => (p.leader, p.isr.clone()),
                };
                let offline_replicas = p.replicas.iter().copied().filter(|id| down.contains(id)).collect();
                let replicas = p.replicas.clone();
                all.push(PartitionRef { topic: topic.clone(), partition, leader, replicas, isr, offline_replicas });
                partitions.extend(local);
            }
        }
        let leaders = leaders_per_node(&state, &all);
        let under_replicated = all.iter().filter(|p| p.isr.len() < p.replicas.len()).cloned().collect();
        ClusterStatus {
            node_id: self.node_id,
            cluster_id: state.cluster_id.clone(),
            nodes: self.node_statuses(&state, &metadata, &all),
            metadata,
            partitions,
            placement: all,
            under_replicated,
            leaders,
        }
    }
}

fn local_partition(raft: &Raft, topic: &str, partition: i32, metadata_isr: &[NodeId]) -> PartitionStatus {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let status = group_status(&m);
    // The ISR its leader reported to the metadata group (`isr.rs`), the same on every node.
    let isr = metadata_isr.to_vec();
    let replicas = status.voters.clone();
    PartitionStatus {
        topic: topic.to_string(),
        partition,
        under_replicated: isr.len() < replicas.len(),
        raft: status,
        replicas,
        isr,
    }
}

pub fn group_status(m: &Metrics) -> GroupStatus {
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    let role = match m.state {
        ServerState::Leader => RaftRole::Leader,
        ServerState::Candidate => RaftRole::Candidate,
        ServerState::Learner => RaftRole::Learner,
        ServerState::Shutdown => RaftRole::Shutdown,
        ServerState::Follower if !voters.contains(&m.id) => RaftRole::Learner,
        ServerState::Follower => RaftRole::Follower,
    };
    let followers = match (&m.replication, role) {
        (Some(replication), RaftRole::Leader) => replication
            .iter()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, matched)| {
                let matched_index = matched.map(|l| l.index);
                FollowerStatus { node_id: *id, matched_index, lag: lag(m.last_log_index, matched_index) }
            })
            .collect(),
        _ => Vec::new(),
    };
    GroupStatus {
        role,
        term: m.current_term,
        leader: m.current_leader,
        commit_index: m.last_applied.map(|l| l.index),
        last_log_index: m.last_log_index,
        voters,
        learners,
        followers,
    }
}

/// Entries the follower lacks: indexes start at 0, so None counts as one before the first.
fn lag(last: Option<u64>, matched: Option<u64>) -> u64 {
    let count = |index: Option<u64>| index.map_or(0, |i| i.saturating_add(1));
    count(last).saturating_sub(count(matched))
}

impl ClusterNode {
    fn node_statuses(
        &self,
        state: &ClusterState,
        metadata: &GroupStatus,
        placement: &[PartitionRef],
    ) -> Vec<NodeStatus> {
        state
            .nodes
            .iter()
            .map(|(id, info)| {
                let seen = if *id == self.node_id {
                    Seen {
                        up: Some(true),
                        last_contact_ms: Some(0),
                        stored_bytes: Some(liveness::stored_bytes(&self.broker)),
                    }
                } else {
                    self.liveness.seen(*id)
                };
                NodeStatus {
                    node_id: *id,
                    cluster_addr: info.cluster_addr.clone(),
                    kafka_addr: info.kafka_addr.clone(),
                    nsq_tcp_addr: info.nsq_tcp_addr.clone(),
                    http_addr: info.http_addr.clone(),
                    rack: info.rack.clone(),
                    metadata_member: metadata_member(metadata, *id),
                    last_seen_ms: info.last_seen_ms,
                    up: seen.up,
                    last_contact_ms: seen.last_contact_ms,
                    stored_bytes: seen.stored_bytes,
                    partitions_led: placement.iter().filter(|p| p.leader == Some(*id)).count(),
                    replicas: placement.iter().filter(|p| p.replicas.contains(id)).count(),
                }
            })
            .collect()
    }
}

fn metadata_member(metadata: &GroupStatus, id: NodeId) -> &'static str {
    if metadata.voters.contains(&id) {
        "voter"
    } else if metadata.learners.contains(&id) {
        "learner"
    } else {
        "none"
    }
}

fn leaders_per_node(state: &ClusterState, partitions: &[PartitionRef]) -> Vec<Leadership> {
    let mut led: BTreeMap<NodeId, usize> = state.nodes.keys().map(|id| (*id, 0)).collect();
    for leader in partitions.iter().filter_map(|p| p.leader) {
        *led.entry(leader).or_default() += 1;
    }
    led.into_iter().map(|(node_id, partitions)| Leadership { node_id, partitions }).collect()
}

#[cfg(test)]
mod tests {
    use super::lag;

    #[test]
    fn lag_counts_the_entries_a_follower_lacks() {
        assert_eq!(lag(Some(10), Some(10)), 0);
        assert_eq!(lag(Some(10), Some(7)), 3);
        assert_eq!(lag(Some(10), None), 11);
        assert_eq!(lag(None, None), 0);
        // A follower reported past the leader's log (a stale read of two metrics) lags by 0.
        assert_eq!(lag(Some(3), Some(5)), 0);
    }
}
