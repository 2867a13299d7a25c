//! Node-level requests between nodes, carried opaquely by the transport: a new node asking to
//! join the metadata group (a node that does not lead the group forwards it to the one that
//! does), and the liveness ping (answered by the node asked, never forwarded).

use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use sluice_broker::Broker;
use sluice_cluster::transport::Transport;
use sluice_cluster::types::{NodeId, Raft};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The metadata group keeps at most this many voters (Kafka's KRaft advice: 3 or 5); later
/// nodes are learners: they follow the metadata and host partitions, but do not vote on it.
pub const META_VOTERS_MAX: usize = 5;
/// How long a join may take, membership change included.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
pub enum NodeRequest {
    Join {
        node_id: NodeId,
        cluster_addr: String,
    },
    /// Are you there? (`liveness`)
    Ping,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum NodeReply {
    Joined {
        voter: bool,
    },
    Refused(String),
    /// The answer to a ping, with the bytes the node's partition logs hold.
    Pong {
        stored_bytes: u64,
    },
}

pub async fn handle(
    meta: Raft,
    transport: Arc<Transport>,
    broker: Arc<Broker>,
    body: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let request: NodeRequest = bincode::deserialize(&body).map_err(|e| format!("bad node request: {e}"))?;
    let reply = match request {
        NodeRequest::Ping => NodeReply::Pong { stored_bytes: super::liveness::stored_bytes(&broker) },
        NodeRequest::Join { node_id, cluster_addr } => {
            let metrics = meta.metrics().borrow().clone();
            if metrics.current_leader != Some(metrics.id) {
                let leader = metrics.current_leader.ok_or("no metadata leader yet")?;
                let membership = metrics.membership_config.membership();
                let node = membership.get_node(&leader).cloned().ok_or("leader address unknown")?;
                return transport.node_request(&node.addr, body, JOIN_TIMEOUT).await.map_err(|e| e.to_string());
            }
            join(&meta, node_id, cluster_addr).await
        }
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

async fn join(meta: &Raft, node_id: NodeId, cluster_addr: String) -> NodeReply {
    if let Err(e) = meta.add_learner(node_id, BasicNode { addr: cluster_addr }, true).await {
        return NodeReply::Refused(format!("cannot add the node: {e}"));
    }
    let voters: BTreeSet<NodeId> = meta.metrics().borrow().membership_config.membership().voter_ids().collect();
    if voters.contains(&node_id) || voters.len() >= META_VOTERS_MAX {
        return NodeReply::Joined { voter: voters.contains(&node_id) };
    }
    match meta.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true).await {
        Ok(_) => NodeReply::Joined { voter: true },
        Err(e) => NodeReply::Refused(format!("cannot make the node a voter: {e}")),
    }
}

/// The joining side: asks `through` until the cluster has taken this node.
pub async fn request_join(
    transport: &Transport,
    through: &str,
    node_id: NodeId,
    cluster_addr: &str,
) -> Result<bool, String> {
    let body = bincode::serialize(&NodeRequest::Join { node_id, cluster_addr: cluster_addr.to_string() })
        .map_err(|e| e.to_string())?;
    let reply = transport.node_request(through, body, JOIN_TIMEOUT).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Joined { voter } => Ok(voter),
        NodeReply::Refused(why) => Err(why),
        NodeReply::Pong { .. } => Err("a ping's answer to a join".to_string()),
    }
}
