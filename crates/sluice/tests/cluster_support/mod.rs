//! Multi-process cluster harness: n real `sluice serve` nodes, each its own "host" (node i on
//! 127.0.0.(10+i), or in its own network namespace with `netns`), with temp data dirs, logs
//! captured per node and printed when a test fails, and bounded waits for the cluster to form.
//! Kills only the PIDs it started.
#![allow(dead_code)]

pub mod consume;
pub mod kafka;
pub mod line_program;
pub mod local;
pub mod netns;
pub mod node;
pub mod produce;
pub mod python_group;
pub mod sarama;
pub mod sarama_group;

use node::{Membership, Node, Ports};
use rdkafka::consumer::Consumer;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Node i listens on 127.0.0.(LOOPBACK_OCTET_BASE + i).
const LOOPBACK_OCTET_BASE: u8 = 10;
/// Nodes a cluster holds at most (so every address stays inside 127.0.0.0/24).
pub const NODES_MAX: usize = 200;
/// How long a started cluster may take until every node is listed in Kafka metadata: process
/// start (debug build) plus the metadata group's first election and every node's registration.
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two metadata requests while waiting for the cluster.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bound on one metadata request while waiting.
const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// Ports of every node in a network namespace: each namespace is a fresh network stack, so
/// fixed ports are free there (the usual defaults, cluster on the next one after Kafka).
const NAMESPACE_PORTS: Ports =
    Ports { cluster: 9093, kafka: 9092, nsq_tcp: 4150, http: 4151, mqtt: 1883, mqtt_ws: 8083 };

/// How a cluster is started (default: no namespaces, the binary's Raft timings, which are
/// what users get).
#[derive(Debug, Clone, Default)]
pub struct ClusterOpts {
    /// Put each node in its own network namespace (root and `ip` needed; see `netns`).
    pub namespaces: bool,
    pub raft_heartbeat_ms: Option<u64>,
    pub raft_election_timeout_ms: Option<u64>,
    pub default_replication_factor: Option<u32>,
    /// More flags for every node.
    pub args: Vec<String>,
    /// More flags for one node (by id), after `args`: e.g. its own certificate.
    pub node_args: BTreeMap<u64, Vec<String>>,
    /// Data directories of nodes (by id) that must not live in the cluster's temp dir, e.g.
    /// on a power-cut filesystem; the others get `<cluster dir>/node-<id>/data`.
    pub data_dirs: BTreeMap<u64, PathBuf>,
}

impl ClusterOpts {
    fn node_args(&self, id: u64) -> Vec<String> {
        let mut args = Vec::new();
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(name.to_string());
                args.push(value);
            }
        };
        flag("--raft-heartbeat-ms", self.raft_heartbeat_ms.map(|v| v.to_string()));
        flag("--raft-election-timeout-ms", self.raft_election_timeout_ms.map(|v| v.to_string()));
        flag("--default-replication-factor", self.default_replication_factor.map(|v| v.to_string()));
        args.extend(self.args.iter().cloned());
        args.extend(self.node_args.get(&id).into_iter().flatten().cloned());
        args
    }
}

/// Where node `id` of a cluster outside namespaces listens: 127.0.0.(10+id) (what its
/// certificates must name).
pub fn loopback_ip(id: u64) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, LOOPBACK_OCTET_BASE + id as u8)
}

pub struct Cluster {
    /// Declared first: the nodes die before their network and their directory go.
    nodes: Vec<Node>,
    network: Option<netns::Network>,
    opts: ClusterOpts,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` founding nodes on loopback addresses, started and ready (`wait_ready`).
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, ClusterOpts::default())
    }

    /// `n` founding nodes started with `opts`, ready.
    pub fn start_with(n: usize, opts: ClusterOpts) -> Cluster {
        let mut cluster = Cluster::spawn_with(n, opts);
        cluster.wait_ready();
        cluster
    }

    /// `n` founding nodes spawned with `opts`, without waiting for anything.
    pub fn spawn_with(n: usize, opts: ClusterOpts) -> Cluster {
        assert!((1..=NODES_MAX).contains(&n), "a cluster has 1 to {NODES_MAX} nodes");
        let dir = tempfile::Builder::new()
            .prefix("sluice-cluster-")
            .tempdir()
            .unwrap_or_else(|e| panic!("create cluster temp dir: {e}"));
        let network = opts.namespaces.then(|| netns::Network::create(n));
        let mut cluster = Cluster { nodes: Vec::new(), network, opts, dir };
        let places: Vec<(Ipv4Addr, Ports, Option<String>)> = (1..=n).map(|i| cluster.place(i)).collect();
        let peers: Vec<String> =
            places.iter().enumerate().map(|(i, (ip, ports, _))| format!("{}@{ip}:{}", i + 1, ports.cluster)).collect();
        let membership = Membership::Peers(peers.join(","));
        for (i, (ip, ports, namespace)) in places.into_iter().enumerate() {
            let args = cluster.opts.node_args(i as u64 + 1);
            let mut node = Node::new(i as u64 + 1, ip, ports, namespace, membership.clone(), args, cluster.dir.path());
            if let Some(data_dir) = cluster.opts.data_dirs.get(&node.id) {
                node.set_data_dir(data_dir.clone());
            }
            cluster.nodes.push(node);
        }
        for node in &mut cluster.nodes {
            node.spawn();
        }
        cluster
    }

    /// Starts one more node that joins through node 1 (`--join`); waits for its `/ping`.
    /// Returns its id.
    pub fn add_node(&mut self) -> u64 {
        let i = self.nodes.len() + 1;
        assert!(i <= NODES_MAX, "a cluster has at most {NODES_MAX} nodes");
        if let Some(network) = self.network.as_mut() {
            network.add_host();
        }
        let (ip, ports, namespace) = self.place(i);
        let join = Membership::Join(self.node(1).cluster_addr());
        let args = self.opts.node_args(i as u64);
        let mut node = Node::new(i as u64, ip, ports, namespace, join, args, self.dir.path());
        node.spawn();
        self.nodes.push(node);
        self.node(i as u64).wait_up();
        i as u64
    }

    /// Node `id` (1-based, as `--node-id`).
    pub fn node(&mut self, id: u64) -> &mut Node {
        let count = self.nodes.len();
        self.nodes
            .get_mut((id as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("no node {id} in a cluster of {count}"))
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's Kafka address, comma-separated, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.nodes.iter().map(Node::kafka_addr).collect::<Vec<_>>().join(",")
    }

    pub fn kafka_addr(&self, id: u64) -> String {
        self.node_ref(id).kafka_addr()
    }

    pub fn http_addr(&self, id: u64) -> String {
        self.node_ref(id).http_addr()
    }

    pub fn nsq_tcp_addr(&self, id: u64) -> String {
        self.node_ref(id).nsq_tcp_addr()
    }

    pub fn mqtt_host_port(&self, id: u64) -> (String, u16) {
        self.node_ref(id).mqtt_host_port()
    }

    /// The namespaces' network, when the cluster runs in one.
    pub fn network(&self) -> Option<&netns::Network> {
        self.network.as_ref()
    }

    /// Cuts node `id` off the network (namespaces only).
    pub fn cut(&self, id: u64) {
        self.network.as_ref().unwrap_or_else(|| panic!("cut needs a cluster in namespaces")).cut(id as usize);
    }

    /// Puts node `id` back on the network (namespaces only).
    pub fn heal(&self, id: u64) {
        self.network.as_ref().unwrap_or_else(|| panic!("heal needs a cluster in namespaces")).heal(id as usize);
    }

    /// Waits (bounded) until every node answers `/ping` and Kafka Metadata from node 1 lists
    /// exactly the cluster's nodes as brokers.
    pub fn wait_ready(&mut self) {
        for node in &mut self.nodes {
            node.wait_up();
        }
        let expected: BTreeSet<i32> = self.nodes.iter().map(|n| n.id as i32).collect();
        let client = kafka::metadata_client(&self.kafka_addr(1));
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            let last = match client.fetch_metadata(None, METADATA_TIMEOUT) {
                Ok(md) => {
                    let listed: BTreeSet<i32> = md.brokers().iter().map(|b| b.id()).collect();
                    if listed == expected {
                        return;
                    }
                    format!("brokers {listed:?}")
                }
                Err(e) => format!("error {e}"),
            };
            assert!(
                Instant::now() < deadline,
                "metadata from node 1 did not list brokers {expected:?} within {CLUSTER_READY_TIMEOUT:?}; last: {last}"
            );
            std::thread::sleep(READY_POLL_INTERVAL);
        }
    }

    /// Fails the test if any node's log shows a panic (a Raft group's core panicking leaves
    /// the process running with that group dead on it), naming the node and the panic.
    pub fn assert_no_panics(&self, when: &str) {
        for node in &self.nodes {
            let log = node.log_contents();
            let mut lines = log.lines();
            while let Some(line) = lines.next() {
                if line.contains("panicked at") {
                    let message = lines.next().unwrap_or_default();
                    panic!("{when}: node {} panicked: {line} {message}", node.id);
                }
            }
        }
    }

    /// Prints the end of every node's log to stderr.
    pub fn dump_logs(&self) {
        for node in &self.nodes {
            node.dump_log();
        }
    }

    fn node_ref(&self, id: u64) -> &Node {
        let count = self.nodes.len();
        self.nodes.get((id as usize).wrapping_sub(1)).unwrap_or_else(|| panic!("no node {id} in a cluster of {count}"))
    }

    /// Where node `i` lives: its address, ports and namespace.
    fn place(&self, i: usize) -> (Ipv4Addr, Ports, Option<String>) {
        match &self.network {
            Some(network) => (network.addr(i), NAMESPACE_PORTS, Some(network.namespace(i).to_string())),
            None => {
                let ip = loopback_ip(i as u64);
                (ip, Ports::free(ip), None)
            }
        }
    }
}

/// Set (to anything): a failed test keeps its cluster's directory (every node's whole log).
const KEEP_DIR_ENV: &str = "SLUICE_TEST_KEEP_CLUSTER_DIR";

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
            if std::env::var_os(KEEP_DIR_ENV).is_some() {
                let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")).keep();
                eprintln!("cluster directory (kept, {KEEP_DIR_ENV} is set): {}", kept.display());
            } else {
                eprintln!("cluster directory (removed now): {}", self.dir.path().display());
            }
        }
        for node in &mut self.nodes {
            node.kill9();
        }
    }
}
