//! The broker's view of the cluster (`sluice_broker::cluster_view::ClusterView`), read from
//! the metadata state as applied on this node; topic creation is a metadata command.

use super::replica::broker_id;
use super::topic_admin::stopped_or;
use super::ClusterNode;
use sluice_broker::cluster_view::{AdminFuture, GroupsFuture};
use sluice_broker::cluster_view::{BrokerAddress, ClusterFuture, ClusterStatus, ClusterView, NewTopic, Placement};
use sluice_broker::reassignment::{AdminError, Drained, Reassignment};
use sluice_broker::{BrokerError, BrokerResult};
use sluice_cluster::meta::{assign_replicas, MetaCommand, MetaReply, PlacementError};
use sluice_cluster::types::{GroupId, NodeId};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long CreateTopics waits for the new topic's partitions to get leaders here, after
/// the metadata group committed it: a first election or two.
const CREATED_WAIT: Duration = Duration::from_secs(10);

/// Held by the broker; weak, as the cluster node holds the broker.
pub struct View(pub Weak<ClusterNode>);

impl ClusterNode {
    /// The replication factor a topic gets when the request names none: the smaller of 3
    /// and the number of voters, unless `--default-replication-factor` says otherwise.
    pub fn default_replication_factor(&self) -> u16 {
        let voters = self.voters().len().max(1) as u16;
        self.settings
            .default_replication_factor
            .unwrap_or(super::super::settings::cluster::REPLICATION_FACTOR_DEFAULT_MAX.min(voters))
    }

    /// Registered nodes, the candidates for replicas.
    pub(super) fn nodes(&self) -> Vec<NodeId> {
        self.state().nodes.keys().copied().collect()
    }

    async fn create_topic(self: Arc<Self>, topic: NewTopic) -> BrokerResult<()> {
        let state = self.state();
        if state.topics.contains_key(&topic.name) {
            return Err(BrokerError::TopicAlreadyExists);
        }
        let partitions = topic.partitions.unwrap_or(self.broker.config().default_partitions);
        let factor = topic.replication_factor.unwrap_or_else(|| self.default_replication_factor());
        let replicas =
            assign_replicas(&self.nodes(), &state, partitions as i32, factor as i16).map_err(placement_error)?;
        let command =
            MetaCommand::CreateTopic { name: topic.name.clone(), partitions: replicas, configs: topic.configs };
        match self.propose_meta(&command).await? {
            MetaReply::TopicCreated | MetaReply::Ok => {}
            MetaReply::TopicExists => return Err(BrokerError::TopicAlreadyExists),
            MetaReply::Invalid(why) => return Err(BrokerError::InvalidConfig(why)),
            other => return Err(BrokerError::Storage(format!("unexpected metadata reply {other:?}"))),
        }
        self.wait_until_served(&topic.name).await;
        Ok(())
    }

    /// Waits (bounded) until the topic exists here and each of its partitions has a leader,
    /// so the client's next Metadata finds it ready.
    pub(super) async fn wait_until_served(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + CREATED_WAIT;
        while tokio::time::Instant::now() < deadline {
            let ready = self.broker.topic(name).is_some_and(|t| {
                t.partitions().iter().all(|p| match p.replica() {
                    Some(r) => r.role().leader.is_some(),
                    None => self.placement_of(name, p.index).is_some_and(|pl| pl.leader.is_some()),
                })
            });
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) fn placement_of(&self, topic: &str, partition: i32) -> Option<Placement> {
        let state = self.state();
        let p = state.partition(topic, partition)?;
        // A leader this node hosts a replica of knows better than the last report.
        let topic_id = state.topics.get(topic)?.id;
        let local = self.group(&GroupId::Partition { topic: topic.to_string(), partition, topic_id });
        let leader = local.and_then(|raft| raft.metrics().borrow().current_leader).or(p.leader);
        // A leader known dead is no leader to send clients to (`failover`).
        let leader = self.deaths.dead_filtered(leader);
        Some(Placement {
            leader: leader.map(broker_id),
            epoch: p.leader_epoch.max(0),
            replicas: p.replicas.iter().copied().map(broker_id).collect(),
            isr: p.isr.iter().copied().map(broker_id).collect(),
        })
    }
}

pub(super) fn placement_error(e: PlacementError) -> BrokerError {
    match e {
        PlacementError::ReplicationFactorTooLarge => BrokerError::InvalidReplicationFactor(
            "replication factor is larger than the number of nodes in the cluster".into(),
        ),
        PlacementError::InvalidReplicationFactor(n) => BrokerError::InvalidReplicationFactor(format!("{n}")),
        other => BrokerError::InvalidPartitions(other.to_string()),
    }
}

impl ClusterView for View {
    fn brokers(&self) -> Vec<BrokerAddress> {
        self.brokers_on("")
    }

    /// Each node by its listener named `listener`, or the address it registered first when
    /// it has none of that name.
    fn brokers_on(&self, listener: &str) -> Vec<BrokerAddress> {
        let Some(node) = self.0.upgrade() else { return Vec::new() };
        node.state()
            .nodes
            .iter()
            .filter_map(|(id, info)| {
                let addr = info.kafka_listeners.get(listener).unwrap_or(&info.kafka_addr);
                let (host, port) = addr.rsplit_once(':')?;
                Some(BrokerAddress {
                    node_id: broker_id(*id),
                    host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port: port.parse().ok()?,
                    rack: info.rack.clone(),
                })
            })
            .collect()
    }

    fn cluster_id(&self) -> Option<String> {
        self.0.upgrade()?.state().cluster_id.clone()
    }

    fn cut_off(&self) -> Option<String> {
        self.0.upgrade()?.cut_off()
    }

    fn controller(&self) -> Option<i32> {
        self.0.upgrade()?.meta_leader().map(broker_id)
    }

    fn placement(&self, topic: &str, partition: i32) -> Option<Placement> {
        self.0.upgrade()?.placement_of(topic, partition)
    }

    fn create_topic(&self, topic: NewTopic) -> ClusterFuture<()> {
        let node = self.0.upgrade();
        Box::pin(async move {
            let node = node.ok_or_else(|| BrokerError::Storage("the cluster node stopped".into()))?;
            node.create_topic(topic).await
        })
    }

    fn delete_topic(&self, name: &str) -> ClusterFuture<()> {
        let (node, name) = (self.0.upgrade(), name.to_string());
        Box::pin(async move { stopped_or(node)?.delete_topic(&name).await })
    }

    fn create_partitions(&self, name: &str, total: u32, validate_only: bool) -> ClusterFuture<()> {
        let (node, name) = (self.0.upgrade(), name.to_string());
        Box::pin(async move { stopped_or(node)?.create_partitions(&name, total, validate_only).await })
    }

    fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> ClusterFuture<()> {
        let (node, name) = (self.0.upgrade(), name.to_string());
        Box::pin(async move { stopped_or(node)?.set_topic_configs(&name, configs, validate_only).await })
    }

    fn allocate_producer_ids(&self, count: i64) -> ClusterFuture<i64> {
        let node = self.0.upgrade();
        Box::pin(async move {
            let node = node.ok_or_else(|| BrokerError::Storage("the cluster node stopped".into()))?;
            match node.propose_meta(&MetaCommand::AllocateProducerIds { count }).await? {
                MetaReply::ProducerIds { first, .. } => Ok(first),
                other => Err(BrokerError::Storage(format!("producer ids refused: {other:?}"))),
            }
        })
    }

    fn validate_topic(&self, topic: &NewTopic) -> BrokerResult<()> {
        let node = self.0.upgrade().ok_or_else(|| BrokerError::Storage("the cluster node stopped".into()))?;
        let state = node.state();
        if state.topics.contains_key(&topic.name) {
            return Err(BrokerError::TopicAlreadyExists);
        }
        let partitions = topic.partitions.unwrap_or(node.broker.config().default_partitions);
        let factor = topic.replication_factor.unwrap_or_else(|| node.default_replication_factor());
        assign_replicas(&node.nodes(), &state, partitions as i32, factor as i16).map(|_| ()).map_err(placement_error)
    }

    fn forward_publish(&self, topic: &str, batch: Vec<u8>) -> ClusterFuture<()> {
        let (node, topic) = (self.0.upgrade(), topic.to_string());
        Box::pin(async move { stopped_or(node)?.forward_publish(&topic, batch).await })
    }

    fn forward_to_partition(&self, topic: &str, partition: i32, batch: Vec<u8>) -> ClusterFuture<i64> {
        let (node, topic) = (self.0.upgrade(), topic.to_string());
        Box::pin(async move { stopped_or(node)?.forward_to_partition(&topic, partition, batch).await })
    }

    fn status(&self) -> Option<ClusterStatus> {
        Some(self.0.upgrade()?.status())
    }

    fn remote_groups(&self) -> GroupsFuture {
        let node = self.0.upgrade();
        Box::pin(async move {
            match node {
                Some(node) => node.remote_groups().await,
                None => Vec::new(),
            }
        })
    }

    fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> ClusterFuture<()> {
        let (node, topic) = (self.0.upgrade(), topic.to_string());
        Box::pin(async move { stopped_or(node)?.delete_records(&topic, partition, offset).await })
    }

    fn log_start_floor(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.upgrade()?.state().partition(topic, partition).map(|p| p.log_start_floor)
    }

    fn reassign(&self, topic: &str, partition: i32, replicas: Option<Vec<i32>>) -> AdminFuture<()> {
        let (node, topic) = (self.0.upgrade(), topic.to_string());
        Box::pin(async move { stopped(node)?.reassign(&topic, partition, replicas).await })
    }

    fn reassignments(&self) -> Vec<Reassignment> {
        self.0.upgrade().map(|node| node.reassignments()).unwrap_or_default()
    }

    fn elect_preferred(&self, topic: &str, partition: i32) -> AdminFuture<()> {
        let (node, topic) = (self.0.upgrade(), topic.to_string());
        Box::pin(async move { stopped(node)?.elect_preferred(&topic, partition).await })
    }

    fn add_node(&self, node_id: i32) -> AdminFuture<usize> {
        let node = self.0.upgrade();
        Box::pin(async move { stopped(node)?.add_node(node_id).await })
    }

    fn drain(&self, node_id: i32) -> AdminFuture<Drained> {
        let node = self.0.upgrade();
        Box::pin(async move { stopped(node)?.drain(node_id).await })
    }

    fn remove_node(&self, node_id: i32) -> AdminFuture<()> {
        let node = self.0.upgrade();
        Box::pin(async move { stopped(node)?.remove_node(node_id).await })
    }
}

fn stopped(node: Option<Arc<ClusterNode>>) -> Result<Arc<ClusterNode>, AdminError> {
    node.ok_or_else(|| AdminError::Unavailable("the cluster node stopped".into()))
}

/// Makes the broker part of the cluster.
pub fn attach(node: &Arc<ClusterNode>) -> BrokerResult<()> {
    node.broker.set_cluster(Arc::new(View(Arc::downgrade(node))))
}
