//! What the broker needs to know about the cluster it is part of: the other brokers, where a
//! partition's replicas and leader are, and the way to create a topic cluster-wide (through
//! the metadata Raft group). Implemented by the binary's cluster runtime; a single node has
//! none and answers as the only broker.

use crate::error::BrokerResult;
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
    /// The node that leads the metadata group (Kafka's controller), if known.
    fn controller(&self) -> Option<i32>;
    /// Where a partition's replicas are; None for an unknown partition.
    fn placement(&self, topic: &str, partition: i32) -> Option<Placement>;
    /// Creates a topic through the metadata group; resolves once this node has it.
    fn create_topic(&self, topic: NewTopic) -> ClusterFuture<()>;
    /// Reserves `count` producer ids never handed out before anywhere in the cluster (a block
    /// from the metadata group); resolves with the first.
    fn allocate_producer_ids(&self, count: i64) -> ClusterFuture<i64>;
    /// Checks what `create_topic` would refuse (replication factor, name), creating nothing.
    fn validate_topic(&self, topic: &NewTopic) -> BrokerResult<()>;
}
