//! Proves the operator's view of a 3-node cluster: `GET /api/cluster` answers on every node,
//! names the 3 nodes (all up) and the same metadata leader, and lists an RF 3 partition's replicas;
//! `sluice cluster status` prints its table and `--json` parses; `/metrics` carries the Raft
//! families (promtool accepts them); a killed follower makes the leader report the partition
//! under-replicated (once the lag window, lowered to 2 s, passes; while records keep arriving)
//! and the node down with its replica offline within a bounded wait, and once restarted it is
//! up and in sync again.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_fully_replicated};
use cluster_support::produce::producer;
use cluster_support::{Cluster, ClusterOpts};
use common::{run_bounded, unique_topic, wait_until, SLUICE_BIN};
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const PARTITIONS: i32 = 1;
const REPLICATION: i32 = 3;
/// The partition watched.
const WATCHED: i32 = 0;
/// Bound on the topic's partition electing a leader and filling its ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on every node's status agreeing (registrations, leader reports).
const AGREE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the leader seeing a dead follower fall behind, or a restarted one catch up.
const REPLICATION_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one HTTP request or CLI run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two status polls.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// `GET path` on `addr` (HOST:PORT): (status, body). Connection: close, no chunking expected
/// from a JSON answer of known length, but tolerated by reading to the end.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn status_of(cluster: &Cluster, node: u64) -> Value {
    let (code, body) = get(&cluster.http_addr(node), "/api/cluster");
    assert_eq!(code, 200, "GET /api/cluster on node {node}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("node {node}: bad JSON ({e}): {body}"))
}

fn ids(value: &Value) -> Vec<u64> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

/// This node's replica of `topic`-`partition` in its status.
fn local_partition<'a>(status: &'a Value, topic: &str, partition: i32) -> Option<&'a Value> {
    status["partitions"].as_array()?.iter().find(|p| p["topic"] == topic && p["partition"] == partition)
}

/// Whether `node` answers the reporting node, as its status says (None: not known yet).
fn node_up(status: &Value, node: u64) -> Option<bool> {
    status["nodes"].as_array()?.iter().find(|n| n["node_id"] == node)?["up"].as_bool()
}

/// `topic`-`partition` in the status's placement of every partition of the cluster.
fn placement<'a>(status: &'a Value, topic: &str, partition: i32) -> Option<&'a Value> {
    status["placement"].as_array()?.iter().find(|p| p["topic"] == topic && p["partition"] == partition)
}

fn is_under_replicated(status: &Value, topic: &str, partition: i32) -> bool {
    let listed = status["under_replicated"]
        .as_array()
        .is_some_and(|list| list.iter().any(|p| p["topic"] == topic && p["partition"] == partition));
    let marked = local_partition(status, topic, partition).is_some_and(|p| p["under_replicated"] == true);
    assert_eq!(listed, marked, "the list and the replica's mark disagree: {status:#}");
    listed
}

fn cli(args: &[&str]) -> String {
    let output = run_bounded(Command::new(SLUICE_BIN).args(args).stdin(Stdio::null()), REQUEST_TIMEOUT);
    assert!(output.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (the metrics tests need it too)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("promtool status") {
            break status;
        }
        assert!(Instant::now() < deadline, "promtool did not finish within {REQUEST_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
    let mut out = String::new();
    let _ = child.stdout.take().expect("stdout").read_to_string(&mut out);
    assert!(status.success(), "promtool check metrics failed:\n{out}{err}");
}

#[test]
fn cluster_status_names_nodes_leaders_and_under_replication() {
    // A short lag window, so the dead follower leaves the ISR quickly (Kafka's default is 30 s).
    let opts = ClusterOpts { args: vec!["--replica-lag-time-max-ms".into(), "2000".into()], ..ClusterOpts::default() };
    let mut cluster = Cluster::start_with(NODES, opts);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-status");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create a topic with replication factor 3");
    wait_fully_replicated(&metadata_client(&bootstrap), &topic, PARTITIONS, REPLICATION as usize, REPLICATED_TIMEOUT);
    let all: Vec<u64> = (1..=NODES as u64).collect();

    // Every node answers with the same 3 nodes, the same metadata leader and its replica.
    let agreed = Instant::now() + AGREE_TIMEOUT;
    let (leader, last) = loop {
        let last = all.iter().map(|id| status_of(&cluster, *id)).collect::<Vec<_>>();
        let meta_leaders: Vec<Option<u64>> = last.iter().map(|s| s["metadata"]["leader"].as_u64()).collect();
        let nodes_ok = last.iter().all(|s| {
            s["nodes"].as_array().map(|n| n.iter().filter_map(|n| n["node_id"].as_u64()).collect::<Vec<_>>())
                == Some(all.clone())
                && all.iter().all(|id| node_up(s, *id) == Some(true))
        });
        let partition_leaders: Vec<Option<u64>> =
            last.iter().map(|s| local_partition(s, &topic, WATCHED).and_then(|p| p["leader"].as_u64())).collect();
        if nodes_ok
            && meta_leaders[0].is_some()
            && meta_leaders.iter().all(|l| *l == meta_leaders[0])
            && partition_leaders[0].is_some()
            && partition_leaders.iter().all(|l| *l == partition_leaders[0])
        {
            break (partition_leaders[0].expect("checked"), last);
        }
        assert!(Instant::now() < agreed, "nodes did not agree within {AGREE_TIMEOUT:?}: {last:#?}");
        std::thread::sleep(POLL_INTERVAL);
    };
    for (id, status) in all.iter().zip(&last) {
        assert_eq!(status["node_id"], *id, "{status:#}");
        let replica = local_partition(status, &topic, WATCHED).expect("every node hosts an RF 3 replica");
        assert_eq!(ids(&replica["replicas"]), all, "{status:#}");
        assert_eq!(ids(&status["metadata"]["voters"]), all, "{status:#}");
        let role = replica["role"].as_str().unwrap_or_default();
        assert_eq!(role == "leader", *id == leader, "node {id} role {role}, leader {leader}");
        if *id == leader {
            let followers: Vec<u64> = replica["followers"]
                .as_array()
                .map(|f| f.iter().filter_map(|f| f["node_id"].as_u64()).collect())
                .unwrap_or_default();
            assert_eq!(followers, all.iter().copied().filter(|n| *n != leader).collect::<Vec<_>>(), "{status:#}");
        }
        let led: u64 =
            status["leaders"].as_array().map(|l| l.iter().filter_map(|l| l["partitions"].as_u64()).sum()).unwrap_or(0);
        assert!(led >= 1, "partitions led per node counts the topic's: {status:#}");
    }

    // The CLI's table and JSON, from a node that does not lead.
    let follower = all.iter().copied().find(|n| *n != leader).expect("a follower");
    let http = cluster.http_addr(leader);
    let table = cli(&["cluster", "status", "--http", &http]);
    assert!(table.contains("NODE") && table.contains("REPLICAS") && table.contains("ISR"), "{table}");
    assert!(table.contains(&topic), "{table}");
    assert!(table.contains("no under-replicated partitions"), "{table}");
    eprintln!("sluice cluster status on the leader:\n{table}");
    let json: Value = serde_json::from_str(&cli(&["cluster", "status", "--json", "--http", &http])).expect("--json");
    assert_eq!(json["node_id"], leader);

    // The Raft families are on /metrics, and promtool accepts them.
    let (code, metrics) = get(&http, "/metrics");
    assert_eq!(code, 200);
    let series = format!("sluice_raft_is_leader{{topic=\"{topic}\",partition=\"{WATCHED}\"}} 1");
    assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    assert!(metrics.contains("sluice_raft_term{topic=\"__cluster_metadata\",partition=\"0\"}"), "{metrics}");
    assert!(metrics.contains("sluice_raft_follower_lag_entries{"), "{metrics}");
    promtool_accepts(&metrics);

    // A dead follower falls out of the ISR once it has not caught up for the lag window.
    cluster.node(follower).kill9();
    let records = producer(&bootstrap, false);
    let mut sent = 0u64;
    let deadline = Instant::now() + REPLICATION_CHANGE_TIMEOUT;
    loop {
        let value = format!("after-kill-{sent}");
        let _ = records.send_result(FutureRecord::<str, str>::to(&topic).partition(WATCHED).payload(&value));
        sent += 1;
        let status = status_of(&cluster, leader);
        if is_under_replicated(&status, &topic, WATCHED) {
            let replica = local_partition(&status, &topic, WATCHED).expect("the leader's replica");
            assert!(!ids(&replica["isr"]).contains(&follower), "{status:#}");
            let table = cli(&["cluster", "status", "--http", &http]);
            assert!(table.contains("UNDER-REPLICATED"), "{table}");
            eprintln!("after killing node {follower} ({sent} records sent):\n{table}");
            break;
        }
        assert!(Instant::now() < deadline, "not under-replicated within {REPLICATION_CHANGE_TIMEOUT:?}: {status:#}");
        std::thread::sleep(POLL_INTERVAL);
    }

    // Its pings go unanswered: the leader reports it down and its replica offline.
    wait_until(REPLICATION_CHANGE_TIMEOUT, "the killed follower reported down", || {
        let status = status_of(&cluster, leader);
        let offline = placement(&status, &topic, WATCHED).map(|p| ids(&p["offline_replicas"]));
        node_up(&status, follower) == Some(false) && offline == Some(vec![follower])
    });

    // Restarted, it catches up and is in sync again.
    cluster.node(follower).restart();
    wait_until(REPLICATION_CHANGE_TIMEOUT, "the restarted follower back in the ISR and up", || {
        let status = status_of(&cluster, leader);
        !is_under_replicated(&status, &topic, WATCHED) && node_up(&status, follower) == Some(true)
    });
}

#[test]
fn a_single_node_has_no_cluster_status() {
    let broker = common::Broker::start(&[]);
    let (code, body) = get(&broker.http_addr(), "/api/cluster");
    assert_eq!(code, 404, "{body}");
    let error: Value = serde_json::from_str(&body).expect("JSON error");
    assert!(error["error"].as_str().is_some_and(|e| e.contains("cluster")), "{body}");
}
