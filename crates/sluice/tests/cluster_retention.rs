//! Proves retention works on a replicated partition, on every replica: a 3-node cluster, a
//! replication-factor-3 topic with tiny segments and a small `retention.bytes`, written by an
//! idempotent librdkafka producer until it rolled dozens of segments. Every node's partition
//! directory ends with a bounded number of segments; ListOffsets earliest moves forward on the
//! leader; a consumer from the beginning starts at the new log start and reads the rest in
//! order, each record at the offset it was acknowledged at. Then the leader is killed: the new
//! leader serves more writes, the killed node restarts and catches up (by log or snapshot),
//! and every node's own log, read from its log start, holds every acknowledged record from
//! there on with no gap.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{metadata_client, wait_for_leader, wait_fully_replicated, REQUEST_TIMEOUT};
use cluster_support::local::get;
use cluster_support::produce::{produce, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::raw::{fetch_request, Raw};
use common::{client_config, consume_range, runtime, unique_topic, wait_until};
use history::{Op, Recorder};
use kafka_protocol::messages::FetchResponse;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const NODES: usize = 3;
const SEGMENT_BYTES: u64 = 2048;
const RETENTION_BYTES: u64 = 8192;
/// Retention keeps at least `RETENTION_BYTES` in whole segments, plus the active one: a
/// directory with more than this many segments was not trimmed.
const SEGMENTS_MAX: usize = (RETENTION_BYTES / SEGMENT_BYTES) as usize + 3;
const RECORDS: u64 = 4000;
const RECORDS_AFTER_FAILOVER: u64 = 1000;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Kafka's error code for a fetch outside the log.
const OFFSET_OUT_OF_RANGE: i16 = 1;

#[test]
fn retention_trims_every_replica_and_survives_a_failover() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-retention");
    create_small_segment_topic(&bootstrap, &topic);
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);

    let recorder = Recorder::new();
    let produced = produce(&bootstrap, &spec(&topic, "r", RECORDS), &recorder, &Stop::default());
    assert_eq!(produced.sent, RECORDS);
    let acked = acknowledged(&recorder);
    assert_eq!(acked.len() as u64, RECORDS, "every send acknowledged");
    let end = acked.keys().last().copied().unwrap_or_default() + 1;

    wait_until(TIMEOUT, "every replica trimmed by retention", || {
        (1..=NODES as u64).all(|id| segments(&partition_dir(&cluster, id, &topic)) <= SEGMENTS_MAX)
    });
    let mut low = 0;
    wait_until(TIMEOUT, "ListOffsets earliest to move forward on the leader", || {
        low = client.fetch_watermarks(&topic, 0, REQUEST_TIMEOUT).map_or(0, |(l, _)| l);
        low > 0
    });
    eprintln!("cluster_retention: {end} records written, log start {low} after retention");
    let read = consume_range(&bootstrap, &topic, 0, Offset::Beginning, (end - low) as usize, TIMEOUT);
    assert_eq!(read.first().map(|r| r.offset), Some(low), "a consumer from the beginning starts at the log start");
    for (i, rec) in read.iter().enumerate() {
        assert_eq!(rec.offset, low + i as i64, "records in order without a gap");
        let value = String::from_utf8_lossy(rec.value.as_deref().unwrap_or_default()).into_owned();
        assert_eq!(acked.get(&rec.offset), Some(&value), "offset {} holds what was acknowledged there", rec.offset);
    }

    let leader = wait_for_leader(&client, &topic, 0, TIMEOUT, "a leader") as u64;
    assert_eq!(fetch_error(&cluster.kafka_addr(leader), &topic, 0), OFFSET_OUT_OF_RANGE, "Fetch below the log start");
    cluster.node(leader).kill9();
    wait_until(
        TIMEOUT,
        "a new leader",
        || matches!(cluster_support::kafka::leader_of(&client, &topic, 0), Some(l) if l as u64 != leader),
    );
    let produced = produce(&bootstrap, &spec(&topic, "s", RECORDS_AFTER_FAILOVER), &recorder, &Stop::default());
    assert_eq!(produced.sent, RECORDS_AFTER_FAILOVER);
    let acked = acknowledged(&recorder);
    assert_eq!(acked.len() as u64, RECORDS + RECORDS_AFTER_FAILOVER, "the new leader acknowledged every send");
    let end = acked.keys().last().copied().unwrap_or_default() + 1;

    cluster.node(leader).restart();
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);
    for id in 1..=NODES as u64 {
        let http = cluster.http_addr(id);
        wait_until(TIMEOUT, &format!("node {id} to catch up to {end}"), || {
            span(&http, &topic).is_some_and(|s| s.1 >= end)
        });
        let (start, read) = read_own_log(&http, &topic, end, &acked);
        eprintln!("cluster_retention: node {id} holds {start}..{end} ({read} records)");
    }
    wait_until(TIMEOUT, "every replica trimmed again", || {
        (1..=NODES as u64).all(|id| segments(&partition_dir(&cluster, id, &topic)) <= SEGMENTS_MAX)
    });
    cluster.assert_no_panics("after retention and a failover");
}

/// The error code of a raw Fetch (v11) of partition 0 from `offset` at `kafka_addr`.
fn fetch_error(kafka_addr: &str, topic: &str, offset: i64) -> i16 {
    let addr = kafka_addr.parse().expect("kafka address");
    let mut raw = Raw::connect_addr(addr);
    let req = fetch_request(topic, 0, offset, 100, 1024 * 1024, 1024 * 1024);
    let resp: FetchResponse = raw.request(11, &req);
    let partition = resp.responses.first().and_then(|t| t.partitions.first()).expect("a partition in the answer");
    partition.error_code
}

fn spec(topic: &str, prefix: &str, count: u64) -> ProduceSpec {
    ProduceSpec {
        topic: topic.to_string(),
        prefix: prefix.into(),
        count_max: count,
        idempotent: true,
        round_robin: Some(1),
        pace: None,
    }
}

fn create_small_segment_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin client");
    let segment = SEGMENT_BYTES.to_string();
    let retention = RETENTION_BYTES.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(NODES as i32))
        .set("segment.bytes", &segment)
        .set("retention.bytes", &retention);
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let results = runtime().block_on(admin.create_topics(&[new], &options)).expect("create_topics");
    assert!(results.iter().all(|r| r.is_ok()), "create {topic}: {results:?}");
}

/// Acknowledged values by offset.
fn acknowledged(recorder: &Recorder) -> BTreeMap<i64, String> {
    let ops = recorder.ops().into_iter();
    ops.filter_map(|op| match op {
        Op::SendOk { value, offset, .. } => Some((offset, value)),
        _ => None,
    })
    .collect()
}

/// Node `id`'s directory of partition 0 (nodes are numbered from 1 in start order).
fn partition_dir(cluster: &Cluster, id: u64, topic: &str) -> std::path::PathBuf {
    cluster.nodes()[id as usize - 1].data_dir().join("topics").join(topic).join("0")
}

/// Segment files (`*.log`) in a partition directory.
fn segments(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return usize::MAX };
    entries.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "log")).count()
}

/// The node's own log start and end of partition 0.
fn span(http: &str, topic: &str) -> Option<(i64, i64)> {
    let (status, body) = get(http, &format!("/api/topics/{topic}")).ok()?;
    let detail: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    let p = detail["partitions"].as_array()?.iter().find(|p| p["partition"] == 0)?.clone();
    Some((p["log_start_offset"].as_i64()?, p["log_end_offset"].as_i64()?))
}

/// Reads the node's own log of partition 0 from its start to `end`, asserting each record
/// sits at the next offset (no gap) and holds what was acknowledged there; returns the start
/// and the count. Retention may move the start while this reads: the read starts over from
/// the new start then (bounded).
fn read_own_log(http: &str, topic: &str, end: i64, acked: &BTreeMap<i64, String>) -> (i64, usize) {
    for _ in 0..5 {
        if let Some(read) = try_read_own_log(http, topic, end, acked) {
            return read;
        }
    }
    panic!("{http}: the log start kept moving while reading")
}

fn try_read_own_log(http: &str, topic: &str, end: i64, acked: &BTreeMap<i64, String>) -> Option<(i64, usize)> {
    let (start, _) = span(http, topic).expect("partition span");
    let mut offset = start;
    let mut read = 0;
    for _ in 0..1000 {
        if offset >= end {
            return Some((start, read));
        }
        let path = format!("/api/topics/{topic}/partitions/0/messages?offset={offset}&limit=1000");
        let (status, body) = get(http, &path).expect("browse");
        assert_eq!(status, 200, "{path}: {body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("browse JSON");
        for m in page["messages"].as_array().expect("messages") {
            if m["offset"].as_i64() != Some(offset) && span(http, topic).is_some_and(|(now, _)| now > offset) {
                return None;
            }
            assert_eq!(m["offset"].as_i64(), Some(offset), "{http}: records without a gap from {start}");
            assert_eq!(m["value"].as_str(), acked.get(&offset).map(String::as_str), "{http}: offset {offset}");
            offset += 1;
            read += 1;
        }
    }
    panic!("{http}: browse did not reach {end}")
}
