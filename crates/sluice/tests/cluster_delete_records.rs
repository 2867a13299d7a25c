//! Proves DeleteRecords (KIP-107) on a replicated partition, as Kafka's: a 3-node cluster, a
//! replication-factor-3 topic with small segments, written by librdkafka; librdkafka's
//! AdminClient deletes below an offset and is answered that offset as the low watermark; a
//! follower asked directly answers NOT_LEADER_OR_FOLLOWER; every replica's own log then
//! starts there and holds no segment wholly below it. The leader is killed: the new leader's
//! low watermark is the same, a consumer from the beginning starts there; the killed node
//! comes back with a wiped data dir and its log starts at or after it too, so no failover
//! brings a deleted record back.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{leader_of, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::local::get_json;
use cluster_support::produce::producer;
use cluster_support::Cluster;
use common::raw::Raw;
use common::{client_config, consume_range, runtime, unique_topic, wait_until};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::path::PathBuf;
use std::time::Duration;

const NODES: usize = 3;
const SEGMENT_BYTES: u64 = 2048;
const RECORDS: i64 = 2000;
const DELETE_BELOW: i64 = 1234;
const TIMEOUT: Duration = Duration::from_secs(45);
/// Kafka's error code for a request to a replica that does not lead the partition.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[test]
fn delete_records_moves_every_replicas_log_start_and_survives_failover() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-delete-records");
    create_topic(&bootstrap, &topic);
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);
    write(&bootstrap, &topic);

    let leader = wait_for_leader(&client, &topic, 0, TIMEOUT, "a leader") as u64;
    let follower = (1..=NODES as u64).find(|&id| id != leader).expect("a follower");
    assert_eq!(raw_delete_error(&cluster.kafka_addr(follower), &topic), NOT_LEADER_OR_FOLLOWER, "on a follower");

    let admin: AdminClient<DefaultClientContext> = client_config(&bootstrap).create().expect("admin client");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(DELETE_BELOW)).expect("tpl");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let answer = runtime().block_on(admin.delete_records(&tpl, &options)).expect("DeleteRecords request");
    let element = &answer.elements()[0];
    assert_eq!(element.error(), Ok(()), "DeleteRecords on the leader");
    assert_eq!(element.offset(), Offset::Offset(DELETE_BELOW), "the answer is the new low watermark");

    for id in 1..=NODES as u64 {
        wait_for_log_start(&cluster, id, &topic);
    }
    let low = client.fetch_watermarks(&topic, 0, TIMEOUT).expect("watermarks").0;
    assert_eq!(low, DELETE_BELOW, "ListOffsets earliest on the leader");

    cluster.node(leader).kill9();
    wait_until(TIMEOUT, "a new leader", || matches!(leader_of(&client, &topic, 0), Some(l) if l as u64 != leader));
    let mut low = -1;
    wait_until(TIMEOUT, "the new leader's low watermark", || {
        low = client.fetch_watermarks(&topic, 0, Duration::from_secs(5)).map_or(-1, |(l, _)| l);
        low >= 0
    });
    assert_eq!(low, DELETE_BELOW, "the new leader's low watermark");
    let first = consume_range(&bootstrap, &topic, 0, Offset::Beginning, 1, TIMEOUT);
    assert_eq!(first[0].offset, DELETE_BELOW, "a consumer from the beginning starts at the new log start");

    cluster.node(leader).wipe_and_restart();
    wait_fully_replicated(&client, &topic, 1, NODES, TIMEOUT);
    let start = wait_for_log_start(&cluster, leader, &topic);
    eprintln!("cluster_delete_records: wiped node {leader} starts its log at {start}");
    cluster.assert_no_panics("after DeleteRecords, a failover and a wiped node");
}

/// Waits until node `id`'s own log starts at or after `DELETE_BELOW` (and has applied that
/// far) with no segment wholly below its start; returns its log start.
fn wait_for_log_start(cluster: &Cluster, id: u64, topic: &str) -> i64 {
    let http = cluster.http_addr(id);
    let dir = partition_dir(cluster, id, topic);
    let mut seen = (-1, -1, Vec::new());
    wait_until(TIMEOUT, &format!("node {id}'s log start to reach {DELETE_BELOW}"), || {
        let Ok(detail) = get_json(&http, &format!("/api/topics/{topic}")) else { return false };
        let p = &detail["partitions"][0];
        seen = (p["log_start_offset"].as_i64().unwrap_or(-1), p["log_end_offset"].as_i64().unwrap_or(-1), bases(&dir));
        let (start, _, bases) = &seen;
        *start >= DELETE_BELOW && seen.1 >= RECORDS && bases.get(1).is_none_or(|&next| next > *start)
    });
    eprintln!("cluster_delete_records: node {id} log {}..{}, segments from {:?}", seen.0, seen.1, seen.2.first());
    seen.0
}

/// Base offsets of the segments in a partition directory, in order.
fn bases(dir: &std::path::Path) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut bases: Vec<i64> =
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok()).collect();
    bases.sort_unstable();
    bases
}

/// The error code of a raw DeleteRecords (v1) of partition 0 below `DELETE_BELOW`.
fn raw_delete_error(kafka_addr: &str, topic: &str) -> i16 {
    let mut raw = Raw::connect_addr(kafka_addr.parse().expect("kafka address"));
    let partition = DeleteRecordsPartition::default().with_partition_index(0).with_offset(DELETE_BELOW);
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default().with_name(name).with_partitions(vec![partition])])
        .with_timeout_ms(10_000);
    let response: DeleteRecordsResponse = raw.request(1, &request);
    response.topics[0].partitions[0].error_code
}

fn write(bootstrap: &str, topic: &str) {
    let producer = producer(bootstrap, true);
    runtime().block_on(async {
        for chunk in 0..RECORDS / 100 {
            let mut sends = Vec::new();
            for i in chunk * 100..(chunk + 1) * 100 {
                let value = format!("v-{i}");
                let record: FutureRecord<'_, (), String> = FutureRecord::to(topic).partition(0).payload(&value);
                sends.push(producer.send_result(record).expect("queue a send"));
            }
            for send in sends {
                send.await.expect("delivery").expect("acknowledged");
            }
        }
    });
}

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin client");
    let segment = SEGMENT_BYTES.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(NODES as i32)).set("segment.bytes", &segment);
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let results = runtime().block_on(admin.create_topics(&[new], &options)).expect("create_topics");
    assert!(results.iter().all(|r| r.is_ok()), "create {topic}: {results:?}");
}

fn partition_dir(cluster: &Cluster, id: u64, topic: &str) -> PathBuf {
    cluster.nodes()[id as usize - 1].data_dir().join("topics").join(topic).join("0")
}
