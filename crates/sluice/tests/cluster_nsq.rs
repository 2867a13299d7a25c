//! Proves NSQ works across a 3-node cluster as issue 12 asks: PUB, MPUB and DPUB over NSQ TCP
//! and /pub and /mpub over HTTP are accepted by every node, the two that lead no partition of
//! the (one-partition) topic included (they forward to the leader); every node's nsqlookupd
//! `/lookup` names the leader as the topic's only producer and `/nodes` lists all three; a
//! pynsq Reader given only one follower's lookupd address consumes every message published,
//! and its channel (on the leader) is in every node's `/channels`; and a topic NSQ creates on
//! a node gets a replica on every node.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_fully_replicated};
use cluster_support::local::get_json;
use cluster_support::Cluster;
use common::{run_ok, unique_topic, wait_until};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const NODES: usize = 3;
/// Bound on a topic's partitions electing leaders and filling their ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one NSQ or HTTP answer (a forwarded publish waits for a majority commit).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on the pynsq reader (its own deadline is 40 s).
const READER_TIMEOUT: Duration = Duration::from_secs(50);
/// Messages each node gets per way of publishing (PUB singles, MPUB bodies, /pub, /mpub).
const PER_WAY: usize = 5;

#[test]
fn nsq_publishes_on_every_node_and_lookupd_finds_the_leader() {
    let cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let client = metadata_client(&bootstrap);
    let topic = unique_topic("cluster-nsq");
    create_topic(&bootstrap, &topic, 1, NODES as i32).expect("create a one-partition topic on every node");
    let md = wait_fully_replicated(&client, &topic, 1, NODES, REPLICATED_TIMEOUT);
    let leader = md.partition(&topic, 0).expect("partition 0").leader as u64;

    let mut expected = BTreeSet::new();
    for id in 1..=NODES as u64 {
        expected.extend(publish_every_way(&cluster, id, &topic));
    }
    assert_eq!(expected.len(), NODES * (4 * PER_WAY + 1));

    let leader_nsq = cluster.nsq_tcp_addr(leader);
    let (leader_host, leader_port) = leader_nsq.rsplit_once(':').expect("host:port");
    let leader_port: u64 = leader_port.parse().expect("port");
    for id in 1..=NODES as u64 {
        let mut last = serde_json::Value::Null;
        // Polled: a node learns the others' liveness within a second or so of starting.
        wait_until(REPLICATED_TIMEOUT, &format!("node {id}'s /lookup naming leader {leader} alone"), || {
            last = get_json(&cluster.http_addr(id), &format!("/lookup?topic={topic}")).unwrap_or_default();
            last["producers"].as_array().is_some_and(|p| {
                p.len() == 1
                    && p[0]["broadcast_address"] == leader_host
                    && p[0]["tcp_port"].as_u64() == Some(leader_port)
            })
        });
        assert!(last["channels"].is_array(), "node {id}: {last}");
        let nodes = get_json(&cluster.http_addr(id), "/nodes").expect("nodes");
        let listed = nodes["producers"].as_array().expect("producers");
        assert_eq!(listed.len(), NODES, "node {id}'s /nodes: {nodes}");
        let leading: Vec<&serde_json::Value> =
            listed.iter().filter(|n| n["topics"].as_array().is_some_and(|t| t.iter().any(|t| *t == topic))).collect();
        assert_eq!(leading.len(), 1, "one node lists the topic in node {id}'s /nodes: {nodes}");
    }

    let follower = (1..=NODES as u64).find(|id| *id != leader).expect("a follower");
    let mut reader = Command::new("python3");
    reader.arg(nsq_script("pynsq_cluster_reader.py")).args([
        cluster.http_addr(follower),
        topic.clone(),
        "all".into(),
        expected.len().to_string(),
    ]);
    let out = run_ok(&mut reader, READER_TIMEOUT);
    let read: BTreeSet<String> = serde_json::from_slice(&out.stdout).expect("the reader's JSON list");
    assert_eq!(read, expected, "pynsq through node {follower}'s lookupd reads every message published");
    // The channel lives on the leader, where the reader subscribed; every node lists it.
    for id in 1..=NODES as u64 {
        let channels = get_json(&cluster.http_addr(id), &format!("/channels?topic={topic}")).expect("channels");
        assert_eq!(channels["channels"], serde_json::json!(["all"]), "node {id}'s /channels");
    }

    // A topic NSQ creates (on a node, by a publish) is replicated like any other.
    let created = unique_topic("cluster-nsq-created");
    http_post(&cluster.http_addr(follower), &format!("/pub?topic={created}"), b"first").expect("/pub creates");
    wait_fully_replicated(&client, &created, 1, NODES, REPLICATED_TIMEOUT);
    cluster.assert_no_panics("after the NSQ cluster test");
}

/// Publishes to node `id` in every way NSQ has; the bodies sent.
fn publish_every_way(cluster: &Cluster, id: u64, topic: &str) -> Vec<String> {
    let mut sent = Vec::new();
    let mut wire = NsqWire::connect(&cluster.nsq_tcp_addr(id));
    for i in 0..PER_WAY {
        let body = format!("pub-{id}-{i}");
        wire.command(&format!("PUB {topic}"), body.as_bytes());
        sent.push(body);
    }
    let bodies: Vec<String> = (0..PER_WAY).map(|i| format!("mpub-{id}-{i}")).collect();
    let mut mpub = (bodies.len() as u32).to_be_bytes().to_vec();
    for b in &bodies {
        mpub.extend_from_slice(&(b.len() as u32).to_be_bytes());
        mpub.extend_from_slice(b.as_bytes());
    }
    wire.command(&format!("MPUB {topic}"), &mpub);
    sent.extend(bodies);
    let deferred = format!("dpub-{id}");
    wire.command(&format!("DPUB {topic} 100"), deferred.as_bytes());
    sent.push(deferred);

    let http = cluster.http_addr(id);
    for i in 0..PER_WAY {
        let body = format!("http-pub-{id}-{i}");
        http_post(&http, &format!("/pub?topic={topic}"), body.as_bytes()).expect("/pub");
        sent.push(body);
    }
    let lines: Vec<String> = (0..PER_WAY).map(|i| format!("http-mpub-{id}-{i}")).collect();
    http_post(&http, &format!("/mpub?topic={topic}"), lines.join("\n").as_bytes()).expect("/mpub");
    sent.extend(lines);
    sent
}

/// A raw NSQ V2 connection that publishes and expects `OK` to each command.
struct NsqWire(TcpStream);

impl NsqWire {
    fn connect(addr: &str) -> NsqWire {
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).expect("read timeout");
        stream.write_all(b"  V2").expect("magic");
        NsqWire(stream)
    }

    fn command(&mut self, line: &str, body: &[u8]) {
        let mut out = format!("{line}\n").into_bytes();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        self.0.write_all(&out).expect("send");
        let mut head = [0u8; 8];
        self.0.read_exact(&mut head).unwrap_or_else(|e| panic!("{line}: no answer: {e}"));
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        assert!((4..1024).contains(&size), "{line}: frame size {size}");
        let mut data = vec![0u8; size - 4];
        self.0.read_exact(&mut data).expect("answer body");
        assert_eq!(String::from_utf8_lossy(&data), "OK", "{line}");
    }
}

/// One HTTP/1.0 POST; Ok when answered 200.
fn http_post(addr: &str, path: &str, body: &[u8]) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let head = format!("POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    match text.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("POST {path} on {addr}: {text}")),
    }
}

fn nsq_script(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/nsq").join(name)
}
