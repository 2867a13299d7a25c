//! The metadata group's state and the one function that changes it. `apply` is pure and
//! deterministic — no clock, no randomness, no I/O — so every node that applies the same log
//! holds the same state. A refused command changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::{MetaCommand, MetaReply};
use super::limits::{NODES_MAX, PARTITIONS_MAX, PARTITIONS_PER_TOPIC_MAX, PRODUCER_ID_BLOCK_COUNT_MAX};
use super::validate;
use crate::types::NodeId;

pub use super::placement::{assign_replicas, PlacementError};

/// A leader epoch (or ISR epoch) no report has set yet, as Kafka's -1.
pub const NO_EPOCH: i32 = -1;

/// Everything the metadata group holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Set once by `InitCluster`; Kafka clients see it in Metadata.
    pub cluster_id: Option<String>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub topics: BTreeMap<String, TopicState>,
    /// The id the next created topic gets: creation order, never reused (also after a
    /// deletion), so a re-created topic is told apart from its predecessor.
    pub next_topic_id: u64,
    /// The first id of the next producer-id block.
    pub next_producer_id: i64,
    /// Kafka SCRAM credentials and ACLs, cluster-wide (absent from older snapshots: empty).
    #[serde(default)]
    pub security: super::security::SecurityState,
}

/// A node's listeners, as it registered them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Where other nodes reach its Raft transport.
    pub cluster_addr: String,
    pub kafka_addr: String,
    /// Every Kafka listener by name (security protocol) → advertised HOST:PORT; empty when the
    /// node registered before listeners were recorded (then `kafka_addr` serves for all).
    #[serde(default)]
    pub kafka_listeners: BTreeMap<String, String>,
    pub nsq_tcp_addr: String,
    pub http_addr: String,
    pub rack: Option<String>,
    /// The proposer's clock at the first registration, ms since the epoch.
    pub registered_at_ms: i64,
    /// The latest registration's time (never moves back).
    pub last_seen_ms: i64,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Creation order (from `next_topic_id`).
    pub id: u64,
    pub configs: BTreeMap<String, String>,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionState>,
}

/// One partition's assignment and what its leaders last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The partition group's replicas; the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    /// Where a reassignment is moving it, if one is under way.
    pub target_replicas: Option<Vec<NodeId>>,
    /// The last reported leader (none until the first report).
    pub leader: Option<NodeId>,
    /// The Raft term of `leader`, Kafka's leader epoch.
    pub leader_epoch: i32,
    /// In-sync replicas: all replicas at creation, as Kafka starts.
    pub isr: Vec<NodeId>,
    /// The epoch of the ISR report that set `isr`.
    pub isr_epoch: i32,
    /// The log start DeleteRecords asked for (0: none): every replica's log starts at or
    /// after it once it has applied that far.
    #[serde(default)]
    pub log_start_floor: i64,
}

/// A command's outcome: `Err` holds the refusal (nothing changed).
type Outcome = Result<MetaReply, MetaReply>;

fn invalid(why: impl Into<String>) -> MetaReply {
    MetaReply::Invalid(why.into())
}

impl PartitionState {
    fn new(replicas: Vec<NodeId>) -> Self {
        let isr = replicas.clone();
        PartitionState {
            replicas,
            target_replicas: None,
            leader: None,
            leader_epoch: NO_EPOCH,
            isr,
            isr_epoch: NO_EPOCH,
            log_start_floor: 0,
        }
    }

    /// Whether `node` may lead or be in sync: a replica now or after the reassignment.
    fn may_hold(&self, node: NodeId) -> bool {
        self.replicas.contains(&node) || self.target_replicas.as_ref().is_some_and(|t| t.contains(&node))
    }
}

impl ClusterState {
    /// Applies one committed command.
    pub fn apply(&mut self, command: MetaCommand) -> MetaReply {
        let outcome = match command {
            MetaCommand::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            MetaCommand::RegisterNode {
                node_id,
                cluster_addr,
                kafka_addr,
                nsq_tcp_addr,
                http_addr,
                rack,
                at_ms,
                kafka_listeners,
            } => {
                let info = NodeInfo {
                    cluster_addr,
                    kafka_addr,
                    kafka_listeners,
                    nsq_tcp_addr,
                    http_addr,
                    rack,
                    registered_at_ms: at_ms,
                    last_seen_ms: at_ms,
                };
                self.register_node(node_id, info)
            }
            MetaCommand::CreateTopic { name, partitions, configs } => self.create_topic(name, partitions, configs),
            MetaCommand::DeleteTopic { name } => {
                self.topics.remove(&name).map(|_| MetaReply::Ok).ok_or(MetaReply::UnknownTopic)
            }
            MetaCommand::SetTopicConfigs { name, configs } => self.set_topic_configs(&name, configs),
            MetaCommand::CreatePartitions { name, new, count_before } => {
                self.create_partitions(&name, new, count_before)
            }
            MetaCommand::ReportLeader { topic, partition, leader, epoch, topic_id } => {
                self.report_leader(&topic, topic_id, partition, leader, epoch)
            }
            MetaCommand::ReportIsr { topic, partition, isr, epoch, topic_id } => {
                self.current_topic_id(&topic, topic_id).and_then(|_| self.report_isr(&topic, partition, isr, epoch))
            }
            MetaCommand::AllocateProducerIds { count } => self.allocate_producer_ids(count),
            MetaCommand::ReassignPartition { topic, partition, replicas } => {
                self.reassign_partition(&topic, partition, replicas)
            }
            MetaCommand::FinishReassignment { topic, partition, replicas } => {
                self.finish_reassignment(&topic, partition, replicas)
            }
            MetaCommand::RemoveNode { node_id } => self.remove_node(node_id),
            MetaCommand::DeleteRecords { topic, partition, offset, topic_id } => {
                self.current_topic_id(&topic, topic_id).and_then(|_| self.delete_records(&topic, partition, offset))
            }
            MetaCommand::AlterScramCredentials { upserts, deletions } => {
                self.security.alter_credentials(upserts, deletions)
            }
            MetaCommand::CreateAcls { bindings } => self.security.create_acls(bindings),
            MetaCommand::DeleteAcls { bindings } => self.security.delete_acls(&bindings),
            MetaCommand::AlterClientQuotas { upserts, deletions } => self.security.alter_quotas(upserts, &deletions),
        };
        outcome.unwrap_or_else(|refusal| refusal)
    }

    /// Partitions of every topic.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// A partition's state, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    fn init_cluster(&mut self, cluster_id: String) -> Outcome {
        validate::cluster_id(&cluster_id).map_err(invalid)?;
        match &self.cluster_id {
            Some(current) if *current != cluster_id => {
                Err(invalid(format!("cluster id is already {current}, not {cluster_id}")))
            }
            Some(_) => Ok(MetaReply::Ok),
            None => {
                self.cluster_id = Some(cluster_id);
                Ok(MetaReply::Ok)
            }
        }
    }

    fn register_node(&mut self, node_id: NodeId, mut info: NodeInfo) -> Outcome {
        validate::node(node_id, &info).map_err(invalid)?;
        if let Some(known) = self.nodes.get(&node_id) {
            info.registered_at_ms = known.registered_at_ms;
            info.last_seen_ms = info.last_seen_ms.max(known.last_seen_ms);
        } else if self.nodes.len() >= NODES_MAX {
            return Err(invalid(format!("the cluster already has {NODES_MAX} nodes")));
        }
        self.nodes.insert(node_id, info);
        Ok(MetaReply::Ok)
    }

    fn create_topic(
        &mut self,
        name: String,
        partitions: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    ) -> Outcome {
        validate::topic_name(&name).map_err(invalid)?;
        if self.topics.contains_key(&name) {
            return Err(MetaReply::TopicExists);
        }
        let replication_factor =
            partitions.first().map(Vec::len).ok_or_else(|| invalid("a topic needs a partition"))?;
        self.check_new_partitions(0, &partitions, replication_factor)?;
        validate::configs(&configs).map_err(invalid)?;
        let id = self.next_topic_id;
        self.next_topic_id = id.checked_add(1).ok_or_else(|| invalid("topic ids are exhausted"))?;
        let partitions = partitions.into_iter().map(PartitionState::new).collect();
        self.topics.insert(name, TopicState { id, configs, partitions });
        Ok(MetaReply::TopicCreated)
    }

    /// Checks partitions to add to a topic that has `existing` of them: bounds, and every
    /// replica list valid with `replication_factor` replicas (Kafka's rule for assignments).
    fn check_new_partitions(&self, existing: usize, new: &[Vec<NodeId>], replication_factor: usize) -> Outcome {
        if new.is_empty() {
            return Err(invalid("no partitions to add"));
        }
        if existing + new.len() > PARTITIONS_PER_TOPIC_MAX {
            return Err(invalid(format!("a topic has at most {PARTITIONS_PER_TOPIC_MAX} partitions")));
        }
        if self.partition_count() + new.len() > PARTITIONS_MAX {
            return Err(invalid(format!("the cluster holds at most {PARTITIONS_MAX} partitions")));
        }
        for replicas in new {
            if replicas.len() != replication_factor {
                return Err(invalid(format!("every partition needs {replication_factor} replicas, got {replicas:?}")));
            }
            validate::replicas(replicas, &self.nodes).map_err(invalid)?;
        }
        Ok(MetaReply::Ok)
    }

    fn set_topic_configs(&mut self, name: &str, configs: BTreeMap<String, String>) -> Outcome {
        validate::configs(&configs).map_err(invalid)?;
        let topic = self.topics.get_mut(name).ok_or(MetaReply::UnknownTopic)?;
        topic.configs = configs;
        Ok(MetaReply::Ok)
    }

    fn create_partitions(&mut self, name: &str, new: Vec<Vec<NodeId>>, count_before: Option<u32>) -> Outcome {
        let topic = self.topics.get(name).ok_or(MetaReply::UnknownTopic)?;
        if let Some(seen) = count_before.filter(|seen| *seen as usize != topic.partitions.len()) {
            return Err(invalid(format!("topic {name} has {} partitions, not {seen}", topic.partitions.len())));
        }
        let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
        self.check_new_partitions(topic.partitions.len(), &new, replication_factor)?;
        let topic = self.topics.get_mut(name).ok_or(MetaReply::UnknownTopic)?;
        topic.partitions.extend(new.into_iter().map(PartitionState::new));
        Ok(MetaReply::Ok)
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Result<&mut PartitionState, MetaReply> {
        let partitions = &mut self.topics.get_mut(topic).ok_or(MetaReply::UnknownTopic)?.partitions;
        let count = partitions.len();
        usize::try_from(partition)
            .ok()
            .and_then(|index| partitions.get_mut(index))
            .ok_or_else(|| invalid(format!("topic {topic} has no partition {partition} (it has {count})")))
    }

    fn report_leader(
        &mut self,
        topic: &str,
        topic_id: Option<u64>,
        partition: i32,
        leader: NodeId,
        epoch: i32,
    ) -> Outcome {
        self.current_topic_id(topic, topic_id)?;
        let state = self.partition_mut(topic, partition)?;
        if !state.may_hold(leader) {
            return Err(invalid(format!("node {leader} is not a replica of {topic}-{partition}")));
        }
        if epoch <= state.leader_epoch {
            return Err(MetaReply::StaleEpoch { current: state.leader_epoch });
        }
        state.leader = Some(leader);
        state.leader_epoch = epoch;
        Ok(MetaReply::Ok)
    }

    /// Refuses a report made for another incarnation of `topic` (None: not checked).
    fn current_topic_id(&self, topic: &str, topic_id: Option<u64>) -> Outcome {
        let current = self.topics.get(topic).map(|t| t.id);
        match topic_id {
            Some(stale) if current.is_some_and(|id| id != stale) => {
                Err(invalid(format!("topic {topic} was re-created; the report is for its id {stale}")))
            }
            _ => Ok(MetaReply::Ok),
        }
    }

    fn report_isr(&mut self, topic: &str, partition: i32, isr: Vec<NodeId>, epoch: i32) -> Outcome {
        let state = self.partition_mut(topic, partition)?;
        validate::distinct(&isr).map_err(invalid)?;
        if let Some(stranger) = isr.iter().find(|node| !state.may_hold(**node)) {
            return Err(invalid(format!("node {stranger} is not a replica of {topic}-{partition}")));
        }
        // One leader reports several ISR changes in its term, so an equal epoch is newer news.
        let current = state.leader_epoch.max(state.isr_epoch);
        if epoch < current {
            return Err(MetaReply::StaleEpoch { current });
        }
        state.isr = isr;
        state.isr_epoch = epoch;
        Ok(MetaReply::Ok)
    }

    /// Raises the partition's log start floor (a lower offset changes nothing).
    fn delete_records(&mut self, topic: &str, partition: i32, offset: i64) -> Outcome {
        if offset < 0 {
            return Err(invalid(format!("offset {offset} is negative")));
        }
        let state = self.partition_mut(topic, partition)?;
        state.log_start_floor = state.log_start_floor.max(offset);
        Ok(MetaReply::Ok)
    }

    fn allocate_producer_ids(&mut self, count: i64) -> Outcome {
        if !(1..=PRODUCER_ID_BLOCK_COUNT_MAX).contains(&count) {
            return Err(invalid(format!("a producer id block holds 1 to {PRODUCER_ID_BLOCK_COUNT_MAX} ids")));
        }
        let first = self.next_producer_id;
        self.next_producer_id = first.checked_add(count).ok_or_else(|| invalid("producer ids are exhausted"))?;
        Ok(MetaReply::ProducerIds { first, count })
    }

    fn reassign_partition(&mut self, topic: &str, partition: i32, replicas: Vec<NodeId>) -> Outcome {
        validate::replicas(&replicas, &self.nodes).map_err(invalid)?;
        let state = self.partition_mut(topic, partition)?;
        state.target_replicas = (replicas != state.replicas).then_some(replicas);
        Ok(MetaReply::Ok)
    }

    fn finish_reassignment(&mut self, topic: &str, partition: i32, replicas: Vec<NodeId>) -> Outcome {
        let state = self.partition_mut(topic, partition)?;
        if state.target_replicas.as_ref() != Some(&replicas) {
            return Err(invalid(format!(
                "{topic}-{partition} is moving to {:?}, not {replicas:?}",
                state.target_replicas
            )));
        }
        // The old replicas that left are no longer in sync; the new ones are, as the group's
        // membership change only completes once they caught up.
        state.isr.retain(|node| replicas.contains(node));
        let joined: Vec<NodeId> = replicas.iter().filter(|node| !state.isr.contains(node)).copied().collect();
        state.isr.extend(joined);
        state.replicas = replicas;
        state.target_replicas = None;
        Ok(MetaReply::Ok)
    }

    fn remove_node(&mut self, node_id: NodeId) -> Outcome {
        if !self.nodes.contains_key(&node_id) {
            return Err(invalid(format!("node {node_id} is not registered")));
        }
        for (name, topic) in &self.topics {
            if let Some(index) = topic.partitions.iter().position(|p| p.may_hold(node_id)) {
                return Err(invalid(format!("node {node_id} still holds a replica of {name}-{index}")));
            }
        }
        self.nodes.remove(&node_id);
        Ok(MetaReply::Ok)
    }
}
