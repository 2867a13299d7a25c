//! Operators' changes to where partitions live: recording a partition's move (Kafka's
//! AlterPartitionReassignments, `sluice topic reassign`), listing moves, and removing a node
//! (`sluice cluster remove-node`: its replicas move away, then it leaves the metadata group
//! and the registered nodes), and giving a joined node its share (`sluice cluster add-node`:
//! replicas move onto it until it holds about as many as the others). The moves themselves
//! are `reassign`'s.

use super::{node_rpc, ClusterNode};
use sluice_broker::reassignment::{AdminError, Reassignment};
use sluice_cluster::meta::{ClusterState, MetaCommand, MetaReply};
use sluice_cluster::types::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::replica::broker_id;

/// How long `remove-node` (and `add-node`) waits for the node's replicas to move before it gives up
/// (the moves go on; running the command again resumes the wait). Under the CLI's 30 s
/// request timeout, so the operator reads this answer rather than a timeout.
const REMOVE_MOVES_WAIT: Duration = Duration::from_secs(25);
/// How often that wait looks at the metadata again.
const REMOVE_POLL: Duration = Duration::from_millis(200);

impl ClusterNode {
    /// Records a partition's move to `replicas`, or (None) cancels the move under way.
    pub async fn reassign(&self, topic: &str, partition: i32, replicas: Option<Vec<i32>>) -> Result<(), AdminError> {
        let state = self.state();
        let current = state.partition(topic, partition).ok_or(AdminError::UnknownTopicOrPartition)?;
        let replicas = match replicas {
            // Cancelling is reassigning to the replicas it has: the target is cleared.
            None if current.target_replicas.is_none() => return Err(AdminError::NoReassignmentInProgress),
            None => current.replicas.clone(),
            Some(list) => checked_replicas(&list, &state)?,
        };
        let command = MetaCommand::ReassignPartition { topic: topic.to_string(), partition, replicas };
        match self.propose_meta(&command).await.map_err(|e| AdminError::Unavailable(e.to_string()))? {
            MetaReply::Ok => Ok(()),
            MetaReply::UnknownTopic => Err(AdminError::UnknownTopicOrPartition),
            MetaReply::Invalid(why) => Err(AdminError::InvalidReplicaAssignment(why)),
            other => Err(AdminError::Unavailable(format!("unexpected metadata reply {other:?}"))),
        }
    }

    /// Every move under way, as the metadata group records it.
    pub fn reassignments(&self) -> Vec<Reassignment> {
        let state = self.state();
        let mut moves = Vec::new();
        for (name, topic) in &state.topics {
            for (index, p) in topic.partitions.iter().enumerate() {
                if let Some(target) = &p.target_replicas {
                    let ids = |nodes: &[NodeId]| nodes.iter().copied().map(broker_id).collect();
                    moves.push(Reassignment::new(name.clone(), index as i32, ids(&p.replicas), ids(target)));
                }
            }
        }
        moves
    }

    /// Moves every replica off `node`, waits until they moved, then removes it from the
    /// metadata group and the registered nodes. Refused, changing nothing, when a partition
    /// could not keep its replica count without it.
    pub async fn remove_node(self: &Arc<Self>, node: i32) -> Result<(), AdminError> {
        let node = NodeId::try_from(node).map_err(|_| AdminError::Refused(format!("no node {node}")))?;
        let state = self.state();
        if !state.nodes.contains_key(&node) {
            return Err(AdminError::Refused(format!("node {node} is not registered")));
        }
        for ((topic, partition), replicas) in moves_off(&state, node)? {
            self.reassign(&topic, partition, Some(replicas.into_iter().map(broker_id).collect())).await?;
        }
        self.wait_until_vacated(node).await?;
        // Forgotten first, then out of the metadata group: asked on the leaving node itself,
        // the proposal still has a group to go through.
        match self.propose_meta(&MetaCommand::RemoveNode { node_id: node }).await {
            Ok(MetaReply::Ok) => {}
            Ok(other) => return Err(AdminError::Refused(format!("the metadata group refused: {other:?}"))),
            Err(e) => return Err(AdminError::Unavailable(e.to_string())),
        }
        node_rpc::request_leave(self.meta.clone(), Arc::clone(&self.transport), node)
            .await
            .map_err(AdminError::Unavailable)?;
        tracing::info!(node, "node removed from the cluster");
        Ok(())
    }

    /// Moves replicas of existing partitions onto `node` (a node that joined with `--join`)
    /// until it holds its fair share, and waits until they moved. Returns how many partitions
    /// moved. Kafka leaves this to an operator's reassignment plan; here it is one command.
    pub async fn add_node(self: &Arc<Self>, node: i32) -> Result<usize, AdminError> {
        let node = NodeId::try_from(node).map_err(|_| AdminError::Refused(format!("no node {node}")))?;
        let state = self.state();
        if !state.nodes.contains_key(&node) {
            return Err(AdminError::Refused(format!(
                "node {node} is not registered: start it with --node-id {node} --join <a member's cluster address>"
            )));
        }
        let plan = moves_onto(&state, node);
        for ((topic, partition), replicas) in &plan {
            self.reassign(topic, *partition, Some(replicas.iter().copied().map(broker_id).collect())).await?;
        }
        let moved: BTreeSet<(String, i32)> = plan.iter().map(|(at, _)| at.clone()).collect();
        self.wait_until_moved(node, |state| {
            moved.iter().all(|(topic, partition)| {
                state.partition(topic, *partition).is_some_and(|p| p.target_replicas.is_none())
            })
        })
        .await?;
        tracing::info!(node, partitions = plan.len(), "replicas moved onto the added node");
        Ok(plan.len())
    }

    /// Waits (bounded) until no partition has `node` as a replica or move target.
    async fn wait_until_vacated(&self, node: NodeId) -> Result<(), AdminError> {
        self.wait_until_moved(node, |state| {
            !state.topics.values().flat_map(|t| &t.partitions).any(|p| super::reassign::hosts(p, node))
        })
        .await
    }

    /// Waits (bounded) until `done` holds of the metadata, the moves of `node`'s replicas over.
    async fn wait_until_moved(&self, node: NodeId, done: impl Fn(&ClusterState) -> bool) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + REMOVE_MOVES_WAIT;
        loop {
            if done(&self.state()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError::Unavailable(format!(
                    "node {node}'s replicas are still moving; run the command again to wait for them"
                )));
            }
            tokio::time::sleep(REMOVE_POLL).await;
        }
    }
}

/// A requested replica list as node ids: not empty, no duplicates, every node registered.
fn checked_replicas(list: &[i32], state: &ClusterState) -> Result<Vec<NodeId>, AdminError> {
    let invalid = AdminError::InvalidReplicaAssignment;
    if list.is_empty() {
        return Err(invalid("the replica list is empty".into()));
    }
    let mut seen = BTreeSet::new();
    let mut ids = Vec::with_capacity(list.len());
    for id in list {
        let node = NodeId::try_from(*id).map_err(|_| invalid(format!("no node {id}")))?;
        if !state.nodes.contains_key(&node) {
            return Err(invalid(format!("node {id} is not registered")));
        }
        if !seen.insert(node) {
            return Err(invalid(format!("node {id} is named twice")));
        }
        ids.push(node);
    }
    Ok(ids)
}

/// A partition (topic, index) and the replicas it moves to.
type Move = ((String, i32), Vec<NodeId>);

/// For every partition `node` holds (or is moving to), the replicas it gets instead: `node`
/// replaced, in place, by the registered node holding the fewest replicas and not already
/// one. Fails when no node is left to take a replica.
fn moves_off(state: &ClusterState, node: NodeId) -> Result<Vec<Move>, AdminError> {
    let mut load: BTreeMap<NodeId, usize> = state.nodes.keys().filter(|id| **id != node).map(|id| (*id, 0)).collect();
    for p in state.topics.values().flat_map(|t| &t.partitions) {
        for id in p.target_replicas.as_ref().unwrap_or(&p.replicas) {
            if let Some(count) = load.get_mut(id) {
                *count += 1;
            }
        }
    }
    let mut moves = Vec::new();
    for (name, topic) in &state.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            let current = p.target_replicas.as_ref().unwrap_or(&p.replicas);
            if !current.contains(&node) {
                continue;
            }
            let spare = load.iter().filter(|(id, _)| !current.contains(id)).min_by_key(|(id, count)| (**count, **id));
            let Some((&spare, _)) = spare else {
                return Err(AdminError::Refused(format!(
                    "{name}-{index} has {} replicas and no other node can take the one on node {node}",
                    current.len()
                )));
            };
            *load.entry(spare).or_default() += 1;
            let replicas = current.iter().map(|id| if *id == node { spare } else { *id }).collect();
            moves.push(((name.clone(), index as i32), replicas));
        }
    }
    Ok(moves)
}

/// Replicas moved onto `node` until it holds the fair share (all replicas over all nodes,
/// rounded down): partition by partition, the replica on the busiest node is replaced in place
/// by `node` while that narrows the gap by more than one, so the busiest give first and the
/// plan never overshoots. A partition already moving, or on `node`, is left alone. Replacing
/// a first replica makes `node` the preferred leader: leaders spread onto it too.
fn moves_onto(state: &ClusterState, node: NodeId) -> Vec<Move> {
    let mut load: BTreeMap<NodeId, usize> = state.nodes.keys().map(|id| (*id, 0)).collect();
    for p in state.topics.values().flat_map(|t| &t.partitions) {
        for id in p.target_replicas.as_ref().unwrap_or(&p.replicas) {
            if let Some(count) = load.get_mut(id) {
                *count += 1;
            }
        }
    }
    let fair = load.values().sum::<usize>() / load.len().max(1);
    let mut moves = Vec::new();
    for (name, topic) in &state.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            let held = load.get(&node).copied().unwrap_or(0);
            if held >= fair {
                return moves;
            }
            if p.target_replicas.is_some() || p.replicas.contains(&node) {
                continue;
            }
            let count = |id: &NodeId| load.get(id).copied().unwrap_or(0);
            let Some(&busiest) = p.replicas.iter().max_by_key(|id| (count(id), std::cmp::Reverse(**id))) else {
                continue;
            };
            if count(&busiest) <= held + 1 {
                continue;
            }
            load.entry(busiest).and_modify(|c| *c -= 1);
            load.entry(node).and_modify(|c| *c += 1);
            let replicas = p.replicas.iter().map(|id| if *id == busiest { node } else { *id }).collect();
            moves.push(((name.clone(), index as i32), replicas));
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_cluster::meta::MetaCommand;

    fn cluster(nodes: u64, partitions: Vec<Vec<NodeId>>) -> ClusterState {
        let mut state = ClusterState::default();
        for id in 1..=nodes {
            state.apply(MetaCommand::RegisterNode {
                node_id: id,
                cluster_addr: format!("127.0.0.{id}:9093"),
                kafka_addr: format!("127.0.0.{id}:9092"),
                nsq_tcp_addr: format!("127.0.0.{id}:4150"),
                http_addr: format!("127.0.0.{id}:4151"),
                rack: None,
                at_ms: 1,
                kafka_listeners: Default::default(),
            });
        }
        let created =
            state.apply(MetaCommand::CreateTopic { name: "t".into(), partitions, configs: Default::default() });
        assert_eq!(created, MetaReply::TopicCreated);
        state
    }

    #[test]
    fn a_removed_nodes_replicas_go_to_the_least_loaded_nodes_in_place() {
        // Proves each replica on the node is replaced where it stood (the preferred leader
        // keeps its rank) by the node with the fewest replicas, and the load is counted as
        // the plan goes.
        let state = cluster(5, vec![vec![1, 2, 3], vec![2, 1, 3], vec![3, 4, 2]]);
        let plan = moves_off(&state, 1).unwrap();
        assert_eq!(plan, vec![(("t".into(), 0), vec![5, 2, 3]), (("t".into(), 1), vec![2, 4, 3])]);
    }

    #[test]
    fn an_added_node_takes_replicas_from_the_busiest_nodes_up_to_its_share() {
        // Proves 6 RF 3 partitions on nodes 1-3 (18 replicas, 6 each) give node 4 its share
        // of 4 (18 / 4 rounded down), taken in place from the busiest node each time, so the
        // others end with 4 or 5 and the plan never goes past the share.
        let three = vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2], vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]];
        let state = cluster(4, three);
        let plan = moves_onto(&state, 4);
        assert_eq!(plan.len(), 4);
        let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
        let moved: BTreeMap<i32, &Vec<NodeId>> = plan.iter().map(|((_, p), r)| (*p, r)).collect();
        for (index, p) in state.topics["t"].partitions.iter().enumerate() {
            let replicas = moved.get(&(index as i32)).copied().unwrap_or(&p.replicas);
            assert_eq!(replicas.len(), 3);
            for id in replicas {
                *load.entry(*id).or_default() += 1;
            }
        }
        assert_eq!(load[&4], 4);
        assert!(load.values().all(|c| (4..=5).contains(c)), "{load:?}");
        assert_eq!(plan[0], (("t".into(), 0), vec![4, 2, 3]), "the first replica is replaced in place");
    }

    #[test]
    fn a_node_already_holding_its_share_gets_nothing() {
        // Proves an even cluster plans no move at all (adding twice changes nothing).
        let state = cluster(3, vec![vec![1, 2, 3], vec![2, 3, 1]]);
        assert!(moves_onto(&state, 3).is_empty());
    }

    #[test]
    fn removing_a_node_no_other_can_stand_in_for_is_refused() {
        // Proves an RF 3 partition on a 3-node cluster cannot lose a node: nothing is planned.
        let state = cluster(3, vec![vec![1, 2, 3]]);
        assert!(matches!(moves_off(&state, 2), Err(AdminError::Refused(_))));
        assert_eq!(moves_off(&cluster(4, vec![vec![1, 2, 3]]), 4).unwrap(), vec![]);
    }

    #[test]
    fn replica_lists_are_checked_before_anything_is_proposed() {
        // Proves Kafka's INVALID_REPLICA_ASSIGNMENT cases: empty, negative, unknown, twice.
        let state = cluster(3, vec![vec![1, 2, 3]]);
        for bad in [vec![], vec![-1], vec![1, 7], vec![2, 2]] {
            assert!(matches!(checked_replicas(&bad, &state), Err(AdminError::InvalidReplicaAssignment(_))), "{bad:?}");
        }
        assert_eq!(checked_replicas(&[3, 1], &state).unwrap(), vec![3, 1]);
    }
}
