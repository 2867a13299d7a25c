//! The cluster runtime of `sluice serve --node-id ...`: the node-to-node transport, the
//! metadata Raft group, and one Raft group per local partition replica, wired to the broker.
//!
//! - `admin`: operators' moves (reassign, cancel, list) and node removal.
//! - `catch_up`: a restarted replica stands for election only once caught up.
//! - `isr`: a partition leader keeps Kafka's ISR and reports it to the metadata group.
//! - `elect`: Kafka's preferred leader election, called by the first replica.
//! - `failover`: a leader's process gone, one follower calls the election at once.
//! - `meta_client`: proposing metadata commands from any node (forwarded to the leader).
//! - `reassign`: moving a partition's replicas (membership changes driven by its leader).
//! - `reconcile`: makes the local broker follow the metadata state (topics, partition groups).
//! - `topic_sync`: deleted, re-created, grown and reconfigured topics on every node.
//! - `topic_admin`: DeleteTopics, CreatePartitions and config changes as metadata commands.
//! - `replica`: a partition's Raft group as the broker's `Replica`.
//! - `view`: the broker's `ClusterView` (brokers, controller, placement, topic creation).
//! - `node_rpc`: node-level requests between nodes (join, ping).
//! - `nsq_forward`: an NSQ publish on a node that leads none of the topic's partitions.
//! - `liveness`: which nodes answer this node's pings (up/down in the status).
//! - `drain`: moving leadership off a node (`cluster drain`, SIGTERM's controlled shutdown).
//! - `hand_over`: a leader's writes paused while its successor catches up and is elected.
//! - `health`: whether this node reaches a majority of the metadata voters (`/ping`).
//! - `status`: the cluster's status for operators (`/api/cluster`, Raft metrics).

mod admin;
mod catch_up;
mod drain;
mod elect;
mod failover;
mod group_listing;
mod hand_over;
mod health;
mod isr;
mod liveness;
mod log_release;
mod meta_client;
mod node_rpc;
mod nsq_forward;
mod partition_forward;
mod reassign;
mod reconcile;
mod replica;
pub mod security_sync;
mod status;
mod topic_admin;
mod topic_sync;
mod view;

pub use view::attach;

use crate::settings::cluster::ClusterSettings;
use anyhow::Context as _;
use openraft::BasicNode;
use sluice_broker::Broker;
use sluice_cluster::meta::{ClusterState, MetaCommand, MetaReply, MetaStateMachine};
use sluice_cluster::transport::{self, PeerSecurity, RpcHandler, Transport};
use sluice_cluster::types::{GroupId, NodeId, Raft};
use sluice_log::{FlushPolicy, LogConfig, PartitionLog};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where this node's client listeners are, as it registers them in the metadata group.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// Advertised Kafka address (HOST:PORT), what Metadata tells clients.
    pub kafka: String,
    /// Every Kafka listener: its name (security protocol) → advertised HOST:PORT.
    pub kafka_listeners: BTreeMap<String, String>,
    /// NSQ TCP and HTTP listeners under the NSQ broadcast address (`--broadcast-address`),
    /// what every node's nsqlookupd API names as this node's producer address.
    pub nsq_tcp: String,
    pub http: String,
}

/// Entries one AppendEntries carries at most (see `raft_config`); the log store bounds its
/// bytes (`APPEND_ENTRIES_BYTES_MAX`).
const MAX_PAYLOAD_ENTRIES: u64 = 64;

/// How often a node that could not register yet (no metadata leader) tries again.
const REGISTER_RETRY: Duration = Duration::from_millis(500);

pub struct ClusterNode {
    pub node_id: NodeId,
    settings: ClusterSettings,
    listeners: Listeners,
    broker: Arc<Broker>,
    transport: Arc<Transport>,
    raft_config: Arc<openraft::Config>,
    /// The metadata group.
    meta: Raft,
    /// The metadata state as last applied here.
    state: watch::Receiver<Arc<ClusterState>>,
    /// Every Raft group this node runs, by group, for the transport's server.
    groups: RwLock<HashMap<GroupId, Raft>>,
    /// When each other node last answered this one's ping.
    liveness: liveness::Liveness,
    /// Partitions with a mover task here (`reassign`).
    moves: reassign::Moves,
    /// Partition leaders here whose writes are paused while they hand over (`drain`).
    hand_overs: hand_over::HandOvers,
    /// This node itself, for work spawned from `&self` (a drain asked over the transport).
    this: std::sync::Weak<ClusterNode>,
    /// Peers whose process is known gone (`failover`).
    deaths: Arc<failover::PeerDeaths>,
}

impl ClusterNode {
    /// Opens the metadata group from `<data_dir>/cluster/metadata`, listens for other nodes,
    /// forms or joins the cluster, registers this node and starts following the metadata.
    pub async fn start(
        settings: ClusterSettings,
        broker: Arc<Broker>,
        listeners: Listeners,
        stopped: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<ClusterNode>> {
        let node_id = settings.node_id;
        let raft_config = Arc::new(raft_config(&settings)?);
        let listener = TcpListener::bind(settings.cluster_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.cluster_addr))?;
        let data_dir = broker.config().data_dir.clone();
        let meta_dir = data_dir.join("cluster").join("metadata");
        let store = tokio::task::spawn_blocking(move || open_meta_store(meta_dir)).await??;
        let machine = MetaStateMachine::new();
        let state = machine.state_watch();
        let security = peer_security(&settings)?;
        let transport = Transport::with_security(node_id, security.clone());
        let meta = Raft::new(node_id, Arc::clone(&raft_config), transport.network(GroupId::Meta), store, machine)
            .await
            .context("cannot start the metadata group")?;
        let node = Arc::new_cyclic(|this| ClusterNode {
            node_id,
            settings,
            listeners,
            broker,
            transport,
            raft_config,
            meta: meta.clone(),
            state,
            groups: RwLock::new(HashMap::from([(GroupId::Meta, meta)])),
            liveness: liveness::Liveness::default(),
            moves: reassign::Moves::new(),
            hand_overs: hand_over::HandOvers::default(),
            this: this.clone(),
            deaths: Arc::default(),
        });
        let handler: Arc<dyn RpcHandler> = node.clone();
        tokio::spawn(transport::serve(listener, handler, security.clone(), stopped.clone()));
        node.form_or_join().await?;
        tokio::spawn(Arc::clone(&node).register());
        tokio::spawn(liveness::probe(Arc::clone(&node), stopped.clone()));
        tokio::spawn(failover::watch_peers(Arc::clone(&node), stopped.clone()));
        tokio::spawn(Arc::clone(&node).follow_metadata(stopped));
        tracing::info!(node_id, cluster_addr = %node.settings.cluster_addr, mutual_tls = security.is_tls(), "cluster node started");
        Ok(node)
    }

    /// A new node with `--cluster-peers` initializes the metadata group with them (every
    /// first node does the same, so they agree); with `--join` it asks a member to add it;
    /// with neither it forms a cluster of one. A restarted node has its log and does nothing.
    async fn form_or_join(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.meta.is_initialized().await? {
            catch_up::hold_elections_until_caught_up(self.meta.clone(), Arc::clone(&self.deaths));
            return Ok(());
        }
        if let Some(through) = self.settings.join.clone() {
            let node = Arc::clone(self);
            tokio::spawn(async move { node.join(&through).await });
            return Ok(());
        }
        let mut voters = BTreeMap::new();
        for peer in &self.settings.peers {
            voters.insert(peer.node_id, BasicNode { addr: peer.addr.clone() });
        }
        if voters.is_empty() {
            voters.insert(self.node_id, BasicNode { addr: self.settings.cluster_addr_text.clone() });
        }
        match self.meta.initialize(voters).await {
            Ok(()) => tracing::info!("metadata group formed"),
            // Another first node's entries arrived first: the group exists already.
            Err(e) => tracing::info!(reason = %e, "metadata group not initialized here"),
        }
        Ok(())
    }

    /// Registers (or re-registers) this node's listeners, retrying until a leader takes it;
    /// the first registration also names the cluster with this node's cluster id.
    async fn register(self: Arc<Self>) {
        let cluster_id = self.broker.cluster_id().to_string();
        let commands = [
            MetaCommand::InitCluster { cluster_id },
            MetaCommand::RegisterNode {
                node_id: self.node_id,
                cluster_addr: self.settings.cluster_addr_text.clone(),
                kafka_addr: self.listeners.kafka.clone(),
                nsq_tcp_addr: self.listeners.nsq_tcp.clone(),
                http_addr: self.listeners.http.clone(),
                rack: None,
                at_ms: meta_client::now_ms(),
                kafka_listeners: self.listeners.kafka_listeners.clone(),
            },
        ];
        for command in commands {
            if matches!(command, MetaCommand::InitCluster { .. }) && self.state().cluster_id.is_some() {
                continue;
            }
            loop {
                match self.propose_meta(&command).await {
                    Ok(MetaReply::Invalid(why)) => {
                        tracing::debug!(reason = %why, "metadata registration refused");
                        break;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot register with the metadata group yet");
                        tokio::time::sleep(REGISTER_RETRY).await;
                    }
                }
            }
        }
        tracing::info!(node_id = self.node_id, "registered with the metadata group");
    }

    /// The metadata state as last applied on this node.
    pub fn state(&self) -> Arc<ClusterState> {
        self.state.borrow().clone()
    }

    /// Every state the metadata group applies here, as it is applied.
    pub fn state_changes(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.state.clone()
    }

    /// The metadata group's leader (Kafka's controller), if known.
    pub fn meta_leader(&self) -> Option<NodeId> {
        self.meta.metrics().borrow().current_leader
    }

    /// Voters of the metadata group.
    pub fn voters(&self) -> Vec<NodeId> {
        self.meta.metrics().borrow().membership_config.membership().voter_ids().collect()
    }

    fn group(&self, group: &GroupId) -> Option<Raft> {
        self.groups.read().ok()?.get(group).cloned()
    }

    /// Stops every Raft group (clean shutdown; a kill is as safe, only slower to resume).
    pub async fn shutdown(&self) {
        let groups: Vec<Raft> = self.groups.read().map(|g| g.values().cloned().collect()).unwrap_or_default();
        for raft in groups {
            let _ = raft.shutdown().await;
        }
    }
}

impl RpcHandler for ClusterNode {
    fn raft(&self, group: &GroupId) -> Option<Raft> {
        self.group(group)
    }

    fn node_request(
        &self,
        body: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + Send + 'static>> {
        if node_rpc::drain_asked(&body) {
            let this = self.this.upgrade();
            return Box::pin(async move {
                let reply = match this {
                    Some(node) => node_rpc::NodeReply::Drained(node.drain_self().await),
                    None => node_rpc::NodeReply::Refused("the node is stopping".into()),
                };
                bincode::serialize(&reply).map_err(|e| e.to_string())
            });
        }
        if let Some((topic, partition)) = node_rpc::election_asked(&body) {
            let topic_id = self.state().topics.get(&topic).map(|t| t.id);
            let raft = topic_id.and_then(|topic_id| self.group(&GroupId::Partition { topic, partition, topic_id }));
            return Box::pin(node_rpc::elect(raft));
        }
        if let Some((topic, batch)) = nsq_forward::publish_asked(&body) {
            return Box::pin(nsq_forward::publish_here(Arc::clone(&self.broker), topic, batch));
        }
        if let Some((topic, partition, batch)) = partition_forward::publish_to_asked(&body) {
            return Box::pin(partition_forward::publish_here(Arc::clone(&self.broker), topic, partition, batch));
        }
        if let Some(group) = failover::standing_asked(&body) {
            let lease = Duration::from_millis(self.raft_config.election_timeout_max);
            return Box::pin(failover::standing(self.group(&group), lease));
        }
        let meta = self.meta.clone();
        let transport = Arc::clone(&self.transport);
        let broker = Arc::clone(&self.broker);
        Box::pin(async move { node_rpc::handle(meta, transport, broker, body).await })
    }
}

/// Plain TCP, or mutual TLS when the cluster TLS files are set: loaded, this node's own
/// certificate checked against the CA and its cluster address (a node every peer would refuse
/// does not start), and reloaded on SIGHUP.
fn peer_security(settings: &ClusterSettings) -> anyhow::Result<PeerSecurity> {
    let Some(files) = &settings.tls else {
        return Ok(PeerSecurity::Plaintext);
    };
    let context = "cannot load the cluster TLS certificates";
    let host = settings.cluster_addr_text.rsplit_once(':').map_or(settings.cluster_addr_text.as_str(), |(h, _)| h);
    files.check_own_certificate(host).context(context)?;
    let tls = sluice_tls::PeerTls::load(files.clone()).context(context)?;
    sluice_tls::spawn_sighup_reload(vec![tls.clone()]).context("cannot install the SIGHUP handler")?;
    Ok(PeerSecurity::MutualTls(tls))
}

fn raft_config(settings: &ClusterSettings) -> anyhow::Result<openraft::Config> {
    let election_ms = settings.election_timeout.as_millis() as u64;
    let config = openraft::Config {
        cluster_name: "sluice".into(),
        heartbeat_interval: settings.heartbeat.as_millis() as u64,
        election_timeout_min: election_ms,
        election_timeout_max: election_ms * 2,
        // openraft gives one AppendEntries only the heartbeat interval to come back, the
        // follower's write and fsync included. Entries are produce requests (a few MiB when
        // the proposer groups them), so the log store caps an AppendEntries by bytes
        // (`limited_get_log_entries`); 64 entries of up to a MiB each timed out under load
        // when only this count bounded them.
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        // Snapshots are metadata only (the data is the log); never purge by count here:
        // entries go only when retention deletes their segments (`log_release`).
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        ..openraft::Config::default()
    };
    config.validate().context("invalid Raft settings")
}

/// The metadata group's log: an internal partition log (fsync always), its side index in the
/// log's `raft/` directory, as a partition group's.
fn open_meta_store(dir: PathBuf) -> anyhow::Result<sluice_cluster::storage::LogStore> {
    sluice_log::durable_dir::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
    let log = PartitionLog::open(&dir, config).with_context(|| format!("cannot open {}", dir.display()))?;
    let raft_dir = dir.join(sluice_log::RAFT_DIR);
    sluice_log::durable_dir::create_dir_all(&raft_dir)
        .with_context(|| format!("cannot create {}", raft_dir.display()))?;
    let observer = Arc::new(sluice_cluster::storage::NoObserver);
    // The partition state machine opened beside it is not used: the metadata group has its own.
    let (store, _) = sluice_cluster::storage::open_group_storage(&raft_dir, Arc::new(log), observer)
        .context("cannot open the metadata group's log")?;
    Ok(store)
}

impl ClusterNode {
    /// Asks `through` to add this node, until it has (a learner first, then a voter while the
    /// metadata group has fewer than five).
    async fn join(self: Arc<Self>, through: &str) {
        loop {
            match node_rpc::request_join(&self.transport, through, self.node_id, &self.settings.cluster_addr_text).await
            {
                Ok(voter) => {
                    tracing::info!(through, voter, "joined the cluster");
                    return;
                }
                Err(e) => {
                    tracing::warn!(through, error = %e, "cannot join the cluster yet");
                    tokio::time::sleep(REGISTER_RETRY).await;
                }
            }
        }
    }
}
