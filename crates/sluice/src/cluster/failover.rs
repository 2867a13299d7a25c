//! Quick failover when a leader's process dies (`kill -9`, a crash, a stop).
//!
//! openraft 0.9 lets a follower stand only after it has heard nothing from its leader for the
//! leader lease (the election timeout's upper bound) plus its own election timeout, and a
//! voter refuses every vote while its lease runs. With the default timers that is 0.9–1.2 s
//! after the last heartbeat, more when the two followers' timeouts are close and they split
//! the vote. Here a node learns within milliseconds that a peer's process is gone, and for
//! each group that peer led, one follower — chosen alike on every follower — asks openraft
//! for an election (`trigger().elect()`) as soon as the other voters' leases have run out.
//!
//! - **Death, not silence.** Each node keeps one idle TCP connection to every other node's
//!   cluster listener (the server waits for a frame that never comes). When it closes, the
//!   node dials again at once: refused means no process listens there any more, so the peer
//!   is dead. A peer that is only cut off or frozen (SIGSTOP) answers neither way and is left
//!   to openraft's timers, so a network partition never makes us call elections.
//! - **One candidate.** Each follower asks the group's other live voters for their last log
//!   index and how long their leader lease still runs (`NodeRequest::Standing`). The voter
//!   with the longest log stands (the lowest node id among equals); the others wait, and
//!   openraft's own timers remain the fallback (an unreachable voter is not waited for).
//!   Comparing indexes, not whole log ids, can pick a candidate whose last entry is of an
//!   older term; Raft's vote then refuses it and the timers elect as before.
//! - **The lease is kept.** The candidate calls the election only once every other voter's
//!   lease has run out (plus a margin), so its vote request is not refused for it. The vote
//!   itself, and whether the candidate's log is complete enough to win, stay openraft's.
//! - **Clients are told.** While a group's leader is known dead, its replicas name no leader
//!   (`dead_filtered`): Metadata answers `LEADER_NOT_AVAILABLE`, so librdkafka keeps querying
//!   until the new leader is known instead of waiting on the dead one.

use super::node_rpc::{NodeReply, NodeRequest};
use super::ClusterNode;
use openraft::ServerState;
use sluice_cluster::transport::PeerStream;
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the set of watched peers follows the registered nodes.
const PEERS_REFRESH: Duration = Duration::from_secs(1);
/// How long dialling a peer may take before it counts as unreachable (not dead).
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Waits between dials of a peer that is not connected: short, so a restarted peer counts as
/// alive again quickly (a refused dial on loopback or a LAN costs next to nothing).
const REDIAL_FIRST: Duration = Duration::from_millis(50);
const REDIAL_MAX: Duration = Duration::from_millis(200);
/// A watch connection that closed sooner than this after it opened is redialled only after the
/// backoff, so a peer that accepts and closes at once is not dialled in a loop.
const CONNECTION_LIFE_MIN: Duration = Duration::from_millis(100);
/// How long asking another voter for its log and lease may take.
const ASK_TIMEOUT: Duration = Duration::from_millis(300);
/// Added to the longest lease the other voters reported: timers, scheduling and the vote
/// request's trip. A vote refused for a lease costs a whole election timeout, this only itself.
const LEASE_MARGIN: Duration = Duration::from_millis(25);

/// The peers this node saw die (refused a dial after their connection closed), until a dial
/// succeeds again.
#[derive(Debug, Default)]
pub struct PeerDeaths {
    dead: Mutex<HashMap<NodeId, Instant>>,
}

impl PeerDeaths {
    /// Whether `node`'s process is known to be gone.
    pub fn is_dead(&self, node: NodeId) -> bool {
        self.lock().contains_key(&node)
    }

    /// `leader` unless it is known dead (what clients are told a group's leader is).
    pub fn dead_filtered(&self, leader: Option<NodeId>) -> Option<NodeId> {
        leader.filter(|l| !self.is_dead(*l))
    }

    /// Records the death; true the first time since the peer was last seen alive.
    fn died(&self, node: NodeId) -> bool {
        let mut dead = self.lock();
        if dead.contains_key(&node) {
            return false;
        }
        dead.insert(node, Instant::now());
        true
    }

    fn alive(&self, node: NodeId) {
        self.lock().remove(&node);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Instant>> {
        // An insert or remove leaves the map whole even if its holder panicked.
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps a watch connection to every registered peer until `stopped`.
pub(super) async fn watch_peers(node: Arc<ClusterNode>, mut stopped: watch::Receiver<bool>) {
    let mut watched: HashMap<NodeId, (String, JoinHandle<()>)> = HashMap::new();
    let mut ticks = tokio::time::interval(PEERS_REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => break,
        }
        let state = node.state();
        let peers: HashMap<NodeId, String> = state
            .nodes
            .iter()
            .filter(|(id, _)| **id != node.node_id)
            .map(|(id, info)| (*id, info.cluster_addr.clone()))
            .collect();
        watched.retain(|id, (addr, task)| {
            let keep = peers.get(id) == Some(addr) && !task.is_finished();
            if !keep {
                task.abort();
                node.deaths.alive(*id);
            }
            keep
        });
        for (id, addr) in peers {
            watched.entry(id).or_insert_with(|| {
                let task = tokio::spawn(watch_peer(Arc::clone(&node), id, addr.clone()));
                (addr, task)
            });
        }
    }
    for (_, (_, task)) in watched {
        task.abort();
    }
}

/// One peer's watch: connected while the peer runs; a close followed by a refused dial is its
/// death.
async fn watch_peer(node: Arc<ClusterNode>, peer: NodeId, addr: String) {
    let mut backoff = REDIAL_FIRST;
    loop {
        // Through the transport's security: under mutual TLS a bare TCP connection would be
        // refused at the handshake (and logged) as a stranger's.
        match tokio::time::timeout(DIAL_TIMEOUT, node.transport.security().connect(&addr)).await {
            Ok(Ok(stream)) => {
                node.deaths.alive(peer);
                backoff = REDIAL_FIRST;
                let opened = Instant::now();
                wait_closed(stream).await;
                if opened.elapsed() >= CONNECTION_LIFE_MIN {
                    // Dial again at once: the answer tells a death from a dropped connection.
                    continue;
                }
            }
            Ok(Err(e)) if e.is_refused() => {
                if node.deaths.died(peer) {
                    tracing::info!(peer, addr, "peer process gone (connection closed, dial refused)");
                    stand_in_for(&node, peer);
                }
            }
            // Unreachable or slow: not known dead; openraft's timers decide.
            Ok(Err(_)) | Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(REDIAL_MAX);
    }
}

/// Resolves when the peer closes the connection (the server never writes on it).
async fn wait_closed(mut stream: PeerStream) {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// For every group this node follows as a voter under `dead` as leader, decides whether to
/// stand and calls the election when the others' leases have run out.
fn stand_in_for(node: &Arc<ClusterNode>, dead: NodeId) {
    let groups: Vec<(GroupId, Raft)> =
        node.groups.read().map(|g| g.iter().map(|(id, raft)| (id.clone(), raft.clone())).collect()).unwrap_or_default();
    for (group, raft) in groups {
        let (term, others) = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            if m.state != ServerState::Follower || m.current_leader != Some(dead) || !voters.contains(&node.node_id) {
                continue;
            }
            let others: Vec<NodeId> = voters.into_iter().filter(|v| *v != dead && *v != node.node_id).collect();
            (m.current_term, others)
        };
        tokio::spawn(stand_in(Arc::clone(node), group, raft, dead, term, others));
    }
}

async fn stand_in(node: Arc<ClusterNode>, group: GroupId, raft: Raft, dead: NodeId, term: u64, others: Vec<NodeId>) {
    let mine = raft.metrics().borrow().last_log_index;
    let asked = std::time::Instant::now();
    let mut lease_left = Duration::ZERO;
    // All at once: one voter that does not answer must not delay the others' answers.
    let mut asks = tokio::task::JoinSet::new();
    for other in others {
        let (node, group) = (Arc::clone(&node), group.clone());
        asks.spawn(async move { (other, ask_standing(&node, other, &group).await) });
    }
    while let Some(Ok((other, answer))) = asks.join_next().await {
        let Some((last_log_index, lease)) = answer else { continue };
        if !stands_before(node.node_id, mine, other, last_log_index) {
            tracing::debug!(%group, candidate = other, "leader gone: another voter has the longer log");
            return;
        }
        lease_left = lease_left.max(lease);
    }
    tokio::time::sleep((lease_left + LEASE_MARGIN).saturating_sub(asked.elapsed())).await;
    let still_leaderless = {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Follower && m.current_leader == Some(dead) && m.current_term == term
    };
    if !still_leaderless {
        return;
    }
    tracing::info!(%group, dead, "leader gone: calling an election");
    if let Err(e) = raft.trigger().elect().await {
        tracing::debug!(%group, error = %e, "cannot call the election");
    }
}

/// Whether `me` (last log index `mine`) stands rather than `other` (`theirs`): the longer
/// log, the lower node id among equals. Every follower judges alike, so one stands.
fn stands_before(me: NodeId, mine: Option<u64>, other: NodeId, theirs: Option<u64>) -> bool {
    (mine, std::cmp::Reverse(me)) > (theirs, std::cmp::Reverse(other))
}

/// Another voter's last log index and the rest of its leader lease in `group`; None when it
/// does not answer in time or runs no such group.
async fn ask_standing(node: &ClusterNode, other: NodeId, group: &GroupId) -> Option<(Option<u64>, Duration)> {
    let addr = node.state().nodes.get(&other)?.cluster_addr.clone();
    let body = bincode::serialize(&NodeRequest::Standing { group: group.clone() }).ok()?;
    let reply = node.transport.node_request(&addr, body, ASK_TIMEOUT).await.ok()?;
    match bincode::deserialize(&reply).ok()? {
        NodeReply::Standing { last_log_index, lease_left_ms } => {
            Some((last_log_index, Duration::from_millis(lease_left_ms)))
        }
        _ => None,
    }
}

/// The group named in a `Standing` request, if `body` is one.
pub fn standing_asked(body: &[u8]) -> Option<GroupId> {
    match bincode::deserialize(body) {
        Ok(NodeRequest::Standing { group }) => Some(group),
        _ => None,
    }
}

/// This node's answer to `Standing`: its last log index in the group and how long its leader
/// lease still runs (zero when its vote is not a leader's committed one).
pub async fn standing(raft: Option<Raft>, lease: Duration) -> Result<Vec<u8>, String> {
    let raft = raft.ok_or("this node runs no such group")?;
    let last_log_index = raft.metrics().borrow().last_log_index;
    let lease_left = raft
        .with_raft_state(move |st| {
            let since = st.vote_last_modified().map(|at| at.elapsed());
            match since {
                Some(since) if st.vote_ref().committed => lease.saturating_sub(since),
                _ => Duration::ZERO,
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    let lease_left_ms = u64::try_from(lease_left.as_millis()).unwrap_or(u64::MAX);
    bincode::serialize(&NodeReply::Standing { last_log_index, lease_left_ms }).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longer_log_stands_and_the_lower_id_among_equals() {
        assert!(stands_before(3, Some(10), 2, Some(9)));
        assert!(!stands_before(2, Some(9), 3, Some(10)));
        assert!(stands_before(2, Some(10), 3, Some(10)));
        assert!(!stands_before(3, Some(10), 2, Some(10)));
        // An empty log never stands before one with entries.
        assert!(!stands_before(1, None, 2, Some(0)));
        assert!(stands_before(1, None, 2, None));
    }

    #[test]
    fn deaths_are_recorded_once_until_the_peer_is_back() {
        let deaths = PeerDeaths::default();
        assert_eq!(deaths.dead_filtered(Some(2)), Some(2));
        assert!(deaths.died(2));
        assert!(!deaths.died(2), "a second refused dial is the same death");
        assert!(deaths.is_dead(2));
        assert_eq!(deaths.dead_filtered(Some(2)), None);
        assert_eq!(deaths.dead_filtered(Some(3)), Some(3));
        deaths.alive(2);
        assert_eq!(deaths.dead_filtered(Some(2)), Some(2));
        assert!(deaths.died(2));
    }
}
