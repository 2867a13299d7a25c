//! Proves NSQ channel creation, pause and empty act cluster-wide and survive a leader kill
//! (issue 12), on a 3-node cluster with a 1-partition topic replicated 3 times, so two nodes
//! lead none of it:
//! - a channel created over HTTP on a node leading none exists on every node and a pynsq
//!   Reader given another node's lookupd gets every message published after its creation
//!   (through both non-leaders), and none published before it;
//! - paused through a non-leader, it is paused on every node, a pynsq Reader (every lookupd)
//!   gets nothing, also after the leader is killed with `kill -9` and a new one serves; `/stats`
//!   depth there counts the waiting messages only (not the channel-state control batches);
//!   unpaused, every message arrives;
//! - emptied through a non-leader, the leader's depth drops to 0, and after the leader is
//!   killed the new one delivers only what was published after the empty;
//! - the topic paused through a non-leader is paused on every node, across that kill, and
//!   delivers nothing until unpaused through another node.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, leader_of, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::Cluster;
use common::{run_ok, unique_topic, wait_until};
use rdkafka::consumer::BaseConsumer;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NODES: u64 = 3;
/// Bound on partitions electing leaders and filling their ISR (again after a restart), and on
/// a change reaching every node.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one NSQ or HTTP answer (a forwarded publish waits for a majority commit).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a paused channel is watched for a delivery that must not come.
const QUIET_WATCH: Duration = Duration::from_millis(1500);
/// Messages per phase.
const BATCH: usize = 20;
const OPS: &str = "ops";

#[test]
fn channel_create_pause_and_empty_act_cluster_wide() {
    let mut cluster = Cluster::start(NODES as usize);
    let bootstrap = cluster.bootstrap_servers();
    let client = metadata_client(&bootstrap);
    let topic = unique_topic("nsq-ops");
    create_topic(&bootstrap, &topic, 1, NODES as i32).expect("create the topic");
    wait_fully_replicated(&client, &topic, 1, NODES as usize, REPLICATED_TIMEOUT);
    let leader = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "the leader") as u64;
    let others: Vec<u64> = (1..=NODES).filter(|id| *id != leader).collect();
    let (creator, reader_node) = (others[0], others[1]);

    // A first channel (on the leader), so the next one starts at the tail, as nsqd's do.
    cluster_support::local::post_ok(
        &cluster.http_addr(leader),
        &format!("/channel/create?topic={topic}&channel=first"),
    );
    wait_until(REPLICATED_TIMEOUT, "the first channel on every node", || {
        (1..=NODES).all(|id| channel_stats(&cluster, id, &topic, "first").is_some())
    });
    let before = publish(&cluster, &[leader], &topic, "before", BATCH);

    // Created on a node leading none; published at once, through both non-leaders.
    cluster_support::local::post_ok(
        &cluster.http_addr(creator),
        &format!("/channel/create?topic={topic}&channel={OPS}"),
    );
    let after = publish(&cluster, &others, &topic, "after", BATCH);
    wait_until(REPLICATED_TIMEOUT, "the channel on every node", || {
        (1..=NODES).all(|id| channel_stats(&cluster, id, &topic, OPS).is_some())
    });
    let script = clients_dir().join("pynsq_cluster_reader.py");
    let mut read = Command::new("python3");
    read.arg(script).args([cluster.http_addr(reader_node), topic.clone(), OPS.into(), BATCH.to_string()]);
    let read: BTreeSet<String> =
        serde_json::from_slice(&run_ok(&mut read, Duration::from_secs(45)).stdout).expect("JSON");
    assert!(read.is_disjoint(&before), "messages published before the channel existed were delivered");
    assert_eq!(read, after, "the channel created on node {creator} holds every message published after it");

    // Paused through a non-leader: paused on every node; nothing delivered, also by a new leader.
    cluster_support::local::post_ok(
        &cluster.http_addr(creator),
        &format!("/channel/pause?topic={topic}&channel={OPS}"),
    );
    wait_paused(&cluster, &topic, true);
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, stop) = (dir.path().join("deliveries"), dir.path().join("stop"));
    let _reader = start_reader(&cluster, &out, &stop, &topic);
    let paused = publish(&cluster, &[reader_node], &topic, "paused", BATCH);
    wait_until(REPLICATED_TIMEOUT, "the reader subscribed to the leader", || subscribed(&cluster, &client, &topic));
    std::thread::sleep(QUIET_WATCH);
    assert!(delivered(&out).is_empty(), "a paused channel delivered {:?}", delivered(&out));
    let leader = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "the leader") as u64;
    cluster.node(leader).kill9();
    wait_new_leader(&client, &topic, leader);
    cluster.node(leader).restart();
    wait_until(REPLICATED_TIMEOUT, "the reader subscribed to the new leader", || subscribed(&cluster, &client, &topic));
    // Depth is the waiting messages, not the channel-state batches written between them.
    wait_until(REPLICATED_TIMEOUT, "the new leader's depth at the paused messages", || {
        leader_stats(&cluster, &client, &topic).is_some_and(|c| c["depth"] == BATCH as u64)
    });
    std::thread::sleep(QUIET_WATCH);
    assert!(delivered(&out).is_empty(), "paused, after the failover, it delivered {:?}", delivered(&out));
    wait_paused(&cluster, &topic, true);
    cluster_support::local::post_ok(
        &cluster.http_addr(leader),
        &format!("/channel/unpause?topic={topic}&channel={OPS}"),
    );
    wait_until(REPLICATED_TIMEOUT, "every paused message delivered once unpaused", || {
        delivered(&out).is_superset(&paused)
    });

    // Emptied through a non-leader: a later leader kill brings nothing old back.
    wait_fully_replicated(&client, &topic, 1, NODES as usize, REPLICATED_TIMEOUT);
    let leader = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "the leader") as u64;
    let asked = (1..=NODES).find(|id| *id != leader).expect("a non-leader");
    cluster_support::local::post_ok(&cluster.http_addr(asked), &format!("/channel/pause?topic={topic}&channel={OPS}"));
    wait_paused(&cluster, &topic, true);
    let old = publish(&cluster, &[asked], &topic, "old", BATCH);
    wait_until(REPLICATED_TIMEOUT, "the old messages waiting", || {
        leader_stats(&cluster, &client, &topic).is_some_and(|c| c["depth"] == BATCH as u64)
    });
    cluster_support::local::post_ok(&cluster.http_addr(asked), &format!("/channel/empty?topic={topic}&channel={OPS}"));
    wait_until(REPLICATED_TIMEOUT, "the channel emptied on the leader", || {
        leader_stats(&cluster, &client, &topic).is_some_and(|c| c["depth"] == 0)
    });
    // The topic paused through a non-leader too: paused on every node, across the kill.
    cluster_support::local::post_ok(&cluster.http_addr(asked), &format!("/topic/pause?topic={topic}"));
    wait_topic_paused(&cluster, &topic, true);
    let leader = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "the leader") as u64;
    cluster.node(leader).kill9();
    let new_leader = wait_new_leader(&client, &topic, leader);
    cluster.node(leader).restart();
    wait_topic_paused(&cluster, &topic, true);
    cluster_support::local::post_ok(
        &cluster.http_addr(new_leader),
        &format!("/channel/unpause?topic={topic}&channel={OPS}"),
    );
    wait_paused(&cluster, &topic, false);
    let new = publish(&cluster, &[asked], &topic, "new", BATCH);
    std::thread::sleep(QUIET_WATCH);
    assert!(delivered(&out).is_disjoint(&new), "a paused topic delivered");
    cluster_support::local::post_ok(&cluster.http_addr(leader), &format!("/topic/unpause?topic={topic}"));
    wait_topic_paused(&cluster, &topic, false);
    wait_until(REPLICATED_TIMEOUT, "the messages published after the empty", || delivered(&out).is_superset(&new));
    wait_until(REPLICATED_TIMEOUT, "the new leader's depth at 0", || {
        leader_stats(&cluster, &client, &topic).is_some_and(|c| c["depth"] == 0 && c["in_flight_count"] == 0)
    });
    let got = delivered(&out);
    assert!(got.is_disjoint(&old), "emptied messages came back: {:?}", got.intersection(&old).collect::<Vec<_>>());
    std::fs::write(&stop, b"").expect("stop file");
    cluster.assert_no_panics("after the NSQ channel operations test");
}

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/nsq")
}

/// The leader once it is another node than `old`.
fn wait_new_leader(client: &BaseConsumer, topic: &str, old: u64) -> u64 {
    let mut new = 0;
    wait_until(REPLICATED_TIMEOUT, "a new leader", || {
        new = leader_of(client, topic, 0).map_or(0, |l| l as u64);
        new != 0 && new != old
    });
    new
}

/// Every node's own topic shows `paused`.
fn wait_topic_paused(cluster: &Cluster, topic: &str, paused: bool) {
    wait_until(REPLICATED_TIMEOUT, &format!("topic paused={paused} on every node"), || {
        (1..=NODES).all(|id| {
            let stats =
                cluster_support::local::get_json(&cluster.http_addr(id), &format!("/stats?format=json&topic={topic}"));
            stats.ok().and_then(|s| s["topics"].as_array().and_then(|t| t.first().map(|t| t["paused"] == paused)))
                == Some(true)
        })
    });
}

/// Every node's own channel shows `paused`.
fn wait_paused(cluster: &Cluster, topic: &str, paused: bool) {
    wait_until(REPLICATED_TIMEOUT, &format!("paused={paused} on every node"), || {
        (1..=NODES).all(|id| channel_stats(cluster, id, topic, OPS).is_some_and(|c| c["paused"] == paused))
    });
}

/// The channel as a node itself has it (its nsqd `/stats`).
fn channel_stats(cluster: &Cluster, id: u64, topic: &str, channel: &str) -> Option<serde_json::Value> {
    let stats =
        cluster_support::local::get_json(&cluster.http_addr(id), &format!("/stats?format=json&topic={topic}")).ok()?;
    let topics = stats["topics"].as_array()?.clone();
    topics
        .iter()
        .flat_map(|t| t["channels"].as_array().cloned().unwrap_or_default())
        .find(|c| c["channel_name"] == channel)
}

/// The channel as the partition's current leader has it.
fn leader_stats(cluster: &Cluster, client: &BaseConsumer, topic: &str) -> Option<serde_json::Value> {
    channel_stats(cluster, leader_of(client, topic, 0)? as u64, topic, OPS)
}

/// The reader is subscribed to the partition's current leader.
fn subscribed(cluster: &Cluster, client: &BaseConsumer, topic: &str) -> bool {
    leader_stats(cluster, client, topic).and_then(|c| c["client_count"].as_u64()).unwrap_or(0) > 0
}

/// Publishes `count` bodies `<prefix>-<n>` with NSQ PUB over TCP, to `nodes` in turn.
fn publish(cluster: &Cluster, nodes: &[u64], topic: &str, prefix: &str, count: usize) -> BTreeSet<String> {
    let mut wires: Vec<TcpStream> = nodes.iter().map(|id| connect(&cluster.nsq_tcp_addr(*id))).collect();
    let bodies: BTreeSet<String> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    for (n, body) in bodies.iter().enumerate() {
        let wire = &mut wires[n % nodes.len()];
        let mut frame = format!("PUB {topic}\n").into_bytes();
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(body.as_bytes());
        wire.write_all(&frame).expect("PUB");
        let mut head = [0u8; 8];
        wire.read_exact(&mut head).expect("PUB answer");
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        assert!((4..1024).contains(&size), "frame size {size}");
        let mut data = vec![0u8; size - 4];
        wire.read_exact(&mut data).expect("PUB answer");
        assert_eq!(data, b"OK", "PUB {body}: {}", String::from_utf8_lossy(&data));
    }
    bodies
}

fn connect(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).expect("read timeout");
    stream.write_all(b"  V2").expect("magic");
    stream
}

/// The pynsq failover reader on the channel, given every node's lookupd, FINs every message.
fn start_reader(cluster: &Cluster, out: &Path, stop: &Path, topic: &str) -> Reader {
    let mut command = Command::new("python3");
    command.arg(clients_dir().join("pynsq_failover_reader.py")).arg(out).arg(stop).args([topic, OPS]);
    command.args((1..=NODES).map(|id| cluster.http_addr(id)));
    Reader(command.stdout(Stdio::null()).spawn().expect("start the pynsq reader"))
}

/// The bodies the reader has FINished so far.
fn delivered(out: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines().filter_map(|l| l.split(' ').next()).filter(|b| !b.is_empty()).map(str::to_string).collect()
}

/// A reader process, ended with the test even when an assertion fails first.
struct Reader(Child);

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
