//! Node-level requests between nodes, carried opaquely by the transport: a new node asking to
//! join the metadata group and `remove-node` asking one to leave it (a node that does not lead
//! the group forwards them to the one that does), the liveness ping (answered by the node
//! asked, never forwarded), ElectLeaders asking a preferred replica to stand, and a follower
//! whose leader died asking the other voters who should stand (`failover`), an NSQ
//! publish sent on to a node that leads one of the topic's partitions (`nsq_forward`), and a
//! node listing the cluster's consumer groups asking each other node for the groups it
//! coordinates (`group_listing`).

use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use sluice_broker::group::cluster_listing::{local_groups, GroupSummary};
use sluice_broker::reassignment::Drained;
use sluice_broker::Broker;
use sluice_cluster::transport::Transport;
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// The metadata group keeps at most this many voters (Kafka's KRaft advice: 3 or 5); later
/// nodes are learners: they follow the metadata and host partitions, but do not vote on it.
pub const META_VOTERS_MAX: usize = 5;
/// Voters the metadata group keeps when a node leaves and learners can replace it: three
/// tolerate one failure.
const META_VOTERS_MIN: usize = 3;
/// How long a join may take, membership change included.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to hand over its leadership (its elections run at once, each
/// bounded in `elect`).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long asking a replica to call an election may take (it only starts it).
const ELECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
pub enum NodeRequest {
    Join {
        node_id: NodeId,
        cluster_addr: String,
    },
    /// Are you there? (`liveness`)
    Ping,
    /// `sluice cluster remove-node`: the node leaves the metadata group (its replicas moved).
    Leave {
        node_id: NodeId,
    },
    /// ElectLeaders: the receiving node, a partition's preferred replica, calls an election.
    Elect {
        topic: String,
        partition: i32,
    },
    /// `sluice cluster drain`: the receiving node hands over the leadership it holds.
    Drain,
    /// A follower whose leader died asks the group's other voters who should stand
    /// (`failover`); answered by the node asked, never forwarded.
    Standing {
        group: GroupId,
    },
    /// An NSQ publish from a node that leads none of the topic's partitions, to be written
    /// to one this node leads (`nsq_forward`); answered by the node asked, never forwarded.
    Publish {
        topic: String,
        batch: Vec<u8>,
    },
    /// Which consumer groups do you coordinate? (`group_listing`); answered by the node asked.
    ListGroups,
    /// A write for one partition from a node that does not lead it (an MQTT publish goes to
    /// its key's partition: `partition_forward`); answered by the node asked, which must lead
    /// it. Last, so the variants before keep their wire numbers.
    PublishTo {
        topic: String,
        partition: i32,
        batch: Vec<u8>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum NodeReply {
    Joined {
        voter: bool,
    },
    Left,
    Electing,
    Refused(String),
    /// The answer to a ping, with the bytes the node's partition logs hold.
    Pong {
        stored_bytes: u64,
    },
    Drained(Drained),
    /// This node's last log index in the group asked and what is left of its leader lease.
    Standing {
        last_log_index: Option<u64>,
        lease_left_ms: u64,
    },
    /// The forwarded publish is committed by a majority of the partition's replicas.
    Published,
    /// The consumer groups this node coordinates.
    Groups(Vec<GroupSummary>),
    /// A `PublishTo` committed by a majority, at this offset.
    PublishedAt {
        base_offset: i64,
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
        NodeRequest::ListGroups => NodeReply::Groups(local_groups(&broker)),
        // Answered where they arrive (`ClusterNode::node_request`), never forwarded.
        NodeRequest::Drain => NodeReply::Refused("a drain is done by the node itself".into()),
        NodeRequest::Elect { .. } => NodeReply::Refused("an election is called by the partition's replica".into()),
        NodeRequest::Standing { .. } => NodeReply::Refused("answered by the group's replica".into()),
        NodeRequest::Publish { .. } | NodeRequest::PublishTo { .. } => {
            NodeReply::Refused("a publish is written by the node asked".into())
        }
        NodeRequest::Join { .. } | NodeRequest::Leave { .. } => {
            return membership(&meta, &transport, request, body).await;
        }
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

/// A join or a leave: made by the metadata group's leader, forwarded there from other nodes.
async fn membership(
    meta: &Raft,
    transport: &Transport,
    request: NodeRequest,
    body: Vec<u8>,
) -> Result<Vec<u8>, String> {
    if !leads(meta) {
        return forward_to_leader(meta, transport, body).await;
    }
    let reply = match request {
        NodeRequest::Join { node_id, cluster_addr } => join(meta, node_id, cluster_addr).await,
        NodeRequest::Leave { node_id } => leave(meta, node_id).await,
        NodeRequest::Ping
        | NodeRequest::Elect { .. }
        | NodeRequest::Drain
        | NodeRequest::Standing { .. }
        | NodeRequest::Publish { .. }
        | NodeRequest::PublishTo { .. }
        | NodeRequest::ListGroups => NodeReply::Refused("not a membership request".into()),
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

fn leads(meta: &Raft) -> bool {
    let metrics = meta.metrics();
    let m = metrics.borrow();
    m.current_leader == Some(m.id)
}

/// Sends a membership request on to the metadata group's leader and returns its answer.
async fn forward_to_leader(meta: &Raft, transport: &Transport, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let addr = {
        let metrics = meta.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader.ok_or("no metadata leader yet")?;
        let node = m.membership_config.membership().get_node(&leader).cloned().ok_or("leader address unknown")?;
        node.addr
    };
    transport.node_request(&addr, body, JOIN_TIMEOUT).await.map_err(|e| e.to_string())
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

/// Removes a node from the metadata group. A voter that leaves is replaced by a learner
/// while the group would have fewer than three voters, so it keeps tolerating a failure.
async fn leave(meta: &Raft, node_id: NodeId) -> NodeReply {
    let (voters, learners): (BTreeSet<NodeId>, BTreeSet<NodeId>) = {
        let metrics = meta.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        (membership.voter_ids().collect(), membership.learner_ids().collect())
    };
    let change = if voters.contains(&node_id) {
        let mut remaining: BTreeSet<NodeId> = voters.iter().copied().filter(|id| *id != node_id).collect();
        if remaining.is_empty() {
            return NodeReply::Refused("the last voter of the metadata group cannot leave".into());
        }
        if remaining.len() < META_VOTERS_MIN {
            remaining
                .extend(learners.iter().copied().filter(|id| *id != node_id).take(META_VOTERS_MIN - remaining.len()));
        }
        ChangeMembers::ReplaceAllVoters(remaining)
    } else if learners.contains(&node_id) {
        ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
    } else {
        return NodeReply::Left;
    };
    match meta.change_membership(change, false).await {
        Ok(_) => NodeReply::Left,
        Err(e) => NodeReply::Refused(format!("cannot remove the node from the metadata group: {e}")),
    }
}

/// Asks the metadata group's leader (through `meta`'s node, forwarded when it does not lead)
/// to remove `node_id` from the group.
pub async fn request_leave(meta: Raft, transport: Arc<Transport>, node_id: NodeId) -> Result<(), String> {
    let request = NodeRequest::Leave { node_id };
    let body = bincode::serialize(&request).map_err(|e| e.to_string())?;
    let reply = membership(&meta, &transport, request, body).await?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Left => Ok(()),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to a leave: {other:?}")),
    }
}

/// Whether `body` asks this node itself to call a partition's election: (topic, partition).
pub fn election_asked(body: &[u8]) -> Option<(String, i32)> {
    match bincode::deserialize(body) {
        Ok(NodeRequest::Elect { topic, partition }) => Some((topic, partition)),
        _ => None,
    }
}

/// Calls an election in `raft`, this node's replica of the partition (None: it has none).
/// Raft's vote rule makes it win only with every committed entry.
pub async fn elect(raft: Option<Raft>) -> Result<Vec<u8>, String> {
    let reply = match raft {
        None => NodeReply::Refused("this node runs no replica of the partition".into()),
        Some(raft) => match raft.trigger().elect().await {
            Ok(()) => NodeReply::Electing,
            Err(e) => NodeReply::Refused(format!("cannot call an election: {e}")),
        },
    };
    bincode::serialize(&reply).map_err(|e| e.to_string())
}

/// Whether `body` asks this node to hand over its leadership.
pub fn drain_asked(body: &[u8]) -> bool {
    matches!(bincode::deserialize(body), Ok(NodeRequest::Drain))
}

/// Asks the node at `addr` to hand over the leadership it holds; what it did.
pub async fn request_drain(transport: &Transport, addr: &str) -> Result<Drained, String> {
    let body = bincode::serialize(&NodeRequest::Drain).map_err(|e| e.to_string())?;
    let reply = transport.node_request(addr, body, DRAIN_TIMEOUT).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Drained(drained) => Ok(drained),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to a drain: {other:?}")),
    }
}

/// Asks the node at `addr` to call an election of `topic`/`partition`.
pub async fn request_election(transport: &Transport, addr: &str, topic: &str, partition: i32) -> Result<(), String> {
    let body =
        bincode::serialize(&NodeRequest::Elect { topic: topic.to_string(), partition }).map_err(|e| e.to_string())?;
    let reply = transport.node_request(addr, body, ELECT_TIMEOUT).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Electing => Ok(()),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to an election: {other:?}")),
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
        other => Err(format!("unexpected reply to a join: {other:?}")),
    }
}

/// Asks the node at `addr` for the consumer groups it coordinates, waiting `timeout` at most.
pub async fn request_groups(transport: &Transport, addr: &str, timeout: Duration) -> Result<Vec<GroupSummary>, String> {
    let body = bincode::serialize(&NodeRequest::ListGroups).map_err(|e| e.to_string())?;
    let reply = transport.node_request(addr, body, timeout).await.map_err(|e| e.to_string())?;
    match bincode::deserialize(&reply).map_err(|e| e.to_string())? {
        NodeReply::Groups(groups) => Ok(groups),
        NodeReply::Refused(why) => Err(why),
        other => Err(format!("unexpected reply to a group list: {other:?}")),
    }
}
