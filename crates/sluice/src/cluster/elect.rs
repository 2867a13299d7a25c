//! Kafka's preferred leader election (ElectLeaders): the partition's first replica is asked
//! to call an election in its Raft group. Raft's vote rule elects it only if its log holds
//! every committed entry, so "in sync" is Raft's to judge. openraft 0.9 has no leadership
//! transfer and followers refuse votes while their leader lease holds, so the current leader
//! (whose own lease ran out since it was elected) is the vote that decides; the call is
//! repeated a few times and the outcome is what the group's leader then is.

use super::replica::broker_id;
use super::{node_rpc, ClusterNode};
use sluice_broker::reassignment::AdminError;
use sluice_cluster::types::GroupId;
use std::time::Duration;

/// Elections asked of the preferred replica at most.
const ELECTION_ATTEMPTS: usize = 5;
/// How long each attempt waits for the preferred replica to lead: a few election timeouts.
const ATTEMPT_WAIT: Duration = Duration::from_millis(1500);
/// How often the wait looks at the leader.
const LEADER_POLL: Duration = Duration::from_millis(50);

impl ClusterNode {
    /// Makes the partition's first replica its leader; `ElectionNotNeeded` when it leads.
    pub async fn elect_preferred(&self, topic: &str, partition: i32) -> Result<(), AdminError> {
        let state = self.state();
        let p = state.partition(topic, partition).ok_or(AdminError::UnknownTopicOrPartition)?;
        let preferred = *p.replicas.first().ok_or(AdminError::UnknownTopicOrPartition)?;
        if self.leader_of(topic, partition) == Some(broker_id(preferred)) {
            return Err(AdminError::ElectionNotNeeded);
        }
        let addr =
            state.nodes.get(&preferred).map(|n| n.cluster_addr.clone()).ok_or_else(|| {
                AdminError::PreferredLeaderNotAvailable(format!("node {preferred} is not registered"))
            })?;
        let mut last = String::from("it did not win an election");
        for _ in 0..ELECTION_ATTEMPTS {
            let asked = if preferred == self.node_id {
                let topic_id = state.topics.get(topic).map(|t| t.id);
                let group =
                    topic_id.map(|topic_id| GroupId::Partition { topic: topic.to_string(), partition, topic_id });
                node_rpc::elect(group.and_then(|g| self.group(&g))).await.map(drop)
            } else {
                node_rpc::request_election(&self.transport, &addr, topic, partition).await
            };
            if let Err(why) = asked {
                last = why;
            }
            let deadline = tokio::time::Instant::now() + ATTEMPT_WAIT;
            while tokio::time::Instant::now() < deadline {
                if self.leader_of(topic, partition) == Some(broker_id(preferred)) {
                    tracing::info!(topic, partition, leader = preferred, "preferred leader elected");
                    return Ok(());
                }
                tokio::time::sleep(LEADER_POLL).await;
            }
        }
        Err(AdminError::PreferredLeaderNotAvailable(format!("node {preferred}: {last}")))
    }

    /// The partition's leader as this node knows it (its replica's, else the last report).
    fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.placement_of(topic, partition).and_then(|p| p.leader)
    }
}
