//! Where a new topic's (or new partitions') replicas go: Kafka's rack-unaware assignment,
//! made deterministic. Kafka starts at a random node; here the start is the number of
//! partitions the cluster already holds, so consecutive topics keep rotating the preferred
//! leader over the nodes instead of all starting on the same one.
//!
//! Partition number `g` in that global count is placed as Kafka places it: first replica on
//! node `g % n`; followers shifted by `1 + (g / n + j) % (n - 1)` from it, so the followers'
//! pattern changes every `n` partitions and no node appears twice in one partition.

use super::limits::{PARTITIONS_PER_TOPIC_MAX, REPLICAS_PER_PARTITION_MAX};
use super::state::ClusterState;
use crate::types::NodeId;

/// Why replicas cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    #[error("the replication factor is larger than the number of available nodes")]
    ReplicationFactorTooLarge,
    #[error("a replication factor is 1 to {REPLICAS_PER_PARTITION_MAX}, got {0}")]
    InvalidReplicationFactor(i16),
    #[error("a topic has 1 to {PARTITIONS_PER_TOPIC_MAX} partitions, got {0}")]
    InvalidPartitions(i32),
}

/// Replicas for `partitions` new partitions over `nodes` (any order; duplicates ignored), the
/// first of each being its preferred leader. Pure: the same inputs give the same answer.
pub fn assign_replicas(
    nodes: &[NodeId],
    existing: &ClusterState,
    partitions: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<NodeId>>, PlacementError> {
    let count = usize::try_from(partitions)
        .ok()
        .filter(|count| (1..=PARTITIONS_PER_TOPIC_MAX).contains(count))
        .ok_or(PlacementError::InvalidPartitions(partitions))?;
    let factor = usize::try_from(replication_factor)
        .ok()
        .filter(|factor| (1..=REPLICAS_PER_PARTITION_MAX).contains(factor))
        .ok_or(PlacementError::InvalidReplicationFactor(replication_factor))?;
    let mut nodes = nodes.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    if factor > nodes.len() {
        return Err(PlacementError::ReplicationFactorTooLarge);
    }
    let start = existing.partition_count();
    Ok((start..start + count).map(|global| place(&nodes, global, factor)).collect())
}

/// The replicas of the partition numbered `global` in the cluster-wide count.
fn place(nodes: &[NodeId], global: usize, factor: usize) -> Vec<NodeId> {
    let n = nodes.len();
    let first = global % n;
    let shift = global / n;
    let followers = (0..factor - 1).map(|j| {
        // n >= 2 here: a follower exists only when factor >= 2, and factor <= n.
        let offset = 1 + (shift + j) % (n - 1);
        nodes[(first + offset) % n]
    });
    std::iter::once(nodes[first]).chain(followers).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::meta::state::{PartitionState, TopicState};

    fn count_by_node(assignment: &[Vec<NodeId>], leaders_only: bool) -> BTreeMap<NodeId, usize> {
        let mut counts = BTreeMap::new();
        for replicas in assignment {
            let take = if leaders_only { 1 } else { replicas.len() };
            for node in &replicas[..take] {
                *counts.entry(*node).or_insert(0) += 1;
            }
        }
        counts
    }

    #[test]
    fn replicas_are_spread_and_leaders_balanced() {
        // Proves every partition gets rf distinct nodes and, over a multiple of the node count,
        // every node leads and holds the same number of partitions.
        let nodes = [1, 2, 3, 4, 5];
        for rf in 1..=5i16 {
            let assignment = assign_replicas(&nodes, &ClusterState::default(), 20, rf).unwrap();
            for replicas in &assignment {
                assert_eq!(replicas.len(), rf as usize);
                assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), rf as usize, "{replicas:?}");
            }
            assert_eq!(count_by_node(&assignment, true), nodes.iter().map(|n| (*n, 4)).collect());
            assert_eq!(count_by_node(&assignment, false), nodes.iter().map(|n| (*n, 4 * rf as usize)).collect());
        }
    }

    #[test]
    fn followers_vary_not_only_leaders() {
        // Proves the follower shift changes every n partitions (Kafka's nextReplicaShift), so
        // a leader's followers are not always the same nodes.
        let assignment = assign_replicas(&[1, 2, 3, 4], &ClusterState::default(), 8, 2).unwrap();
        assert_eq!(assignment[0], vec![1, 2]);
        assert_eq!(assignment[4], vec![1, 3]);
    }

    #[test]
    fn consecutive_topics_rotate_the_first_leader() {
        // Proves placement continues from the partitions that exist: one-partition topics
        // land their leaders on every node in turn.
        let mut state = ClusterState::default();
        let mut leaders = Vec::new();
        for topic in 0..6 {
            let assignment = assign_replicas(&[7, 8, 9], &state, 1, 3).unwrap();
            leaders.push(assignment[0][0]);
            let partitions = assignment
                .into_iter()
                .map(|replicas| PartitionState {
                    isr: replicas.clone(),
                    replicas,
                    target_replicas: None,
                    leader: None,
                    leader_epoch: -1,
                    isr_epoch: -1,
                    log_start_floor: 0,
                })
                .collect();
            state.topics.insert(format!("t{topic}"), TopicState { id: topic, configs: BTreeMap::new(), partitions });
        }
        assert_eq!(leaders, vec![7, 8, 9, 7, 8, 9]);
    }

    #[test]
    fn placement_is_deterministic_whatever_the_node_order() {
        // Proves the answer depends on the set of nodes and the state only.
        let a = assign_replicas(&[3, 1, 2, 2], &ClusterState::default(), 7, 2).unwrap();
        let b = assign_replicas(&[1, 2, 3], &ClusterState::default(), 7, 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, assign_replicas(&[2, 3, 1], &ClusterState::default(), 7, 2).unwrap());
    }

    #[test]
    fn impossible_requests_are_errors() {
        // Proves rf > nodes, no nodes, and out-of-range counts are refused, not panics.
        let state = ClusterState::default();
        assert_eq!(assign_replicas(&[1, 2], &state, 3, 3), Err(PlacementError::ReplicationFactorTooLarge));
        assert_eq!(assign_replicas(&[], &state, 1, 1), Err(PlacementError::ReplicationFactorTooLarge));
        assert_eq!(assign_replicas(&[1], &state, 0, 1), Err(PlacementError::InvalidPartitions(0)));
        assert_eq!(assign_replicas(&[1], &state, -1, 1), Err(PlacementError::InvalidPartitions(-1)));
        assert_eq!(assign_replicas(&[1], &state, 1, 0), Err(PlacementError::InvalidReplicationFactor(0)));
        assert_eq!(assign_replicas(&[1], &state, 1, -3), Err(PlacementError::InvalidReplicationFactor(-3)));
        let too_many = PARTITIONS_PER_TOPIC_MAX as i32 + 1;
        assert_eq!(assign_replicas(&[1], &state, too_many, 1), Err(PlacementError::InvalidPartitions(too_many)));
    }
}
