//! A write for one given partition on a node that does not lead it: an MQTT publish goes to
//! its key's partition (so one MQTT topic's messages stay in order in one partition), which
//! may be led elsewhere. The batch is sent (a node request over the cluster transport) to the
//! partition's leader, which appends it and answers once a majority of the replicas hold it,
//! with its offset: the durability, and the answer, of a local append.

use super::node_rpc::{NodeReply, NodeRequest};
use super::replica::broker_id;
use super::ClusterNode;
use sluice_broker::{Broker, BrokerError, BrokerResult, Durability};
use sluice_cluster::transport::Transport;
use sluice_cluster::types::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// How long the leader may take to commit the write (as a forwarded NSQ publish).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node waits for the partition to have a reachable leader: a new topic's first
/// election or a failover (about a second), twice over.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// Pause between two attempts while no leader takes the write.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

impl ClusterNode {
    /// Writes `batch` to `topic`'s partition `partition` through its leader (this node, if
    /// leadership moved here); retried, bounded by `LEADER_WAIT`, while no leader is known or
    /// the one asked no longer leads. A retry after a lost answer may write the batch twice
    /// (as a Kafka producer without idempotence would).
    pub(super) async fn forward_to_partition(&self, topic: &str, partition: i32, batch: Vec<u8>) -> BrokerResult<i64> {
        let request = NodeRequest::PublishTo { topic: topic.to_string(), partition, batch: batch.clone() };
        let body = bincode::serialize(&request).map_err(|e| BrokerError::Storage(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let mut last_error = None;
        loop {
            let outcome = match self.leader_address(topic, partition) {
                Some(None) => Some(append_here(&self.broker, topic, partition, batch.clone()).await),
                Some(Some(addr)) => Some(request_publish(&self.transport, &addr, body.clone()).await),
                None => None,
            };
            match outcome {
                Some(Ok(base_offset)) => return Ok(base_offset),
                Some(Err(why)) => last_error = Some(why),
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(match last_error {
                    Some(why) => BrokerError::Storage(format!("forwarded write failed: {why}")),
                    None => BrokerError::NotLeader { leader: None },
                });
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// The partition's live leader: `Some(None)` when it is this node, its cluster address
    /// otherwise, `None` while none is known.
    fn leader_address(&self, topic: &str, partition: i32) -> Option<Option<String>> {
        let leader = self.placement_of(topic, partition)?.leader?;
        if leader == broker_id(self.node_id) {
            return Some(None);
        }
        let state = self.state();
        let info = state.nodes.get(&NodeId::try_from(leader).ok()?)?;
        Some(Some(info.cluster_addr.clone()))
    }
}

/// Whether `body` is a forwarded partition write: (storage topic, partition, batch).
pub fn publish_to_asked(body: &[u8]) -> Option<(String, i32, Vec<u8>)> {
    match bincode::deserialize(body) {
        Ok(NodeRequest::PublishTo { topic, partition, batch }) => Some((topic, partition, batch)),
        _ => None,
    }
}

/// The receiving side: appends the batch if this node leads the partition.
pub async fn publish_here(
    broker: Arc<Broker>,
    topic: String,
    partition: i32,
    batch: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let reply = match append_here(&broker, &topic, partition, batch).await {
        Ok(base_offset) => NodeReply::PublishedAt { base_offset },
        Err(why) => NodeReply::Refused(why),
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

/// Appends to the partition, which this node must lead; answered after the majority commit.
async fn append_here(broker: &Broker, topic: &str, partition: i32, batch: Vec<u8>) -> Result<i64, String> {
    let target = broker.topic(topic).and_then(|t| t.partition(partition));
    let target = target.ok_or_else(|| format!("unknown partition {topic}-{partition}"))?;
    if !target.role(broker.node_id()).is_leader {
        return Err(format!("node {} does not lead {topic}-{partition}", broker.node_id()));
    }
    let outcome = target.append(batch, Durability::Committed).await.map_err(|e| e.to_string())?;
    Ok(outcome.base_offset)
}

/// Asks the node at `addr` to write a partition's batch (`body`, a `NodeRequest::PublishTo`).
async fn request_publish(transport: &Transport, addr: &str, body: Vec<u8>) -> Result<i64, String> {
    let reply = transport.node_request(addr, body, FORWARD_TIMEOUT).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::PublishedAt { base_offset } => Ok(base_offset),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to a partition write: {other:?}")),
    }
}
