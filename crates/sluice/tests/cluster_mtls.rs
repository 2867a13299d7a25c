//! Node-to-node mutual TLS (issue 13): a 3-node cluster whose nodes each hold a certificate of
//! the cluster's CA (`--cluster-tls-cert/key/ca`) replicates `acks=all` records from a
//! librdkafka producer; after `kill -9` of the partition's leader a new leader takes
//! acknowledged writes, and the restarted node reconnects over TLS and is back in the ISR. A
//! fourth node with a certificate of another CA cannot join: the node it dials logs the refused
//! handshake, the stranger logs its failed one and is never listed as a broker, and the cluster
//! keeps taking writes. A plaintext TCP client that sends a frame to a cluster port is closed
//! without an answer. Finally every acknowledged record is read back at its offset (history
//! checker).

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::wait_fully_replicated;
use cluster_support::kafka::{create_topic, final_read, metadata, metadata_client, wait_for_leader};
use cluster_support::node::{Membership, Node, Ports};
use cluster_support::produce::{produce, ProduceSpec, Stop};
use cluster_support::{loopback_ip, Cluster, ClusterOpts};
use common::certs::{ClientCert, TestPki};
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Op, Recorder};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const NODES: u64 = 3;
const REPLICATION: i32 = 3;
/// `acks=all` sends per round (before the kill, after it, with the stranger knocking).
const RECORDS_PER_ROUND: u64 = 200;
/// Bound on a topic's partition electing a leader and filling its ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the refused handshake showing in a log.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a plaintext connection being closed by the cluster listener.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads of what a refused plaintext client gets (a TLS alert at most) before the close.
const CLOSE_READS_MAX: usize = 16;
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn tls_args(cert: &ClientCert, ca: &Path) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "--cluster-tls-cert".into(),
        path(&cert.cert),
        "--cluster-tls-key".into(),
        path(&cert.key),
        "--cluster-tls-ca".into(),
        path(ca),
    ]
}

/// Sends one round of records and checks the producer had every one acknowledged.
fn produce_round(bootstrap: &str, topic: &str, prefix: &str, recorder: &Recorder) {
    let spec = ProduceSpec {
        topic: topic.into(),
        prefix: prefix.into(),
        count_max: RECORDS_PER_ROUND,
        idempotent: false,
        round_robin: Some(1),
        pace: None,
    };
    produce(bootstrap, &spec, recorder, &Stop::default());
    let acknowledged = recorder
        .ops()
        .iter()
        .filter(|op| matches!(op, Op::SendOk { value, .. } if value.starts_with(&format!("{prefix}-"))))
        .count();
    assert_eq!(acknowledged as u64, RECORDS_PER_ROUND, "round {prefix}: every acks=all send acknowledged");
}

#[test]
fn a_cluster_over_mutual_tls_replicates_fails_over_and_refuses_strangers() {
    let pki_dir = tempfile::tempdir().expect("pki dir");
    let pki = TestPki::create(&pki_dir.path().join("cluster-ca"));
    let mut opts = ClusterOpts::default();
    for id in 1..=NODES {
        let cert = pki.node(&format!("node-{id}"), loopback_ip(id));
        opts.node_args.insert(id, tls_args(&cert, &pki.ca_cert));
    }
    let mut cluster = Cluster::start_with(NODES as usize, opts);
    for node in cluster.nodes() {
        assert!(node.log_contents().contains("mutual_tls=true"), "node {} runs its cluster link over TLS", node.id);
    }

    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-mtls");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create a topic with replication factor 3");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, REPLICATED_TIMEOUT);
    let recorder = Recorder::new();
    produce_round(&bootstrap, &topic, "before", &recorder);

    // kill -9 the leader: a new one is elected over TLS and takes acknowledged writes.
    let leader = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "a leader") as u64;
    cluster.node(leader).kill9();
    produce_round(&bootstrap, &topic, "failover", &recorder);
    let successor = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "a new leader") as u64;
    assert_ne!(successor, leader, "the killed node does not lead");
    cluster.node(leader).restart();
    wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, REPLICATED_TIMEOUT);

    // A node whose certificate another CA signed (and which trusts only that CA) cannot join.
    // Both test CAs are named alike, so this is the harder case: the issuer's name matches,
    // its key does not (a differently named CA is refused as an unknown issuer).
    let other = TestPki::create(&pki_dir.path().join("other-ca"));
    let stranger_ip = loopback_ip(NODES + 1);
    let stranger_cert = other.node("stranger", stranger_ip);
    let through = cluster.node(1).cluster_addr();
    let logged_before = cluster.node(1).log_contents().len();
    let mut stranger = Node::new(
        NODES + 1,
        stranger_ip,
        Ports::free(stranger_ip),
        None,
        Membership::Join(through),
        tls_args(&stranger_cert, &other.ca_cert),
        pki_dir.path(),
    );
    stranger.spawn();
    wait_until(REFUSAL_TIMEOUT, "node 1 to log the stranger's refused handshake", || {
        cluster.node(1).log_contents()[logged_before..].contains("refused at the TLS handshake")
    });
    wait_until(REFUSAL_TIMEOUT, "the stranger to log its failed handshake", || {
        stranger.log_contents().contains("TLS handshake with a peer failed")
    });
    produce_round(&bootstrap, &topic, "stranger", &recorder);
    assert!(stranger.is_running(), "the stranger keeps trying (it is refused, not crashed)");
    assert!(!stranger.log_contents().contains("joined the cluster"), "the stranger never joined");
    let brokers = metadata(&client, None).expect("metadata").broker_ids();
    assert_eq!(brokers, (1..=NODES as i32).collect(), "the stranger is not a broker");
    stranger.kill9();

    // A plaintext client that sends a frame to a cluster port is closed, never answered.
    let addr: std::net::SocketAddr = cluster.node(2).cluster_addr().parse().expect("cluster address");
    let mut raw = std::net::TcpStream::connect(addr).expect("connect to the cluster port");
    raw.set_read_timeout(Some(CLOSE_TIMEOUT)).expect("read timeout");
    // A node request frame: length 12, request id 1, kind request, then a body.
    raw.write_all(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).expect("write a frame");
    let mut closed = false;
    let mut buf = [0u8; 1024];
    for _ in 0..CLOSE_READS_MAX {
        match raw.read(&mut buf) {
            Ok(0) => closed = true,
            // A TLS alert before the close is all it may get.
            Ok(n) => assert_eq!(buf[0], 0x15, "only a TLS alert record comes back, got {:?}", &buf[..n]),
            Err(e) => {
                let reset = matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe);
                assert!(reset, "the cluster port did not close a plaintext client within {CLOSE_TIMEOUT:?}: {e}");
                closed = true;
            }
        }
        if closed {
            break;
        }
    }
    assert!(closed, "the plaintext client was closed");

    let read = final_read(&bootstrap, &topic, 1, &recorder, READ_TIMEOUT);
    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_mtls: {report}");
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(read as u64 >= 3 * RECORDS_PER_ROUND, "final read {read}");
    cluster.assert_no_panics("after the mutual TLS run");
}
