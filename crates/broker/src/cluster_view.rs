//! What the broker needs to know about the cluster it is part of: the other brokers, where a
//! partition's replicas and leader are, and the way to create, grow, reconfigure and delete
//! a topic cluster-wide (through the metadata Raft group). Implemented by the binary's
//! cluster runtime; a single node has none and answers as the only broker.

use crate::error::BrokerResult;
use crate::reassignment::{AdminError, Drained, Reassignment};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// A broker as Kafka's Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// Where a partition lives, as the metadata group last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    pub leader: Option<i32>,
    pub epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A topic to create cluster-wide.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// None: the broker's default partition count.
    pub partitions: Option<u32>,
    /// None: the cluster's default replication factor.
    pub replication_factor: Option<u16>,
    pub configs: BTreeMap<String, String>,
}

pub type ClusterFuture<T> = Pin<Box<dyn Future<Output = BrokerResult<T>> + Send>>;

pub trait ClusterView: Send + Sync + 'static {
    /// Every registered node with its Kafka listener.
    fn brokers(&self) -> Vec<BrokerAddress>;
    /// Every registered node by its Kafka listener named `listener` (a security protocol).
    fn brokers_on(&self, listener: &str) -> Vec<BrokerAddress> {
        let _ = listener;
        self.brokers()
    }
    /// The cluster's id as the metadata group agreed it (the first node's), once known.
    fn cluster_id(&self) -> Option<String>;
    /// Some(why) when this node is cut off from the cluster's majority (`/ping` says NOK).
    fn cut_off(&self) -> Option<String> {
        None
    }
    /// The node that leads the metadata group (Kafka's controller), if known.
    fn controller(&self) -> Option<i32>;
    /// Where a partition's replicas are; None for an unknown partition.
    fn placement(&self, topic: &str, partition: i32) -> Option<Placement>;
    /// Creates a topic through the metadata group; resolves once this node has it.
    fn create_topic(&self, topic: NewTopic) -> ClusterFuture<()>;
    /// Deletes a topic through the metadata group; resolves once this node has removed it.
    fn delete_topic(&self, name: &str) -> ClusterFuture<()>;
    /// Grows a topic to `total` partitions through the metadata group (replicas placed as a
    /// new topic's); with `validate_only` only checks. Resolves once this node serves them.
    fn create_partitions(&self, name: &str, total: u32, validate_only: bool) -> ClusterFuture<()>;
    /// Replaces a topic's config overrides (checked by the broker) through the metadata
    /// group; with `validate_only` only checks. Resolves once this node applied them.
    fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> ClusterFuture<()>;
    /// Reserves `count` producer ids never handed out before anywhere in the cluster (a block
    /// from the metadata group); resolves with the first.
    fn allocate_producer_ids(&self, count: i64) -> ClusterFuture<i64>;
    /// Checks what `create_topic` would refuse (replication factor, name), creating nothing.
    fn validate_topic(&self, topic: &NewTopic) -> BrokerResult<()>;
    /// What an operator wants to see: the metadata group, the nodes, this node's partition
    /// replicas with their Raft figures, under-replicated partitions, leaders per node. None
    /// once the cluster node has stopped (the broker outlives it briefly at shutdown).
    fn status(&self) -> Option<ClusterStatus>;
    /// Sends an NSQ publish (`batch`, one v2 RecordBatch) for `topic` (its storage name) to a
    /// node that leads one of its partitions, for a node that leads none (NSQ publishes
    /// locally; only such a node forwards). Resolves once a majority holds it there.
    fn forward_publish(&self, topic: &str, batch: Vec<u8>) -> ClusterFuture<()> {
        let _ = (topic, batch);
        Box::pin(async { Err(crate::error::BrokerError::NotLeader { leader: None }) })
    }

    /// Writes `batch` (one v2 RecordBatch) to partition `partition` of `topic` (its storage
    /// name) through its leader, for a node that does not lead it (an MQTT publish goes to its
    /// key's partition). Resolves with the batch's base offset once a majority holds it.
    fn forward_to_partition(&self, topic: &str, partition: i32, batch: Vec<u8>) -> ClusterFuture<i64> {
        let _ = (topic, partition, batch);
        Box::pin(async { Err(crate::error::BrokerError::NotLeader { leader: None }) })
    }

    /// The groups every other live node coordinates (`group::cluster_listing`); a node that
    /// does not answer in time is left out. A single node has no others.
    fn remote_groups(&self) -> GroupsFuture {
        Box::pin(async { Vec::new() })
    }
    /// Moves a partition to `replicas` (None: cancels its move); resolves once recorded.
    fn reassign(&self, topic: &str, partition: i32, replicas: Option<Vec<i32>>) -> AdminFuture<()> {
        let _ = (topic, partition, replicas);
        Box::pin(async { Err(AdminError::Refused("reassignment is not supported here".into())) })
    }
    /// Every partition move under way.
    fn reassignments(&self) -> Vec<Reassignment> {
        Vec::new()
    }
    /// Makes the partition's first replica its leader (Kafka's preferred election).
    fn elect_preferred(&self, topic: &str, partition: i32) -> AdminFuture<()> {
        let _ = (topic, partition);
        Box::pin(async { Err(AdminError::Refused("elections are not supported here".into())) })
    }
    /// Moves replicas onto a joined node until it holds its share; answers how many
    /// partitions moved.
    fn add_node(&self, node_id: i32) -> AdminFuture<usize> {
        let _ = node_id;
        Box::pin(async { Err(AdminError::Refused("adding nodes is not supported here".into())) })
    }
    /// Elects other in-sync replicas for every partition a node leads.
    fn drain(&self, node_id: i32) -> AdminFuture<Drained> {
        let _ = node_id;
        Box::pin(async { Err(AdminError::Refused("draining is not supported here".into())) })
    }
    /// Moves every replica off a node, then removes it from the cluster.
    fn remove_node(&self, node_id: i32) -> AdminFuture<()> {
        let _ = node_id;
        Box::pin(async { Err(AdminError::Refused("node removal is not supported here".into())) })
    }
    /// Records a replicated partition's new log start (DeleteRecords) cluster-wide; answered
    /// once the metadata group committed it (`replicated_delete_records`).
    fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> ClusterFuture<()> {
        let _ = (topic, partition, offset);
        Box::pin(async { Err(crate::error::BrokerError::NotInCluster("DeleteRecords is not replicated here".into())) })
    }
    /// The log start DeleteRecords recorded for a partition (0 or None: none).
    fn log_start_floor(&self, topic: &str, partition: i32) -> Option<i64> {
        let _ = (topic, partition);
        None
    }
}

pub type GroupsFuture = Pin<Box<dyn Future<Output = Vec<crate::group::cluster_listing::GroupSummary>> + Send>>;

pub type AdminFuture<T> = Pin<Box<dyn Future<Output = Result<T, AdminError>> + Send>>;

/// A Raft group member's role, as openraft's server state (a follower that is no voter is
/// a learner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftRole {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// One follower's progress, as the group's leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowerStatus {
    pub node_id: u64,
    /// The last log index the follower is known to hold; None: nothing yet.
    pub matched_index: Option<u64>,
    /// The leader's last log index minus `matched_index`, in entries.
    pub lag: u64,
}

/// One Raft group as this node's member of it sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    pub role: RaftRole,
    pub term: u64,
    pub leader: Option<u64>,
    /// The last applied (so committed) log index; None: nothing applied yet.
    pub commit_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// On the leader: every other member's progress; empty elsewhere.
    pub followers: Vec<FollowerStatus>,
}

/// A registered node and its listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub cluster_addr: String,
    pub kafka_addr: String,
    pub nsq_tcp_addr: String,
    pub http_addr: String,
    pub rack: Option<String>,
    /// "voter", "learner" or "none": its place in the metadata group.
    pub metadata_member: &'static str,
    /// When it last registered, ms since the epoch (its clock).
    pub last_seen_ms: i64,
    /// Whether it answered the reporting node's ping within the last few seconds (always true
    /// for the reporting node itself): reachability from there, not a cluster-wide verdict.
    /// None: not known yet (the reporting node has pinged it only briefly, with no answer).
    pub up: Option<bool>,
    /// Milliseconds since it last answered the reporting node's ping (0 for itself); None:
    /// never since the reporting node started.
    pub last_contact_ms: Option<u64>,
    /// Bytes its partition logs hold on disk, as its last answer said; None: never answered.
    pub stored_bytes: Option<u64>,
    /// Partitions it leads, per the reporting node's view.
    pub partitions_led: usize,
    /// Partition replicas placed on it by the metadata.
    pub replicas: usize,
}

/// One partition replica this node hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    #[serde(flatten)]
    pub raft: GroupStatus,
    pub replicas: Vec<u64>,
    /// On the leader: the replicas caught up with the commit index; elsewhere the metadata's.
    pub isr: Vec<u64>,
    pub under_replicated: bool,
}

/// A partition of the cluster named by topic and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i32,
    pub leader: Option<u64>,
    pub replicas: Vec<u64>,
    pub isr: Vec<u64>,
    /// Replicas on nodes that are down as the reporting node sees them (`NodeStatus::up` false).
    pub offline_replicas: Vec<u64>,
}

/// How many partitions a node leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leadership {
    pub node_id: u64,
    pub partitions: usize,
}

/// The cluster as this node sees it (`GET /api/cluster`, `sluice cluster status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub cluster_id: Option<String>,
    pub metadata: GroupStatus,
    pub nodes: Vec<NodeStatus>,
    /// This node's partition replicas.
    pub partitions: Vec<PartitionStatus>,
    /// Every partition of the cluster, by topic and index: the metadata's replicas, the leader
    /// and ISR (this node's Raft figures where it leads, the metadata's elsewhere).
    pub placement: Vec<PartitionRef>,
    /// Every partition of the cluster whose ISR is smaller than its replicas (this node's
    /// Raft figures where it leads, the metadata's elsewhere).
    pub under_replicated: Vec<PartitionRef>,
    /// Partitions led per registered node (0 included).
    pub leaders: Vec<Leadership>,
}
