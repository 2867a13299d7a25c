//! Raft figures of every group this node is a member of, read from the cluster's status at
//! scrape time: the metadata group (topic `__cluster_metadata`, partition 0) and each local
//! partition replica. Nothing on a single node.

use super::families::Family;
use crate::cluster_view::{ClusterStatus, GroupStatus, PartitionRef, RaftRole};
use crate::Broker;
use prometheus::proto::MetricFamily;

/// The topic label of the metadata group's samples (KRaft's name for its log).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

struct RaftFamilies {
    term: Family,
    commit_index: Family,
    last_log_index: Family,
    is_leader: Family,
    follower_lag: Family,
}

impl RaftFamilies {
    fn new() -> RaftFamilies {
        RaftFamilies {
            term: Family::gauge("sluice_raft_term", "Current Raft term of this node's member of the group."),
            commit_index: Family::gauge(
                "sluice_raft_commit_index",
                "Last applied (committed) Raft log index of this node's member of the group; -1 before any.",
            ),
            last_log_index: Family::gauge(
                "sluice_raft_last_log_index",
                "Last Raft log index this node's member of the group holds; -1 before any.",
            ),
            is_leader: Family::gauge("sluice_raft_is_leader", "1 while this node leads the group, else 0."),
            follower_lag: Family::gauge(
                "sluice_raft_follower_lag_entries",
                "On the group's leader: entries a follower lacks (leader's last log index minus its matched index).",
            ),
        }
    }

    fn add(&mut self, topic: &str, partition: &str, group: &GroupStatus) {
        let labels = [("topic", topic), ("partition", partition)];
        let index = |i: Option<u64>| i.map_or(-1.0, |i| i as f64);
        self.term.add(&labels, group.term as f64);
        self.commit_index.add(&labels, index(group.commit_index));
        self.last_log_index.add(&labels, index(group.last_log_index));
        self.is_leader.add(&labels, if group.role == RaftRole::Leader { 1.0 } else { 0.0 });
        for f in &group.followers {
            let follower = f.node_id.to_string();
            self.follower_lag.add(&[("topic", topic), ("partition", partition), ("follower", &follower)], f.lag as f64);
        }
    }

    fn finish(self, out: &mut Vec<MetricFamily>) {
        for family in [self.term, self.commit_index, self.last_log_index, self.is_leader, self.follower_lag] {
            family.finish(out);
        }
    }
}

pub fn collect(broker: &Broker, out: &mut Vec<MetricFamily>) {
    let Some(status) = broker.cluster().and_then(|c| c.status()) else { return };
    families(&status, out);
}

fn families(status: &ClusterStatus, out: &mut Vec<MetricFamily>) {
    let mut families = RaftFamilies::new();
    families.add(METADATA_TOPIC, "0", &status.metadata);
    for p in &status.partitions {
        families.add(&p.topic, &p.partition.to_string(), &p.raft);
    }
    families.finish(out);
    let mut under = Family::gauge(
        "sluice_cluster_under_replicated_partitions",
        "Partitions of the cluster whose in-sync replicas are fewer than their replicas, as this node sees them.",
    );
    under.add(&[], status.under_replicated.len() as f64);
    under.finish(out);
    let mut offline = Family::gauge(
        "sluice_cluster_offline_partitions",
        "Partitions of the cluster with no leader, or whose leader is on a node that is down, as this node sees them.",
    );
    offline.add(&[], status.placement.iter().filter(|p| is_offline(p)).count() as f64);
    offline.finish(out);
}

/// Kafka's offline partition: no leader to produce to or consume from.
fn is_offline(p: &PartitionRef) -> bool {
    p.leader.is_none_or(|leader| p.offline_replicas.contains(&leader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_view::{FollowerStatus, PartitionStatus};
    use prometheus::Encoder;

    fn group(role: RaftRole, followers: Vec<FollowerStatus>) -> GroupStatus {
        GroupStatus {
            role,
            term: 4,
            leader: Some(1),
            commit_index: Some(9),
            last_log_index: Some(10),
            voters: vec![1, 2, 3],
            learners: vec![],
            followers,
        }
    }

    #[test]
    fn every_group_gets_its_samples_and_only_the_leader_has_lag() {
        let lagging = vec![
            FollowerStatus { node_id: 2, matched_index: Some(10), lag: 0 },
            FollowerStatus { node_id: 3, matched_index: Some(6), lag: 4 },
        ];
        let status = ClusterStatus {
            node_id: 1,
            cluster_id: None,
            metadata: group(RaftRole::Follower, vec![]),
            nodes: vec![],
            partitions: vec![PartitionStatus {
                topic: "orders".into(),
                partition: 2,
                raft: group(RaftRole::Leader, lagging),
                replicas: vec![1, 2, 3],
                isr: vec![1, 2],
                under_replicated: true,
            }],
            placement: vec![placed(Some(1), &[]), placed(None, &[]), placed(Some(2), &[2]), placed(Some(3), &[2])],
            under_replicated: vec![],
            leaders: vec![],
        };
        let mut out = Vec::new();
        families(&status, &mut out);
        let mut text = Vec::new();
        prometheus::TextEncoder::new().encode(&out, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("sluice_raft_term{topic=\"__cluster_metadata\",partition=\"0\"} 4"), "{text}");
        assert!(text.contains("sluice_raft_is_leader{topic=\"__cluster_metadata\",partition=\"0\"} 0"), "{text}");
        assert!(text.contains("sluice_raft_is_leader{topic=\"orders\",partition=\"2\"} 1"), "{text}");
        assert!(text.contains("sluice_raft_commit_index{topic=\"orders\",partition=\"2\"} 9"), "{text}");
        assert!(
            text.contains("sluice_raft_follower_lag_entries{topic=\"orders\",partition=\"2\",follower=\"3\"} 4"),
            "{text}"
        );
        assert_eq!(text.matches("sluice_raft_follower_lag_entries{").count(), 2, "{text}");
        assert!(text.contains("sluice_cluster_under_replicated_partitions 0"), "{text}");
        // No leader, or a leader on a down node: 2 of the 4 placed partitions.
        assert!(text.contains("sluice_cluster_offline_partitions 2"), "{text}");
    }

    fn placed(leader: Option<u64>, offline_replicas: &[u64]) -> PartitionRef {
        PartitionRef {
            topic: "t".into(),
            partition: 0,
            leader,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            offline_replicas: offline_replicas.to_vec(),
        }
    }
}
