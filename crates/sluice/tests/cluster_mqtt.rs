//! MQTT on a cluster (issue 14 over issue 11): a device may connect to any node. On a 3-node
//! cluster with a 3-partition topic replicated 3 times, mosquitto_pub at QoS 1 through each
//! node to MQTT topics whose keys fall on every partition is acknowledged (a publish whose
//! partition another node leads is forwarded to that leader and acknowledged once committed
//! there), and every message is read by kcat and by a mosquitto_sub on a node that leads at
//! most one of the partitions (it reads its own replicas). A retained message published through
//! one node is served to a new subscriber on another. After the leader of a partition is
//! killed (`kill -9`), publishes through a surviving node reach the new leader.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::Cluster;
use common::{run_ok, use_system_libraries, wait_until};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 3;
/// MQTT topics published (their keys spread over the partitions).
const DEVICES: usize = 12;
/// Bound on partitions electing leaders and filling their ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one client run (a debug cluster on a busy machine; a forward after a failover
/// waits for the new leader).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a subscriber seeing what was published.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn publishes_through_any_node_reach_every_partition_and_every_node() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let client = metadata_client(&bootstrap);
    let topic = "plant";
    create_topic(&bootstrap, topic, PARTITIONS, NODES as i32).expect("create the topic");
    wait_fully_replicated(&client, topic, PARTITIONS, NODES, REPLICATED_TIMEOUT);

    // Node 3's subscriber: the partitions it does not lead are read from its replicas.
    let dir = tempfile::tempdir().expect("temp dir");
    let subscriber = Subscriber::start(&cluster, 3, "plant/#", &dir.path().join("sub.out"));
    wait_until(DELIVERY_TIMEOUT, "the subscriber to receive a probe", || {
        mosquitto_pub(&cluster, 3, "plant/probe", "probe", &[]);
        subscriber.payloads().contains("probe")
    });

    let mut sent = BTreeSet::new();
    for node in 1..=NODES as u64 {
        for device in 0..DEVICES {
            let payload = format!("via-{node}-dev-{device}");
            mosquitto_pub(&cluster, node, &format!("plant/dev-{device}/temp"), &payload, &[]);
            sent.insert(payload);
        }
    }
    let read = kcat_values(&bootstrap, topic);
    assert!(sent.is_subset(&read), "kcat lacks {:?}", sent.difference(&read).collect::<Vec<_>>());
    let partitions = kcat_partitions(&bootstrap, topic);
    assert_eq!(partitions.len(), PARTITIONS as usize, "the devices' keys fall on every partition: {partitions:?}");
    wait_until(DELIVERY_TIMEOUT, "node 3's subscriber to get every publish", || sent.is_subset(&subscriber.payloads()));

    // A retained message stored through node 1 is served by node 2 to a new subscription.
    mosquitto_pub(&cluster, 1, "plant/config", "retained-setting", &["-r"]);
    let (host, port) = cluster.mqtt_host_port(2);
    wait_until(DELIVERY_TIMEOUT, "node 2 to serve the retained message", || {
        let mut sub = Command::new("mosquitto_sub");
        sub.args(["-h", &host, "-p", &port.to_string(), "-t", "plant/config", "-C", "1", "-W", "2", "-F", "%p"]);
        use_system_libraries(&mut sub);
        let out = sub.stdin(Stdio::null()).output().expect("run mosquitto_sub");
        String::from_utf8_lossy(&out.stdout).trim() == "retained-setting"
    });

    // The leader of partition 0 dies: publishes through the others still land.
    let leader = wait_for_leader(&client, topic, 0, REPLICATED_TIMEOUT, "partition 0's leader") as u64;
    cluster.node(leader).kill9();
    let survivor = (1..=NODES as u64).find(|n| *n != leader).expect("a surviving node");
    let mut after = BTreeSet::new();
    for device in 0..DEVICES {
        let payload = format!("after-kill-via-{survivor}-dev-{device}");
        mosquitto_pub(&cluster, survivor, &format!("plant/dev-{device}/temp"), &payload, &[]);
        after.insert(payload);
    }
    let read = kcat_values(&bootstrap_without(&cluster, leader), topic);
    assert!(after.is_subset(&read), "kcat lacks {:?} after the kill", after.difference(&read).collect::<Vec<_>>());
    cluster.assert_no_panics("after the MQTT cluster test");
}

/// `mosquitto_pub` at QoS 1 through node `node`; asserts it succeeded (the PUBACK came).
fn mosquitto_pub(cluster: &Cluster, node: u64, topic: &str, payload: &str, extra: &[&str]) {
    let (host, port) = cluster.mqtt_host_port(node);
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", &host, "-p", &port.to_string(), "-q", "1", "-t", topic, "-m", payload]).args(extra);
    use_system_libraries(&mut cmd);
    run_ok(cmd.stdin(Stdio::null()), CLIENT_TIMEOUT);
}

/// The Kafka bootstrap list of the nodes still running.
fn bootstrap_without(cluster: &Cluster, dead: u64) -> String {
    (1..=NODES as u64).filter(|n| *n != dead).map(|n| cluster.kafka_addr(n)).collect::<Vec<_>>().join(",")
}

fn kcat_lines(bootstrap: &str, topic: &str, format: &str) -> Vec<String> {
    let mut cmd = Command::new("kcat");
    cmd.args(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", format]);
    let out = run_ok(&mut cmd, CLIENT_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn kcat_values(bootstrap: &str, topic: &str) -> BTreeSet<String> {
    kcat_lines(bootstrap, topic, "%s\\n").into_iter().collect()
}

fn kcat_partitions(bootstrap: &str, topic: &str) -> BTreeSet<String> {
    kcat_lines(bootstrap, topic, "%p\\n").into_iter().collect()
}

/// A `mosquitto_sub` on one node printing payloads, one per line.
struct Subscriber {
    child: Child,
    out: std::path::PathBuf,
}

impl Subscriber {
    fn start(cluster: &Cluster, node: u64, filter: &str, out: &std::path::Path) -> Subscriber {
        let (host, port) = cluster.mqtt_host_port(node);
        let file = std::fs::File::create(out).expect("subscriber output");
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", &host, "-p", &port.to_string(), "-q", "1", "-t", filter, "-F", "%p"]);
        use_system_libraries(&mut cmd);
        let child = cmd.stdin(Stdio::null()).stdout(file).stderr(Stdio::null()).spawn().expect("start mosquitto_sub");
        Subscriber { child, out: out.to_path_buf() }
    }

    fn payloads(&self) -> BTreeSet<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
