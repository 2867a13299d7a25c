//! Proves log compaction runs on replicated partitions and survives a failover and a wiped
//! disk: a 3-node cluster, a replication-factor-3 `cleanup.policy=compact` topic with tiny
//! segments, written by an idempotent librdkafka producer with many values per key and
//! tombstones for some keys. Every replica's own log (read through its admin API) shrinks to
//! a small part of what was written and holds the latest value of every key; a consumer from
//! the beginning reads that table. Then the leader is killed: the new leader serves the same
//! table; the killed node comes back with a wiped data dir and is sent the compacted log
//! (not a snapshot that would skip it), so its own log holds the full table too. The same
//! cluster also shows `__consumer_offsets` compacted on every replica after a thousand
//! commits of one group, and its coordinator's successor loading the last commit.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{leader_of, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::local::get_json;
use cluster_support::produce::producer;
use cluster_support::{Cluster, ClusterOpts};
use common::{client_config, plain_consumer, runtime, unique_topic, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const SEGMENT_BYTES: u64 = 4096;
const KEYS: u64 = 40;
const ROUNDS: u64 = 60;
/// Keys whose last record is a tombstone.
const DELETED_KEYS: u64 = 5;
const RECORDS: u64 = KEYS * ROUNDS + DELETED_KEYS;
/// Offset commits of the one group: enough for many offsets segments.
const COMMITS: i64 = 1000;
const OFFSETS_PARTITIONS: u32 = 8;
const GROUP: &str = "compaction-group";
const TIMEOUT: Duration = Duration::from_secs(45);
/// Admin API pages read at most from one log.
const PAGES_MAX: usize = 100;

/// What a compacted log must read as: each key's latest value (None: deleted).
type Table = BTreeMap<String, Option<String>>;

#[test]
fn compaction_runs_on_every_replica_and_survives_failover_and_a_wiped_node() {
    let opts = ClusterOpts { args: vec!["--segment-bytes".into(), SEGMENT_BYTES.to_string()], ..Default::default() };
    let mut cluster = Cluster::start_with(NODES, opts);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-compacted");
    create_compacted_topic(&bootstrap, &topic);
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);

    let (expected, payload_bytes) = write_table(&bootstrap, &topic);
    eprintln!("cluster_compaction: wrote {RECORDS} records, {payload_bytes} bytes of keys and values");
    let ids: Vec<u64> = (1..=NODES as u64).collect();
    for &id in &ids {
        let held = wait_for_compacted_copy(&cluster, id, &topic, &expected);
        let bytes = log_bytes(&partition_dir(&cluster, id, &topic, 0));
        eprintln!("cluster_compaction: node {id} holds {held} of {RECORDS} records, {bytes} bytes of segments");
    }
    assert_eq!(consume_table(&bootstrap, &topic), expected, "a consumer reads the latest value of every key");

    let leader = wait_for_leader(&client, &topic, 0, TIMEOUT, "a leader") as u64;
    cluster.node(leader).kill9();
    wait_until(TIMEOUT, "a new leader", || matches!(leader_of(&client, &topic, 0), Some(l) if l as u64 != leader));
    assert_eq!(consume_table(&bootstrap, &topic), expected, "the new leader serves the same table");

    cluster.node(leader).wipe_and_restart();
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);
    let held = wait_for_compacted_copy(&cluster, leader, &topic, &expected);
    eprintln!("cluster_compaction: wiped node {leader} was sent the compacted log: {held} records");

    offsets_are_compacted_and_survive_their_coordinator(&mut cluster, &client, &topic);
    cluster.assert_no_panics("after replicated compaction, a failover and a wiped node");
}

/// A thousand commits of one group: every replica of its offsets partition ends under a quarter of
/// what they take uncompacted; after its coordinator is killed, the group's last commit loads.
fn offsets_are_compacted_and_survive_their_coordinator(cluster: &mut Cluster, client: &BaseConsumer, topic: &str) {
    let bootstrap = cluster.bootstrap_servers();
    let consumer = group_consumer(&bootstrap);
    let index = kafka_partition_of(GROUP, OFFSETS_PARTITIONS);
    let commit = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(offset)).expect("tpl");
        let deadline = Instant::now() + TIMEOUT;
        while let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            assert!(Instant::now() < deadline, "commit {offset}: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for offset in 1..=10 {
        commit(offset);
    }
    let ids: Vec<u64> = (1..=NODES as u64).collect();
    // Ten commits fit the active segment, never compacted: what one commit takes on disk.
    let per_commit = ids.iter().map(|&id| offsets_bytes(cluster, id, index)).max().unwrap_or(0) / 10;
    for offset in 11..=COMMITS {
        commit(offset);
    }
    let uncompacted = per_commit * COMMITS as u64;
    wait_until(TIMEOUT, "every offsets replica compacted", || {
        ids.iter().all(|&id| offsets_bytes(cluster, id, index) * 4 < uncompacted)
    });
    for &id in &ids {
        let bytes = offsets_bytes(cluster, id, index);
        eprintln!("cluster_compaction: {COMMITS} commits, __consumer_offsets-{index} on node {id}: {bytes} bytes (uncompacted about {uncompacted})");
    }
    drop(consumer);

    let coordinator = wait_for_leader(client, "__consumer_offsets", index, TIMEOUT, "a coordinator") as u64;
    cluster.node(coordinator).kill9();
    let fresh = group_consumer(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let mut last = None;
    wait_until(TIMEOUT, "the new coordinator to load the last commit", || {
        last = fresh
            .committed_offsets(tpl.clone(), Duration::from_secs(5))
            .ok()
            .and_then(|c| c.find_partition(topic, 0).map(|p| p.offset()));
        last == Some(Offset::Offset(COMMITS))
    });
    cluster.node(coordinator).restart();
}

/// Writes `ROUNDS` values of every key, round by round (each round a few batches), then
/// tombstones for the first `DELETED_KEYS` keys; returns the table it must read as and the
/// bytes of keys and values written.
fn write_table(bootstrap: &str, topic: &str) -> (Table, usize) {
    let producer = producer(bootstrap, true);
    let mut expected = Table::new();
    let mut payload_bytes = 0;
    runtime().block_on(async {
        for round in 0..ROUNDS {
            let mut sends = Vec::new();
            for key in 0..KEYS {
                let (k, v) = (format!("key-{key}"), format!("value-{key}-{round}-{}", "x".repeat(40)));
                let record = FutureRecord::to(topic).partition(0).key(&k).payload(&v);
                sends.push(producer.send_result(record).expect("queue a send"));
                payload_bytes += k.len() + v.len();
                expected.insert(k, Some(v));
            }
            for send in sends {
                send.await.expect("delivery").expect("acknowledged");
            }
        }
        for key in 0..DELETED_KEYS {
            let k = format!("key-{key}");
            let record: FutureRecord<'_, String, [u8]> = FutureRecord::to(topic).partition(0).key(&k);
            producer.send_result(record).expect("queue").await.expect("delivery").expect("acknowledged");
            payload_bytes += k.len();
            expected.insert(k, None);
        }
    });
    (expected, payload_bytes)
}

/// Waits until node `id`'s own log reads as `expected` with at most a quarter of the records
/// written; returns how many it holds.
fn wait_for_compacted_copy(cluster: &Cluster, id: u64, topic: &str, expected: &Table) -> usize {
    let http = cluster.http_addr(id);
    let mut seen = (0, Table::new());
    wait_until(TIMEOUT, &format!("node {id}'s own log compacted"), || {
        // A wiped node answers 404 until it has re-created the topic.
        if let Ok(read) = own_table(&http, topic) {
            seen = read;
        }
        seen.1 == *expected && (seen.0 as u64) * 4 < RECORDS
    });
    seen.0
}

/// A node's own log of partition 0 read as a table, and how many records it holds.
fn own_table(http: &str, topic: &str) -> Result<(usize, Table), String> {
    let mut table = Table::new();
    let (mut offset, mut held) = (0i64, 0usize);
    for _ in 0..PAGES_MAX {
        let path = format!("/api/topics/{topic}/partitions/0/messages?offset={offset}&limit=1000");
        let page = get_json(http, &path)?;
        let messages = page["messages"].as_array().ok_or_else(|| format!("no messages in {page}"))?;
        for m in messages {
            let key = m["key"].as_str().ok_or_else(|| format!("record without key: {m}"))?;
            table.insert(key.to_string(), m["value"].as_str().map(str::to_string));
            held += 1;
        }
        let next = page["next_offset"].as_i64().ok_or_else(|| format!("no next_offset in {page}"))?;
        if next <= offset {
            return Ok((held, table));
        }
        offset = next;
    }
    Err(format!("{topic}: more than {PAGES_MAX} pages"))
}

/// The table a librdkafka consumer reads from the beginning to the high watermark.
fn consume_table(bootstrap: &str, topic: &str) -> Table {
    let deadline = Instant::now() + TIMEOUT;
    let consumer = plain_consumer(bootstrap, &[]);
    let high = loop {
        match consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)) {
            Ok((_, high)) => break high,
            Err(e) => assert!(Instant::now() < deadline, "watermarks of {topic}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut table = Table::new();
    let mut next = 0;
    while next < high {
        assert!(Instant::now() < deadline, "consumed {topic} only up to {next} of {high}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                table.insert(key, m.payload().map(|v| String::from_utf8_lossy(v).into_owned()));
                next = m.offset() + 1;
            }
            Some(Err(e)) => eprintln!("consumer error (continuing): {e}"),
            None => {}
        }
    }
    table
}

fn group_consumer(bootstrap: &str) -> BaseConsumer {
    let mut cfg: ClientConfig = client_config(bootstrap);
    cfg.set("group.id", GROUP).set("enable.auto.commit", "false");
    cfg.create().expect("group consumer")
}

fn create_compacted_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin client");
    let segment = SEGMENT_BYTES.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(NODES as i32))
        .set("cleanup.policy", "compact")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("segment.bytes", &segment);
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let results = runtime().block_on(admin.create_topics(&[new], &options)).expect("create_topics");
    assert!(results.iter().all(|r| r.is_ok()), "create {topic}: {results:?}");
}

/// Kafka's `abs(groupId.hashCode) % partitions`.
fn kafka_partition_of(group: &str, partitions: u32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    (if hash == i32::MIN { 0 } else { hash.abs() }) % partitions as i32
}

fn partition_dir(cluster: &Cluster, id: u64, topic: &str, index: i32) -> PathBuf {
    cluster.nodes()[id as usize - 1].data_dir().join("topics").join(topic).join(index.to_string())
}

fn offsets_bytes(cluster: &Cluster, id: u64, index: i32) -> u64 {
    log_bytes(&partition_dir(cluster, id, "__consumer_offsets", index))
}

/// Total size of the segment files (`*.log`) in a partition directory.
fn log_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
