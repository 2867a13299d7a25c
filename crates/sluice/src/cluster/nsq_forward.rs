//! An NSQ publish on a node that leads none of the topic's partitions: NSQ publishes locally,
//! so a node that leads a partition writes there (`channel::registry`); only one that leads
//! none sends the batch on (a node request over the cluster transport) to a node that does,
//! which writes it to a partition it leads and answers once a majority of that partition's
//! replicas hold it, the durability of a local publish.

use super::node_rpc::{NodeReply, NodeRequest};
use super::replica::broker_id;
use super::ClusterNode;
use sluice_broker::{Broker, BrokerError, BrokerResult, Durability};
use sluice_cluster::transport::Transport;
use sluice_cluster::types::NodeId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a forwarded publish may take at the leader: its majority commit (a produce
/// request's order of time under load, with room for a slow fsync).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node waits for a topic's partitions to have a reachable leader: a new topic's
/// first election or a failover (about a second), twice over.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// Pause between two attempts while no leader takes the publish.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Spreads forwarded and forwarded-to publishes over the partitions, as a local publish
/// round-robins over the partitions it leads.
static ROTATION: AtomicUsize = AtomicUsize::new(0);

impl ClusterNode {
    /// Sends the publish to a node that leads one of the topic's partitions; retried (bounded
    /// by `LEADER_WAIT`) while none is known or the one asked no longer leads. A retry after
    /// a lost answer may write the messages twice: NSQ delivers at least once anyway.
    pub(super) async fn forward_publish(&self, topic: &str, batch: Vec<u8>) -> BrokerResult<()> {
        let request = NodeRequest::Publish { topic: topic.to_string(), batch: batch.clone() };
        let body = bincode::serialize(&request).map_err(|e| BrokerError::Storage(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        let mut last_error = None;
        loop {
            match self.publish_target(topic) {
                Some(Target::Here) => match append_led(&self.broker, topic, batch.clone()).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last_error = Some(e),
                },
                Some(Target::Node(addr)) => match request_publish(&self.transport, &addr, body.clone()).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last_error = Some(e),
                },
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(match last_error {
                    Some(why) => BrokerError::Storage(format!("forwarded publish failed: {why}")),
                    None => BrokerError::NotLeader { leader: None },
                });
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// The node leading the next partition (in rotation) that has a known, live leader.
    fn publish_target(&self, topic: &str) -> Option<Target> {
        let state = self.state();
        let count = state.topics.get(topic)?.partitions.len();
        let start = ROTATION.fetch_add(1, Ordering::Relaxed);
        (0..count).find_map(|i| {
            let partition = ((start + i) % count) as i32;
            let leader = self.placement_of(topic, partition)?.leader?;
            if leader == broker_id(self.node_id) {
                return Some(Target::Here);
            }
            let info = state.nodes.get(&NodeId::try_from(leader).ok()?)?;
            Some(Target::Node(info.cluster_addr.clone()))
        })
    }
}

enum Target {
    /// This node leads a partition now (leadership moved since the publish looked).
    Here,
    /// The leader's cluster address.
    Node(String),
}

/// Whether `body` is a forwarded publish: (storage topic, batch).
pub fn publish_asked(body: &[u8]) -> Option<(String, Vec<u8>)> {
    match bincode::deserialize(body) {
        Ok(NodeRequest::Publish { topic, batch }) => Some((topic, batch)),
        _ => None,
    }
}

/// The receiving side: writes the batch to a partition this node leads.
pub async fn publish_here(broker: Arc<Broker>, topic: String, batch: Vec<u8>) -> Result<Vec<u8>, String> {
    let reply = match append_led(&broker, &topic, batch).await {
        Ok(()) => NodeReply::Published,
        Err(why) => NodeReply::Refused(why),
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

/// Appends to one of the partitions this node leads (in rotation), answered after the
/// majority commit.
async fn append_led(broker: &Broker, topic: &str, batch: Vec<u8>) -> Result<(), String> {
    let partitions = broker.topic(topic).ok_or_else(|| format!("unknown topic {topic}"))?.partitions();
    let start = ROTATION.fetch_add(1, Ordering::Relaxed);
    let node = broker.node_id();
    let index = (0..partitions.len())
        .map(|i| (start + i) % partitions.len())
        .find(|i| partitions[*i].role(node).is_leader)
        .ok_or_else(|| format!("node {node} leads no partition of {topic}"))?;
    partitions[index].append(batch, Durability::Committed).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Asks the node at `addr` to write a publish (`body`, a serialized `NodeRequest::Publish`).
async fn request_publish(transport: &Transport, addr: &str, body: Vec<u8>) -> Result<(), String> {
    let reply = transport.node_request(addr, body, FORWARD_TIMEOUT).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Published => Ok(()),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to a publish: {other:?}")),
    }
}
