//! Cluster settings of `sluice serve`: the node's id and node-to-node address, the voters a
//! new cluster is formed from (or a node to join through), the default replication factor and
//! the Raft timers, and the certificates of node-to-node mutual TLS. Without `--node-id` the
//! broker is a single node. Each flag also reads `SLUICE_<NAME>` and the TOML key of the same
//! name with underscores.

use super::{check_range, out_of_range, resolve_addr};
use clap::Args;
use sluice_tls::PeerFiles;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Raft heartbeat interval by default: a follower hears from its leader ten times a second, a
/// small cost per partition group. openraft also gives one AppendEntries this long to come
/// back (the follower's fsync included), so it stays well above a loaded disk's fsync time.
pub const RAFT_HEARTBEAT_MS_DEFAULT: u64 = 100;
/// Election timeout by default (the lower bound; openraft picks up to twice it). A follower
/// that knew a leader waits its leader lease (the upper bound) plus this before it stands, so
/// a silent leader is followed by a new one after 0.9–1.2 s (three heartbeats missed at least),
/// or up to twice that when the first candidate's log is behind and it is refused. A leader
/// whose process is gone is replaced once the lease alone has run out (`cluster::failover`).
pub const RAFT_ELECTION_TIMEOUT_MS_DEFAULT: u64 = 300;
/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up with its
/// leader's log end for this long leaves the ISR.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: u64 = 30_000;
/// Kafka's default replication factor when the cluster is large enough.
pub const REPLICATION_FACTOR_DEFAULT_MAX: u16 = 3;

#[derive(Debug, Args, Default, Clone)]
pub struct ClusterArgs {
    /// This node's id in a cluster, also its Kafka broker id [default: none: a single node].
    #[arg(long, env = "SLUICE_NODE_ID", value_name = "ID")]
    pub node_id: Option<u32>,
    /// Node-to-node (Raft) listener address, e.g. 127.0.0.11:9093.
    #[arg(long, env = "SLUICE_CLUSTER_ADDR", value_name = "HOST:PORT")]
    pub cluster_addr: Option<String>,
    /// The voters of a new cluster, the same on every first node: 1@host:port,2@host:port,...
    /// Used only to form the cluster; a restarted node rejoins from its data directory.
    #[arg(long, env = "SLUICE_CLUSTER_PEERS", value_name = "ID@HOST:PORT,...")]
    pub cluster_peers: Option<String>,
    /// Join an existing cluster through this node's cluster address.
    #[arg(long, env = "SLUICE_JOIN", value_name = "HOST:PORT")]
    pub join: Option<String>,
    /// Replicas of a new topic when the request does not say [default: the smaller of 3 and
    /// the number of voters].
    #[arg(long, env = "SLUICE_DEFAULT_REPLICATION_FACTOR", value_name = "N")]
    pub default_replication_factor: Option<u16>,
    /// Raft heartbeat interval, ms; also the deadline of one AppendEntries (openraft) [default: 100].
    #[arg(long, env = "SLUICE_RAFT_HEARTBEAT_MS", value_name = "MS")]
    pub raft_heartbeat_ms: Option<u64>,
    /// Raft election timeout (lower bound; the upper is twice it), ms [default: 300].
    #[arg(long, env = "SLUICE_RAFT_ELECTION_TIMEOUT_MS", value_name = "MS")]
    pub raft_election_timeout_ms: Option<u64>,
    /// A follower leaves the ISR when it has not caught up with its leader's log end for this
    /// long, ms (Kafka's `replica.lag.time.max.ms`) [default: 30000].
    #[arg(long, env = "SLUICE_REPLICA_LAG_TIME_MAX_MS", value_name = "MS")]
    pub replica_lag_time_max_ms: Option<u64>,
    /// This node's certificate (PEM) for mutual TLS between nodes; with --cluster-tls-key and
    /// --cluster-tls-ca [default: none: plaintext].
    #[arg(long, env = "SLUICE_CLUSTER_TLS_CERT", value_name = "FILE")]
    pub cluster_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --cluster-tls-cert.
    #[arg(long, env = "SLUICE_CLUSTER_TLS_KEY", value_name = "FILE")]
    pub cluster_tls_key: Option<PathBuf>,
    /// The CA (PEM) that signs every node's certificate: the only one peers are checked against.
    #[arg(long, env = "SLUICE_CLUSTER_TLS_CA", value_name = "FILE")]
    pub cluster_tls_ca: Option<PathBuf>,
}

/// The same keys in the TOML file.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ClusterFileArgs {
    pub node_id: Option<u32>,
    pub cluster_addr: Option<String>,
    pub cluster_peers: Option<String>,
    pub join: Option<String>,
    pub default_replication_factor: Option<u16>,
    pub raft_heartbeat_ms: Option<u64>,
    pub raft_election_timeout_ms: Option<u64>,
    pub replica_lag_time_max_ms: Option<u64>,
    pub cluster_tls_cert: Option<PathBuf>,
    pub cluster_tls_key: Option<PathBuf>,
    pub cluster_tls_ca: Option<PathBuf>,
}

/// A voter of the cluster being formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node_id: u64,
    pub addr: String,
}

/// Resolved cluster settings; `None` from `resolve` on a single node.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub node_id: u64,
    pub cluster_addr: SocketAddr,
    /// The address other nodes reach this one at (as given, so a host name stays a name).
    pub cluster_addr_text: String,
    pub peers: Vec<Peer>,
    pub join: Option<String>,
    /// None: the smaller of 3 and the number of voters.
    pub default_replication_factor: Option<u16>,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    /// Kafka's `replica.lag.time.max.ms`: how long a follower may lag before it leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// Mutual TLS between nodes; None: plaintext.
    pub tls: Option<PeerFiles>,
}

pub fn resolve(args: &ClusterArgs, file: &ClusterFileArgs) -> anyhow::Result<Option<ClusterSettings>> {
    let node_id = args.node_id.or(file.node_id);
    let peers_text = args.cluster_peers.clone().or(file.cluster_peers.clone());
    let join = args.join.clone().or(file.join.clone());
    let cluster_addr_text = args.cluster_addr.clone().or(file.cluster_addr.clone());
    let tls = resolve_tls(args, file)?;
    let Some(node_id) = node_id else {
        if peers_text.is_some() || join.is_some() || cluster_addr_text.is_some() || tls.is_some() {
            return Err(out_of_range("node_id", "(none)", "a node id (--node-id) for a cluster"));
        }
        return Ok(None);
    };
    let cluster_addr_text = cluster_addr_text
        .ok_or_else(|| out_of_range("cluster_addr", "(none)", "HOST:PORT for node-to-node traffic"))?;
    let cluster_addr = resolve_addr(&cluster_addr_text)?;
    let peers = match &peers_text {
        Some(text) => parse_peers(text)?,
        None => Vec::new(),
    };
    if !peers.is_empty() && !peers.iter().any(|p| p.node_id == u64::from(node_id)) {
        return Err(out_of_range("cluster_peers", peers_text.as_deref().unwrap_or(""), "a list that names this node"));
    }
    if peers.is_empty() && join.is_none() {
        // A cluster of one that others may join later.
        tracing::debug!("no --cluster-peers or --join: forming a cluster of this node alone");
    }
    let heartbeat_ms = args.raft_heartbeat_ms.or(file.raft_heartbeat_ms).unwrap_or(RAFT_HEARTBEAT_MS_DEFAULT);
    check_range("raft_heartbeat_ms", heartbeat_ms.into(), 10, 60_000)?;
    let election_ms =
        args.raft_election_timeout_ms.or(file.raft_election_timeout_ms).unwrap_or(RAFT_ELECTION_TIMEOUT_MS_DEFAULT);
    // A follower must miss a few heartbeats before it calls an election.
    check_range("raft_election_timeout_ms", election_ms.into(), (heartbeat_ms * 3).into(), 600_000)?;
    let lag_ms =
        args.replica_lag_time_max_ms.or(file.replica_lag_time_max_ms).unwrap_or(REPLICA_LAG_TIME_MAX_MS_DEFAULT);
    // A follower answers a heartbeat per interval: a shorter window would drop live ones.
    check_range("replica_lag_time_max_ms", lag_ms.into(), (heartbeat_ms * 3).into(), 86_400_000)?;
    let default_replication_factor = args.default_replication_factor.or(file.default_replication_factor);
    if let Some(rf) = default_replication_factor {
        check_range("default_replication_factor", rf.into(), 1, 16)?;
    }
    Ok(Some(ClusterSettings {
        node_id: u64::from(node_id),
        cluster_addr,
        cluster_addr_text,
        peers,
        join,
        default_replication_factor,
        heartbeat: Duration::from_millis(heartbeat_ms),
        election_timeout: Duration::from_millis(election_ms),
        replica_lag_time_max: Duration::from_millis(lag_ms),
        tls,
    }))
}

/// The three files of node-to-node mutual TLS: all or none (a node with only some would
/// either refuse every peer or be refused by them).
fn resolve_tls(args: &ClusterArgs, file: &ClusterFileArgs) -> anyhow::Result<Option<PeerFiles>> {
    let cert = args.cluster_tls_cert.clone().or(file.cluster_tls_cert.clone());
    let key = args.cluster_tls_key.clone().or(file.cluster_tls_key.clone());
    let ca = args.cluster_tls_ca.clone().or(file.cluster_tls_ca.clone());
    match (cert, key, ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), Some(ca)) => Ok(Some(PeerFiles { cert, key, ca })),
        (cert, key, ca) => {
            let missing: Vec<&str> =
                [("--cluster-tls-cert", &cert), ("--cluster-tls-key", &key), ("--cluster-tls-ca", &ca)]
                    .iter()
                    .filter(|(_, value)| value.is_none())
                    .map(|(flag, _)| *flag)
                    .collect();
            Err(anyhow::anyhow!(
                "mutual TLS between nodes needs --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca \
                 together (SLUICE_CLUSTER_TLS_CERT/KEY/CA, cluster_tls_cert/key/ca in the file); missing: {}",
                missing.join(", ")
            ))
        }
    }
}

/// `1@127.0.0.11:9093,2@127.0.0.12:9093`: ids unique, addresses HOST:PORT.
fn parse_peers(text: &str) -> anyhow::Result<Vec<Peer>> {
    let mut peers: Vec<Peer> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('@').ok_or_else(|| out_of_range("cluster_peers", item, "ID@HOST:PORT"))?;
        let node_id: u64 = id.parse().map_err(|_| out_of_range("cluster_peers", item, "a numeric node id before @"))?;
        resolve_addr(addr)?;
        if peers.iter().any(|p| p.node_id == node_id) {
            return Err(out_of_range("cluster_peers", item, "each node id once"));
        }
        peers.push(Peer { node_id, addr: addr.to_string() });
    }
    if peers.is_empty() {
        return Err(out_of_range("cluster_peers", text, "at least one ID@HOST:PORT"));
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_refuse_duplicates() {
        let peers = parse_peers("1@127.0.0.11:9093, 2@127.0.0.12:9093").unwrap();
        assert_eq!(
            peers,
            vec![
                Peer { node_id: 1, addr: "127.0.0.11:9093".into() },
                Peer { node_id: 2, addr: "127.0.0.12:9093".into() }
            ]
        );
        assert!(parse_peers("1@127.0.0.11:9093,1@127.0.0.12:9093").is_err());
        assert!(parse_peers("x@127.0.0.11:9093").is_err());
        assert!(parse_peers("127.0.0.11:9093").is_err());
    }

    #[test]
    fn replica_lag_time_max_defaults_to_kafkas_and_must_outlast_heartbeats() {
        let args = |lag: Option<u64>| ClusterArgs {
            node_id: Some(1),
            cluster_addr: Some("127.0.0.11:9093".into()),
            replica_lag_time_max_ms: lag,
            ..ClusterArgs::default()
        };
        let file = ClusterFileArgs::default();
        let default = resolve(&args(None), &file).unwrap().unwrap();
        assert_eq!(default.replica_lag_time_max, Duration::from_millis(REPLICA_LAG_TIME_MAX_MS_DEFAULT));
        let lowered = resolve(&args(Some(2000)), &file).unwrap().unwrap();
        assert_eq!(lowered.replica_lag_time_max, Duration::from_secs(2));
        let from_file = ClusterFileArgs { replica_lag_time_max_ms: Some(5000), ..ClusterFileArgs::default() };
        assert_eq!(resolve(&args(None), &from_file).unwrap().unwrap().replica_lag_time_max, Duration::from_secs(5));
        assert!(resolve(&args(Some(100)), &file).is_err(), "shorter than three heartbeats");
    }

    #[test]
    fn cluster_tls_needs_all_three_files_or_none() {
        let args = |cert: Option<&str>, key: Option<&str>, ca: Option<&str>| ClusterArgs {
            node_id: Some(1),
            cluster_addr: Some("127.0.0.11:9093".into()),
            cluster_tls_cert: cert.map(PathBuf::from),
            cluster_tls_key: key.map(PathBuf::from),
            cluster_tls_ca: ca.map(PathBuf::from),
            ..ClusterArgs::default()
        };
        let file = ClusterFileArgs::default();
        assert!(resolve(&args(None, None, None), &file).unwrap().unwrap().tls.is_none(), "plaintext by default");
        let all = resolve(&args(Some("n.pem"), Some("n.key"), Some("ca.pem")), &file).unwrap().unwrap();
        assert_eq!(all.tls, Some(PeerFiles { cert: "n.pem".into(), key: "n.key".into(), ca: "ca.pem".into() }));
        let partial = resolve(&args(Some("n.pem"), None, Some("ca.pem")), &file).unwrap_err().to_string();
        assert!(partial.ends_with("missing: --cluster-tls-key"), "{partial}");
        let from_file = ClusterFileArgs { cluster_tls_ca: Some("ca.pem".into()), ..ClusterFileArgs::default() };
        let mixed = resolve(&args(Some("n.pem"), Some("n.key"), None), &from_file).unwrap().unwrap();
        assert_eq!(mixed.tls.map(|t| t.ca), Some(PathBuf::from("ca.pem")), "the CA from the file, the rest from flags");
        let no_node = ClusterArgs { node_id: None, cluster_addr: None, ..args(Some("a"), Some("b"), Some("c")) };
        assert!(resolve(&no_node, &file).is_err(), "cluster TLS needs a cluster");
    }

    #[test]
    fn no_node_id_is_a_single_node_and_peers_must_name_this_node() {
        assert!(resolve(&ClusterArgs::default(), &ClusterFileArgs::default()).unwrap().is_none());
        let args = ClusterArgs {
            node_id: Some(3),
            cluster_addr: Some("127.0.0.13:9093".into()),
            cluster_peers: Some("1@127.0.0.11:9093,2@127.0.0.12:9093".into()),
            ..ClusterArgs::default()
        };
        assert!(resolve(&args, &ClusterFileArgs::default()).is_err());
        let peers_only = ClusterArgs { cluster_peers: Some("1@127.0.0.11:9093".into()), ..ClusterArgs::default() };
        assert!(resolve(&peers_only, &ClusterFileArgs::default()).is_err());
    }
}
