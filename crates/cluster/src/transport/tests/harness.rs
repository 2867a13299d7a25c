//! In-process nodes for the transport tests: each has its own `serve` on 127.0.0.1:0, its
//! own `Transport`, and any number of Raft groups on the in-memory store.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::{BasicNode, Config, ServerState};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::mem_store::{MemLog, MemMachine};
use crate::transport::{serve, RpcHandler, Transport};
use crate::types::{GroupId, NodeId, Raft};

/// Every test's overall bound: far above what a healthy run needs on a loaded 2-core box.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a test body under [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.expect("test timed out");
}

/// The Raft timing the task asks of the tests: heartbeat 50 ms, election 150-300 ms.
pub fn raft_config() -> Config {
    Config { heartbeat_interval: 50, election_timeout_min: 150, election_timeout_max: 300, ..Config::default() }
}

/// The node side the server calls: its groups' Rafts, and node-level requests that echo,
/// wait for a signal ("slow"), or never answer ("hang").
#[derive(Default)]
pub struct TestHandler {
    pub rafts: Mutex<HashMap<GroupId, Raft>>,
    pub release_slow: Arc<Notify>,
}

impl RpcHandler for TestHandler {
    fn raft(&self, group: &GroupId) -> Option<Raft> {
        self.rafts.lock().unwrap().get(group).cloned()
    }

    fn node_request(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let release = self.release_slow.clone();
        Box::pin(async move {
            match &body[..] {
                b"hang" => futures::future::pending().await,
                b"slow" => {
                    release.notified().await;
                    Ok(b"slow done".to_vec())
                }
                b"refuse" => Err("refused".to_owned()),
                _ => Ok([b"echo:".as_slice(), &body].concat()),
            }
        })
    }
}

pub struct TestNode {
    pub id: NodeId,
    pub addr: String,
    pub transport: Arc<Transport>,
    pub handler: Arc<TestHandler>,
    pub machines: Mutex<HashMap<GroupId, MemMachine>>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl TestNode {
    /// A node serving on a fresh 127.0.0.1 port, with no groups yet.
    pub async fn start(id: NodeId) -> TestNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handler = Arc::new(TestHandler::default());
        let (shutdown, stop) = watch::channel(false);
        let server = tokio::spawn(serve(listener, handler.clone(), crate::transport::PeerSecurity::Plaintext, stop));
        TestNode {
            id,
            addr,
            transport: Transport::new(id),
            handler,
            machines: Mutex::new(HashMap::new()),
            shutdown,
            server,
        }
    }

    /// Creates this node's Raft for `group` (not yet initialized).
    pub async fn add_group(&self, group: &GroupId, config: Config) -> Raft {
        let machine = MemMachine::default();
        let network = self.transport.network(group.clone());
        let config = Arc::new(config.validate().unwrap());
        let raft = Raft::new(self.id, config, network, MemLog::default(), machine.clone()).await.unwrap();
        self.handler.rafts.lock().unwrap().insert(group.clone(), raft.clone());
        self.machines.lock().unwrap().insert(group.clone(), machine);
        raft
    }

    pub fn raft(&self, group: &GroupId) -> Raft {
        self.handler.raft(group).unwrap()
    }

    pub fn batches(&self, group: &GroupId) -> Vec<bytes::Bytes> {
        self.machines.lock().unwrap()[group].batches()
    }

    /// Stops the server (closing every inbound connection), as a dying node would.
    pub async fn stop_server(&self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !self.server.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("server did not stop");
    }

    /// Stops the server and every Raft of this node.
    pub async fn kill(&self) {
        self.stop_server().await;
        let rafts: Vec<Raft> = self.handler.rafts.lock().unwrap().drain().map(|(_, raft)| raft).collect();
        for raft in rafts {
            raft.shutdown().await.unwrap();
        }
    }
}

/// Three nodes, ids 1..=3, each running `groups` under [`raft_config`], each group
/// initialized on node 1 with all three as voters.
pub async fn three_nodes(groups: &[GroupId]) -> Vec<TestNode> {
    three_nodes_with(groups, raft_config()).await
}

/// [`three_nodes`] with another Raft configuration.
pub async fn three_nodes_with(groups: &[GroupId], config: Config) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(TestNode::start(id).await);
    }
    for group in groups {
        for node in &nodes {
            node.add_group(group, config.clone()).await;
        }
        nodes[0].raft(group).initialize(members(&nodes)).await.unwrap();
    }
    nodes
}

pub fn members(nodes: &[TestNode]) -> BTreeMap<NodeId, BasicNode> {
    nodes.iter().map(|node| (node.id, BasicNode { addr: node.addr.clone() })).collect()
}

/// Waits until every node of `alive` names the same leader of `group`, other than `not`, and
/// that leader says it leads; returns it.
pub async fn agreed_leader(alive: &[&TestNode], group: &GroupId, not: Option<NodeId>) -> NodeId {
    loop {
        let leaders: Vec<Option<NodeId>> =
            alive.iter().map(|node| node.raft(group).metrics().borrow().current_leader).collect();
        if let Some(Some(leader)) = leaders.first().copied() {
            let leads = alive
                .iter()
                .find(|node| node.id == leader)
                .is_some_and(|node| node.raft(group).metrics().borrow().state == ServerState::Leader);
            if Some(leader) != not && leads && leaders.iter().all(|l| *l == Some(leader)) {
                return leader;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node of `alive` has applied exactly `want` for `group`.
pub async fn all_applied(alive: &[&TestNode], group: &GroupId, want: &[&[u8]]) {
    loop {
        let done = alive.iter().all(|node| {
            let got = node.batches(group);
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| &g[..] == *w)
        });
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
