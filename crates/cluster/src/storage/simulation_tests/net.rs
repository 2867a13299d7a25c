//! The simulation's network: openraft RPCs handed straight to the target node's `Raft`,
//! each request and each reply delayed, lost or refused as a seeded RNG and the current
//! partition say. Runs on tokio's clock, so under a paused clock delays and timeouts cost
//! no real time.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RPCTypes};

use crate::types::{NodeId, Raft, TypeConfig};

/// SplitMix64: small, seedable, good enough to pick faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// What the network did, for the per-seed summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetStats {
    pub delivered: u64,
    pub lost: u64,
    pub refused: u64,
    /// InstallSnapshot requests sent (a follower behind a purged log).
    pub snapshot_chunks: u64,
}

struct NetState {
    rng: Rng,
    /// The running nodes' Rafts; a crashed node has none (its peers find it unreachable).
    rafts: BTreeMap<NodeId, Raft>,
    /// Nodes cut off from every other node.
    isolated: BTreeSet<NodeId>,
    loss_percent: u64,
    delay_ms_max: u64,
    stats: NetStats,
    /// Requests that broke Raft's rules, as seen on the wire.
    violations: Vec<String>,
}

/// What happens to one message.
enum Fate {
    Deliver(Duration),
    Lost,
    Refused,
}

pub struct SimNet {
    state: Mutex<NetState>,
}

impl SimNet {
    pub fn new(seed: u64) -> Arc<SimNet> {
        Arc::new(SimNet {
            state: Mutex::new(NetState {
                rng: Rng::new(seed),
                rafts: BTreeMap::new(),
                isolated: BTreeSet::new(),
                loss_percent: 0,
                delay_ms_max: 1,
                stats: NetStats::default(),
                violations: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_raft(&self, id: NodeId, raft: Option<Raft>) {
        let mut state = self.state();
        match raft {
            Some(raft) => state.rafts.insert(id, raft),
            None => state.rafts.remove(&id),
        };
    }

    pub fn rafts(&self) -> Vec<(NodeId, Raft)> {
        self.state().rafts.iter().map(|(id, raft)| (*id, raft.clone())).collect()
    }

    pub fn isolate(&self, id: NodeId) {
        self.state().isolated.insert(id);
    }

    pub fn set_weather(&self, loss_percent: u64, delay_ms_max: u64) {
        let mut state = self.state();
        state.loss_percent = loss_percent;
        state.delay_ms_max = delay_ms_max.max(1);
    }

    /// Heals every partition and stops losing messages; delays stay short.
    pub fn heal(&self) {
        self.state().isolated.clear();
        self.set_weather(0, 5);
    }

    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    pub fn stats(&self) -> NetStats {
        self.state().stats
    }

    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        let mut state = self.state();
        if state.isolated.contains(&from) || state.isolated.contains(&to) || !state.rafts.contains_key(&to) {
            state.stats.refused += 1;
            return Fate::Refused;
        }
        let loss = state.loss_percent;
        if state.rng.percent(loss) {
            state.stats.lost += 1;
            return Fate::Lost;
        }
        state.stats.delivered += 1;
        let max = state.delay_ms_max;
        Fate::Deliver(Duration::from_millis(1 + state.rng.below(max)))
    }

    fn raft(&self, id: NodeId) -> Option<Raft> {
        self.state().rafts.get(&id).cloned()
    }
}

/// One node's network factory: clients from `from` to its peers.
pub struct SimFactory {
    pub net: Arc<SimNet>,
    pub from: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for SimFactory {
    type Network = SimPeer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> SimPeer {
        SimPeer { net: Arc::clone(&self.net), from: self.from, target }
    }
}

pub struct SimPeer {
    net: Arc<SimNet>,
    from: NodeId,
    target: NodeId,
}

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl SimPeer {
    /// Sends a request and its reply through the network's fates: a lost message is waited
    /// for until openraft's deadline, as over a real link; a refused one fails at once.
    async fn call<T, E, F, Fut>(&self, action: RPCTypes, option: &RPCOption, handle: F) -> Result<T, RpcError<E>>
    where
        E: std::error::Error,
        F: FnOnce(Raft) -> Fut,
        Fut: Future<Output = Result<T, RaftError<NodeId, E>>>,
    {
        let ttl = option.soft_ttl();
        let timeout = || RPCError::Timeout(Timeout { action, id: self.from, target: self.target, timeout: ttl });
        let refused = || RPCError::Unreachable(Unreachable::new(&std::io::Error::other("partitioned or down")));
        match self.net.fate(self.from, self.target) {
            Fate::Refused => return Err(refused()),
            Fate::Lost => {
                tokio::time::sleep(ttl).await;
                return Err(timeout());
            }
            Fate::Deliver(delay) => tokio::time::sleep(delay).await,
        }
        let raft = self.net.raft(self.target).ok_or_else(refused)?;
        let reply = handle(raft).await;
        match self.net.fate(self.target, self.from) {
            Fate::Refused => return Err(refused()),
            Fate::Lost => {
                tokio::time::sleep(ttl).await;
                return Err(timeout());
            }
            Fate::Deliver(delay) => tokio::time::sleep(delay).await,
        }
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for SimPeer {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        // What the follower's openraft only debug-asserts: the entries the leader read from its
        // store follow on from `prev_log_id`.
        if let Some(first) = req.entries.first() {
            let prev = req.prev_log_id;
            let want = prev.map_or(0, |p| p.index + 1);
            if first.log_id.index != want {
                let metrics = self.net.raft(self.from).map(|r| r.metrics().borrow().clone());
                let violation = format!(
                    "node {} sent node {} entries {}..={} after prev_log_id {prev:?}; sender now (purged, \
                     snapshot, last index, state): {:?}",
                    self.from,
                    self.target,
                    first.log_id,
                    req.entries.last().unwrap().log_id,
                    metrics.map(|m| (m.purged, m.snapshot, m.last_log_index, m.state))
                );
                // Not delivered (the follower would debug-assert, or in a release build append
                // with a hole): recorded, and the seed fails at its end.
                self.net.state().violations.push(violation);
                return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other("bad request dropped"))));
            }
        }
        self.call(RPCTypes::AppendEntries, &option, |raft| async move { raft.append_entries(req).await }).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        self.net.state().stats.snapshot_chunks += 1;
        self.call(RPCTypes::InstallSnapshot, &option, |raft| async move { raft.install_snapshot(req).await }).await
    }

    async fn vote(&mut self, req: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcError> {
        self.call(RPCTypes::Vote, &option, |raft| async move { raft.vote(req).await }).await
    }
}
