//! Whether the other nodes are up, as this node sees them: every PROBE_INTERVAL this node
//! pings each registered node over the cluster transport (a node-level request, answered by
//! the peer itself, never forwarded) and remembers when each last answered and the bytes its
//! partition logs hold. A node is up while its last answer is younger than DOWN_AFTER, down
//! after that (or when it has not answered at all within DOWN_AFTER of the first ping), and
//! not known yet before.
//!
//! This is reachability from this node, not a cluster-wide verdict: a node cut off from this
//! one alone is down here and may be up elsewhere. It is what an operator looking at one node's
//! console can honestly be told, and it needs nothing from the Raft groups (a node that leads
//! nothing still answers).

use super::node_rpc::{NodeReply, NodeRequest};
use super::ClusterNode;
use sluice_broker::Broker;
use sluice_cluster::types::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often each node is pinged: often enough that a dead node shows within seconds on a
/// console polling every 2 s, rare enough to cost nothing (one small request per peer).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one ping may take, dialling included; a stopped process does not answer at all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A node is down once it has not answered for this long: three probes missed, so one slow
/// answer under load does not flap it.
pub const DOWN_AFTER: Duration = Duration::from_secs(3);

const _: () = assert!(PROBE_TIMEOUT.as_millis() <= PROBE_INTERVAL.as_millis());
const _: () = assert!(DOWN_AFTER.as_millis() >= 2 * PROBE_INTERVAL.as_millis());

/// The last answer of one peer.
#[derive(Debug, Clone, Copy)]
struct Answer {
    at: Instant,
    /// The peer's partition logs' bytes on disk when it answered.
    stored_bytes: u64,
}

/// What this node knows of one peer.
#[derive(Debug, Clone, Copy)]
struct Probed {
    /// When this node first pinged it: a peer that never answered is only called down once
    /// it has had DOWN_AFTER to answer (a node just started knows nothing yet).
    since: Instant,
    last_answer: Option<Answer>,
}

/// What this node knows of the other nodes' liveness.
#[derive(Debug, Default)]
pub struct Liveness {
    peers: Mutex<BTreeMap<NodeId, Probed>>,
}

/// One peer as `Liveness::seen` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// None: not known yet (pinged for less than DOWN_AFTER, no answer so far).
    pub up: Option<bool>,
    /// Milliseconds since the node last answered; None: never answered this node.
    pub last_contact_ms: Option<u64>,
    /// Its partition logs' bytes on disk, as last reported; None: never answered.
    pub stored_bytes: Option<u64>,
}

impl Liveness {
    fn pinging(&self, node: NodeId) {
        if let Ok(mut peers) = self.peers.lock() {
            peers.entry(node).or_insert(Probed { since: Instant::now(), last_answer: None });
        }
    }

    fn answered(&self, node: NodeId, stored_bytes: u64) {
        if let Ok(mut peers) = self.peers.lock() {
            let now = Instant::now();
            let probed = peers.entry(node).or_insert(Probed { since: now, last_answer: None });
            probed.last_answer = Some(Answer { at: now, stored_bytes });
        }
    }

    /// How `node` looks from here now (for a peer; the caller reports itself).
    pub fn seen(&self, node: NodeId) -> Seen {
        let probed = self.peers.lock().ok().and_then(|peers| peers.get(&node).copied());
        let answer = probed.and_then(|p| p.last_answer);
        let age = answer.map(|a| a.at.elapsed());
        let up = match (age, probed) {
            (Some(age), _) => Some(age < DOWN_AFTER),
            (None, Some(p)) if p.since.elapsed() >= DOWN_AFTER => Some(false),
            _ => None,
        };
        Seen {
            up,
            last_contact_ms: age.map(|age| age.as_millis().try_into().unwrap_or(u64::MAX)),
            stored_bytes: answer.map(|a| a.stored_bytes),
        }
    }
}

/// Pings every registered peer each PROBE_INTERVAL until `stopped`.
pub(super) async fn probe(node: Arc<ClusterNode>, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        let peers: Vec<(NodeId, String)> = node
            .state()
            .nodes
            .iter()
            .filter(|(id, _)| **id != node.node_id)
            .map(|(id, info)| (*id, info.cluster_addr.clone()))
            .collect();
        // All at once: one peer that does not answer must not delay the others' probes.
        let mut pings = JoinSet::new();
        for (id, addr) in peers {
            let node = Arc::clone(&node);
            node.liveness.pinging(id);
            pings.spawn(async move {
                if let Some(stored_bytes) = ping(&node, &addr).await {
                    node.liveness.answered(id, stored_bytes);
                }
            });
        }
        while pings.join_next().await.is_some() {}
    }
}

/// The peer's stored bytes when it answers within PROBE_TIMEOUT.
async fn ping(node: &ClusterNode, addr: &str) -> Option<u64> {
    let body = bincode::serialize(&NodeRequest::Ping).ok()?;
    let reply = node.transport.node_request(addr, body, PROBE_TIMEOUT).await.ok()?;
    match bincode::deserialize(&reply).ok()? {
        NodeReply::Pong { stored_bytes } => Some(stored_bytes),
        other => {
            tracing::debug!(addr, reply = ?other, "unexpected answer to a ping");
            None
        }
    }
}

/// The bytes this node's partition logs hold on disk (what a ping answers).
pub(super) fn stored_bytes(broker: &Broker) -> u64 {
    broker.topics().iter().flat_map(|t| t.partitions()).map(|p| p.size_bytes()).sum()
}
