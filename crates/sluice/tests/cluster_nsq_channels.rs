//! Proves NSQ channel state is replicated with its partition (issue 12): on a 3-node cluster
//! with a 3-partition topic replicated 3 times, a pynsq Reader and a gnsq Consumer (each on a
//! channel of its own) given every node's lookupd FIN messages published with MPUB while the
//! leader of a partition is killed with `kill -9` and restarted, 3 times. For each client: Every acknowledged message is finished at least once; a
//! message is delivered again only when a partition's leadership changed (a kill, a restart,
//! or a node starting or stopping to serve the channels, as the nodes' logs say) within a second of its last FIN (what was in
//! flight or finished just before), so the redeliveries, printed, are bounded by the kills; and a DPUB'd message whose leader is killed before it is due is delivered no
//! earlier than its due time, by the new leader. A channel created over HTTP on one node
//! exists on every node and, read afterwards, holds every message published since (from every
//! partition, across the failovers); deleted on another node, it is gone from every node.
//! A librdkafka consumer reading the topic from its start gets exactly the messages, never the
//! channel-state control batches between them.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::Cluster;
use common::{run_ok, unique_topic, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: usize = 3;
const PARTITIONS: i32 = 3;
const KILLS: usize = 3;
/// Bound on partitions electing leaders and filling their ISR (again after a restart).
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one NSQ answer (a forwarded publish waits for a majority commit).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Traffic between two kills, so the reader is busy on every partition when one dies.
const TRAFFIC_BETWEEN_KILLS: Duration = Duration::from_secs(2);
/// A FIN older than this at a leadership change was replicated (state written every 300 ms,
/// then committed): its message must never come back. The commit is the slow part: while a
/// restarted follower catches up on a loaded machine (load 15 seen), AppendEntries time out
/// and a state write waited over 2 s for its majority (a FIN 2.2 s before a change came back).
const FIN_REPLICATED_MS: i64 = 3_000;
/// Bound on the reader seeing every acknowledged message at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(40);
/// Delay of the DPUB'd message, published just before its node is killed.
const DEFER_MS: i64 = 3_000;
/// Messages per MPUB, and the pause between two (about 100 messages a second).
const MPUB_SIZE: usize = 5;
const PUBLISH_PAUSE: Duration = Duration::from_millis(50);
/// The failover readers: their script and channel.
const READERS: [(&str, &str); 2] =
    [("pynsq_failover_reader.py", "failover-pynsq"), ("gnsq_failover_reader.py", "failover-gnsq")];
/// The channel created over HTTP on one node.
const SECOND: &str = "second";

/// Was ignored on 2026-12-07 (1 run in 3 failed); the causes, found with the nodes' logs and
/// gnsq's debug log (`SLUICE_TEST_KEEP_CLUSTER_DIR=1` keeps both): gnsq recording a RDY it
/// never sent (worked around in the reader), a restarted follower deposing a healthy leader
/// after openraft's 500 ms back-off (then the same node led again from the replicated state,
/// forgetting the FINs of the last interval), and a channel created after the topic's first
/// starting at the log end when first served rather than at its creation.
#[test]
fn channel_state_survives_leader_kills() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let client = metadata_client(&bootstrap);
    let topic = unique_topic("nsq-channels");
    create_topic(&bootstrap, &topic, PARTITIONS, NODES as i32).expect("create the topic");
    wait_fully_replicated(&client, &topic, PARTITIONS, NODES, REPLICATED_TIMEOUT);

    let dir = tempfile::tempdir().expect("temp dir");
    // Kept (with the readers' debug logs) when the cluster's directory is kept.
    let keep = std::env::var_os("SLUICE_TEST_KEEP_CLUSTER_DIR").is_some();
    let dir_path = if keep { dir.keep() } else { dir.path().to_path_buf() };
    if keep {
        eprintln!("readers' directory (kept): {}", dir_path.display());
    }
    let stop_file = dir_path.join("stop");
    let mut readers: Vec<(&str, std::path::PathBuf, Reader)> = READERS
        .iter()
        .map(|(script, channel)| {
            let out = dir_path.join(channel);
            let child = start_reader(&cluster, script, &out, &stop_file, &topic, channel);
            (*channel, out, child)
        })
        .collect();
    // The readers' channels exist once they subscribed; publishing starts after.
    wait_until(REPLICATED_TIMEOUT, "the readers' channels", || {
        (1..=NODES as u64).all(|id| {
            let own = own_channels(&cluster, id, &topic);
            READERS.iter().all(|(_, channel)| own.contains(*channel))
        })
    });

    // A second channel, created on one node only: every node has it before publishing starts.
    // That node leads a partition: a node that leads none keeps a channel it creates to itself
    // until it leads one (README, "A cluster"); leadership may have moved off node 1 already.
    let creator = wait_for_leader(&client, &topic, 0, REPLICATED_TIMEOUT, "partition 0's leader") as u64;
    cluster_support::local::post_ok(
        &cluster.http_addr(creator),
        &format!("/channel/create?topic={topic}&channel={SECOND}"),
    );
    wait_until(REPLICATED_TIMEOUT, "the second channel on every node", || {
        (1..=NODES as u64).all(|id| own_channels(&cluster, id, &topic).contains(SECOND))
    });

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let nsq_addrs: Vec<String> = (1..=NODES as u64).map(|id| cluster.nsq_tcp_addr(id)).collect();
    let publisher = {
        let (acked, stop, topic) = (Arc::clone(&acked), Arc::clone(&stop), topic.clone());
        std::thread::spawn(move || publish_until(&nsq_addrs, &topic, &acked, &stop))
    };

    let mut events_ms = Vec::new();
    let mut deferred = None;
    for kill in 0..KILLS {
        std::thread::sleep(TRAFFIC_BETWEEN_KILLS);
        let partition = kill as i32 % PARTITIONS;
        let leader = wait_for_leader(&client, &topic, partition, REPLICATED_TIMEOUT, "a leader") as u64;
        if kill == 1 {
            // Lands on a partition the doomed node leads (NSQ publishes locally).
            let body = "deferred-1".to_string();
            let sent = now_ms();
            let mut wire = NsqWire::connect(&cluster.nsq_tcp_addr(leader)).expect("connect for DPUB");
            wire.command(&format!("DPUB {topic} {DEFER_MS}"), body.as_bytes()).expect("DPUB");
            deferred = Some((body, sent));
        }
        events_ms.push(now_ms());
        cluster.node(leader).kill9();
        eprintln!("kill {kill}: node {leader}, leader of partition {partition}");
        wait_until(REPLICATED_TIMEOUT, "a new leader", || {
            cluster_support::kafka::leader_of(&client, &topic, partition).is_some_and(|l| l as u64 != leader)
        });
        cluster.node(leader).restart();
        events_ms.push(now_ms());
        wait_fully_replicated(&client, &topic, PARTITIONS, NODES, REPLICATED_TIMEOUT);
    }
    std::thread::sleep(TRAFFIC_BETWEEN_KILLS);
    stop.store(true, Ordering::Relaxed);
    publisher.join().expect("publisher");
    // Leadership also moves without a kill (back to a restarted node, or to the same node in a
    // new term after an election a restarted peer called): each time a node stopped or started
    // serving the topic's channels is an event that may explain a redelivery, as a kill is.
    events_ms.extend(serving_changes(&mut cluster, &topic));
    events_ms.sort_unstable();
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() > 100, "only {} messages acknowledged", acked.len());

    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let missing: Vec<(&str, Vec<&String>)> = readers
            .iter()
            .map(|(channel, out, _)| {
                let deliveries = read_deliveries(out);
                (*channel, acked.iter().filter(|b| !deliveries.contains_key(*b)).collect())
            })
            .collect();
        if missing.iter().all(|(_, m)| m.is_empty()) {
            break;
        }
        if Instant::now() > drain_deadline {
            let summary: Vec<String> = missing
                .iter()
                .map(|(channel, m)| {
                    format!("{channel}: {} missing, first {:?}", m.len(), m.iter().take(5).collect::<Vec<_>>())
                })
                .collect();
            panic!("after {DRAIN_TIMEOUT:?} not every acknowledged message was finished: {summary:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A little longer, so late redeliveries (if any) are seen and judged too.
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop_file, b"").expect("stop file");
    let deferred = deferred.expect("a deferred message");
    let mut written = BTreeSet::new();
    for (channel, out, reader) in &mut readers {
        let _ = reader.0.wait();
        let deliveries = read_deliveries(out);
        check_deliveries(channel, &deliveries, &acked, &events_ms, &deferred);
        written.extend(deliveries.into_keys());
    }

    // The second channel kept every message written since it was created, on every partition.
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/nsq/pynsq_cluster_reader.py");
    let mut second = Command::new("python3");
    second.arg(script).args([cluster.http_addr(2), topic.clone(), SECOND.into(), written.len().to_string()]);
    let read: BTreeSet<String> =
        serde_json::from_slice(&run_ok(&mut second, DRAIN_TIMEOUT).stdout).expect("the reader's JSON list");
    assert_eq!(read, written, "the channel created on node 1 holds every message");

    // Kafka consumers skip the channel-state batches the partitions now hold.
    assert_eq!(kafka_read_all(&bootstrap, &topic), written, "librdkafka reads the messages and only them");

    // Deleted on another node: gone from every node, and not brought back by older state.
    cluster_support::local::post_ok(&cluster.http_addr(3), &format!("/channel/delete?topic={topic}&channel={SECOND}"));
    wait_until(REPLICATED_TIMEOUT, "the second channel deleted on every node", || {
        (1..=NODES as u64).all(|id| !own_channels(&cluster, id, &topic).contains(SECOND))
    });
    std::thread::sleep(Duration::from_secs(1));
    for id in 1..=NODES as u64 {
        assert!(!own_channels(&cluster, id, &topic).contains(SECOND), "node {id} brought the channel back");
    }
    cluster.assert_no_panics("after the NSQ channel failover test");
}

/// One reader's deliveries: every redelivery of a message id follows a kill or restart within
/// `FIN_REPLICATED_MS` of its previous FIN; their count is printed and bounded; the deferred
/// message came no earlier than its due time.
fn check_deliveries(
    channel: &str,
    deliveries: &BTreeMap<String, Vec<Delivery>>,
    acked: &BTreeSet<String>,
    events_ms: &[i64],
    deferred: &(String, i64),
) {
    let mut redelivered = 0;
    let mut published_twice = 0;
    for (body, all) in deliveries {
        let ids: BTreeSet<&str> = all.iter().map(|d| d.id.as_str()).collect();
        published_twice += ids.len() - 1;
        for id in ids {
            let of_id: Vec<&Delivery> = all.iter().filter(|d| d.id == id).collect();
            for pair in of_id.windows(2) {
                let previous = pair[0].ms;
                redelivered += 1;
                let explained = events_ms.iter().any(|e| *e >= previous - 200 && *e <= previous + FIN_REPLICATED_MS);
                assert!(
                    explained,
                    "{body} ({id}) delivered again at {} after its FIN at {previous}, with no kill or restart \
                     within {FIN_REPLICATED_MS} ms after it (events {events_ms:?})",
                    pair[1].ms
                );
            }
        }
    }
    let total: usize = deliveries.values().map(Vec::len).sum();
    println!(
        "{channel}: acknowledged {}, delivered {} distinct bodies in {total} deliveries: {redelivered} redelivered over \
         {KILLS} kills, {published_twice} written twice by a retried forwarded publish",
        acked.len(),
        deliveries.len()
    );
    // In flight at a kill: at most the reader's max_in_flight, plus FINs of the last state
    // interval; generously bounded by what a second of publishing adds.
    assert!(redelivered <= KILLS * 300, "{redelivered} redeliveries");

    let (body, sent) = deferred;
    let first = deliveries.get(body).and_then(|t| t.first()).expect("the deferred message delivered").ms;
    println!("deferred message due at {}, delivered at {first}", sent + DEFER_MS);
    assert!(first >= sent + DEFER_MS, "deferred message delivered {} ms early", sent + DEFER_MS - first);
}

/// Every record value of `topic`, read by librdkafka from each partition's start to its end.
fn kafka_read_all(bootstrap: &str, topic: &str) -> BTreeSet<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "nsq-channels-kafka-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut values = BTreeSet::new();
    let mut ended = BTreeSet::new();
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while ended.len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "librdkafka reached the end of only {ended:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                values.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            _ => {}
        }
    }
    values
}

/// The channels a node itself has (its nsqd `/stats`, not the cluster-wide lookupd answer).
fn own_channels(cluster: &Cluster, id: u64, topic: &str) -> BTreeSet<String> {
    let stats = cluster_support::local::get_json(&cluster.http_addr(id), &format!("/stats?format=json&topic={topic}"))
        .unwrap_or_default();
    let topics = stats["topics"].as_array().cloned().unwrap_or_default();
    topics
        .iter()
        .flat_map(|t| t["channels"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["channel_name"].as_str().map(str::to_string))
        .collect()
}

fn start_reader(
    cluster: &Cluster,
    script: &str,
    out: &std::path::Path,
    stop_file: &std::path::Path,
    topic: &str,
    channel: &str,
) -> Reader {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/nsq").join(script);
    let mut command = Command::new("python3");
    command.arg(script).arg(out).arg(stop_file).args([topic, channel]);
    command.args((1..=NODES as u64).map(|id| cluster.http_addr(id)));
    if std::env::var_os("SLUICE_TEST_KEEP_CLUSTER_DIR").is_some() {
        command.env("GNSQ_DEBUG_LOG", out.with_extension("log"));
    }
    Reader(command.stdout(Stdio::null()).spawn().expect("start the pynsq reader"))
}

/// A reader process, ended with the test even when an assertion fails first (else it would
/// poll lookupd forever and hold the test's output open).
struct Reader(Child);

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One delivery: when it was FINished, its message id (partition and offset), its attempts
/// (kept for the failure message).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    ms: i64,
    id: String,
    attempts: u64,
}

/// Body → its deliveries in order. A body under two ids was written twice (a forwarded
/// publish retried after its node died: NSQ publishing is at-least-once).
fn read_deliveries(path: &std::path::Path) -> BTreeMap<String, Vec<Delivery>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let [body, id, ms, attempts] = fields[..] else { continue };
        let (Ok(ms), Ok(attempts)) = (ms.parse(), attempts.parse()) else { continue };
        out.entry(body.to_string()).or_default().push(Delivery { ms, id: id.to_string(), attempts });
    }
    out.values_mut().for_each(|v| v.sort_unstable());
    out
}

/// MPUBs unique bodies to the nodes in turn until `stop`, recording those acknowledged.
fn publish_until(addrs: &[String], topic: &str, acked: &Mutex<BTreeSet<String>>, stop: &AtomicBool) {
    let mut wires: Vec<Option<NsqWire>> = addrs.iter().map(|_| None).collect();
    let started = Instant::now();
    let mut seq = 0usize;
    // Bounded in time: the test stops it well before.
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
        let at = seq % addrs.len();
        let bodies: Vec<String> = (0..MPUB_SIZE).map(|i| format!("m-{seq}-{i}")).collect();
        seq += 1;
        if wires[at].is_none() {
            wires[at] = NsqWire::connect(&addrs[at]).ok();
        }
        if let Some(wire) = wires[at].as_mut() {
            let mut mpub = (bodies.len() as u32).to_be_bytes().to_vec();
            for b in &bodies {
                mpub.extend_from_slice(&(b.len() as u32).to_be_bytes());
                mpub.extend_from_slice(b.as_bytes());
            }
            match wire.command(&format!("MPUB {topic}"), &mpub) {
                Ok(()) => acked.lock().expect("acked").extend(bodies),
                Err(_) => wires[at] = None,
            }
        }
        std::thread::sleep(PUBLISH_PAUSE);
    }
}

/// Records when any partition's leader changes (polled every 50 ms) until `stop`.
/// When a node stopped or started serving `topic`'s channels on a partition (ms since the
/// epoch), from every node's log: Metadata shows a new leader, not a new term of the same one.
fn serving_changes(cluster: &mut Cluster, topic: &str) -> Vec<i64> {
    let mut changes = Vec::new();
    for id in 1..=NODES as u64 {
        let log = cluster.node(id).log_contents();
        let lines = log.lines().filter(|l| l.contains(topic));
        let serving =
            lines.filter(|l| l.contains("channels no longer served here") || l.contains("channels served here"));
        changes.extend(serving.filter_map(log_time_ms));
    }
    changes
}

/// The time a log line starts with (`2026-12-08T00:08:14.342176Z`, UTC), in ms since the epoch.
fn log_time_ms(line: &str) -> Option<i64> {
    let stamp = line.get(..23)?;
    let number = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second, millis) = (number(11..13)?, number(14..16)?, number(17..19)?, number(20..23)?);
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis)
}

#[test]
fn log_times_are_read_as_utc() {
    assert_eq!(log_time_ms("1970-01-01T00:00:00.000000Z INFO x"), Some(0));
    assert_eq!(log_time_ms("2026-12-08T00:08:14.342176Z  INFO x"), Some(1_796_688_494_342));
    assert_eq!(log_time_ms("----- harness: start"), None);
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A raw NSQ V2 connection that publishes and expects `OK` to each command.
struct NsqWire(TcpStream);

impl NsqWire {
    fn connect(addr: &str) -> std::io::Result<NsqWire> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.write_all(b"  V2")?;
        Ok(NsqWire(stream))
    }

    fn command(&mut self, line: &str, body: &[u8]) -> Result<(), String> {
        let mut out = format!("{line}\n").into_bytes();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        self.0.write_all(&out).map_err(|e| e.to_string())?;
        let mut head = [0u8; 8];
        self.0.read_exact(&mut head).map_err(|e| format!("{line}: no answer: {e}"))?;
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !(4..1024).contains(&size) {
            return Err(format!("{line}: frame size {size}"));
        }
        let mut data = vec![0u8; size - 4];
        self.0.read_exact(&mut data).map_err(|e| e.to_string())?;
        match &data[..] {
            b"OK" => Ok(()),
            other => Err(format!("{line}: {}", String::from_utf8_lossy(other))),
        }
    }
}
