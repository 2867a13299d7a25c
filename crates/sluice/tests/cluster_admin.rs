//! Proves Kafka's admin APIs act cluster-wide on a 3-node cluster, driven by librdkafka's
//! AdminClient, raw DescribeConfigs/Metadata per node and the `sluice topic` CLI: a config
//! change is seen by DescribeConfigs on every node; CreatePartitions 1 → 3 gives partitions
//! that take and serve records; refusals carry Kafka's codes (fewer partitions, unknown topic,
//! bad config); DeleteTopics removes the topic from every node's Metadata and disk; the
//! re-created topic starts empty at offset 0; a node stopped while the topic is deleted and
//! re-created comes back holding only the new topic's data; the CLI alters and deletes
//! through any node; and kafka-python's admin client creates, alters, grows and deletes.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_fully_replicated};
use cluster_support::local::{end_offsets, read_partition};
use cluster_support::Cluster;
use common::raw::Raw;
use common::{
    acks_all_producer, client_config, consume_exact, produce_one, run_bounded, run_ok, runtime, unique_topic,
    wait_until,
};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse, MetadataRequest,
    MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODES: u64 = 3;
const REPLICATION: i32 = 3;
/// Bound on partitions electing leaders and filling their ISR, and on every node applying a
/// metadata change (a debug build on a busy 2-core machine).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one admin request (answered once the asking node applied it).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on reading records back.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one CLI invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Kafka's resource type for a topic (DescribeConfigs, AlterConfigs).
const RESOURCE_TOPIC: i8 = 2;
/// Kafka's INVALID_CONFIG and INVALID_PARTITIONS error codes.
const INVALID_CONFIG: i16 = 40;
const INVALID_PARTITIONS: i16 = 37;
/// Debian's interpreter, the one python3-kafka (kafka-python) is installed for.
const PYTHON: &str = "/usr/bin/python3";
/// Bound on the kafka-python script (each of its waits is bounded by 30 s).
const PYTHON_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn topic_changes_reach_every_node() {
    let mut cluster = Cluster::start(NODES as usize);
    let bootstrap = cluster.bootstrap_servers();
    let rt = runtime();
    let admin: AdminClient<DefaultClientContext> = client_config(&bootstrap).create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT)).request_timeout(Some(ADMIN_TIMEOUT));
    let producer = acks_all_producer(&bootstrap, &[]);
    let topic = unique_topic("cluster-admin");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create a topic with replication factor 3");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, SETTLE_TIMEOUT);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"before").1, 0);
    let first_id = topic_id_named_by(&cluster, 1, &topic);
    for id in 2..=NODES {
        assert_eq!(topic_id_named_by(&cluster, id, &topic), first_id, "node {id} names the topic alike");
    }

    // A config change is applied on every node.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "3600000");
    let altered = rt.block_on(admin.alter_configs(&[alter], &options)).expect("alter_configs");
    assert!(altered.iter().all(Result::is_ok), "alter_configs: {altered:?}");
    for id in 1..=NODES {
        wait_until(SETTLE_TIMEOUT, &format!("node {id} describing retention.ms=3600000"), || {
            describe_config(&cluster, id, &topic, "retention.ms").as_deref() == Some("3600000")
        });
    }
    assert_eq!(alter_config_raw(&cluster, 2, &topic, "retention.ms", "soon"), INVALID_CONFIG, "a bad value");
    assert_eq!(describe_config(&cluster, 2, &topic, "retention.ms").as_deref(), Some("3600000"), "unchanged");

    // CreatePartitions 1 → 3: the new partitions get 3 replicas and take and serve records.
    let grown = rt.block_on(admin.create_partitions(&[NewPartitions::new(&topic, 3)], &options)).expect("grow");
    assert!(grown.iter().all(Result::is_ok), "create_partitions: {grown:?}");
    wait_fully_replicated(&client, &topic, 3, REPLICATION as usize, SETTLE_TIMEOUT);
    // A new producer: librdkafka learns of new partitions at its next metadata refresh.
    let producer = acks_all_producer(&bootstrap, &[]);
    for partition in 1..3 {
        let value = format!("new-partition-{partition}");
        assert_eq!(produce_one(&rt, &producer, &topic, partition, b"k", value.as_bytes()), (partition, 0));
        let read = consume_exact(&bootstrap, &topic, partition, Offset::Beginning, 1, READ_TIMEOUT);
        assert_eq!(read[0].value.as_deref(), Some(value.as_bytes()), "partition {partition}");
    }
    let shrink = rt.block_on(admin.create_partitions(&[NewPartitions::new(&topic, 2)], &options)).expect("shrink");
    assert!(matches!(shrink[0], Err((_, RDKafkaErrorCode::InvalidPartitions))), "fewer partitions: {shrink:?}");
    let unknown = rt.block_on(admin.delete_topics(&["no-such-topic"], &options)).expect("delete unknown");
    assert!(matches!(unknown[0], Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))), "unknown: {unknown:?}");

    // DeleteTopics: gone from every node's Metadata and disk; re-created, it starts empty.
    let deleted = rt.block_on(admin.delete_topics(&[&topic], &options)).expect("delete_topics");
    assert!(deleted.iter().all(Result::is_ok), "delete_topics: {deleted:?}");
    wait_gone_everywhere(&cluster, &topic, (1..=NODES).collect());
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("re-create the topic");
    wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, SETTLE_TIMEOUT);
    // A new producer: librdkafka 2.12 keeps a deleted topic's leader epochs across the new
    // topic id (its own FIXME) and skips the new topic's lower ones as stale.
    let producer = acks_all_producer(&bootstrap, &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"again").1, 0, "re-created topic starts at 0");
    let read = consume_exact(&bootstrap, &topic, 0, Offset::Beginning, 1, READ_TIMEOUT);
    assert_eq!(read[0].value.as_deref(), Some(&b"again"[..]));
    assert_ne!(topic_id_named_by(&cluster, 1, &topic), first_id, "the re-created topic has another id");

    // A node misses a delete and re-create: back, it drops the old data for the new topic's.
    // Not the controller, whose failover librdkafka's admin client would wait out.
    let controller = controller_named_by(&cluster, 1);
    let down = (1..=NODES).rev().find(|id| *id as i32 != controller).expect("a node that is not the controller");
    let up: Vec<u64> = (1..=NODES).filter(|id| *id != down).collect();
    let old_incarnation = incarnation(&cluster, down, &topic);
    assert!(old_incarnation.is_some(), "node {down} records the topic's incarnation");
    cluster.node(down).kill9();
    let deleted = rt.block_on(admin.delete_topics(&[&topic], &options)).expect("delete_topics");
    assert!(deleted.iter().all(Result::is_ok), "delete_topics with node {down} down: {deleted:?}");
    wait_gone_everywhere(&cluster, &topic, up);
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("re-create the topic with a node down");
    let producer = acks_all_producer(&bootstrap, &[]);
    let fresh = ["fresh-0", "fresh-1"];
    for (offset, value) in fresh.iter().enumerate() {
        assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", value.as_bytes()).1, offset as i64);
    }
    cluster.node(down).restart();
    let http = cluster.http_addr(down);
    wait_until(SETTLE_TIMEOUT, &format!("node {down} holding the re-created topic's 2 records"), || {
        end_offsets(&http, &topic).is_ok_and(|ends| ends == vec![fresh.len() as i64])
    });
    assert_ne!(incarnation(&cluster, down, &topic), old_incarnation, "node {down}'s copy is the new topic");
    let recorder = history::Recorder::new();
    read_partition(&http, &topic, 0, &recorder, "own-log").expect("read the node's own log");
    let values: Vec<String> = recorder
        .ops()
        .iter()
        .filter_map(|op| match op {
            history::Op::Poll { value, .. } => Some(value.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(values, fresh.map(String::from).to_vec(), "node {down} holds only the new topic's records");

    // The CLI alters and deletes through any node.
    let mut cli = Command::new(common::SLUICE_BIN);
    cli.args(["topic", "alter", &topic, "--config", "retention.ms=7200000", "--http", &cluster.http_addr(2)]);
    run_ok(&mut cli, CLI_TIMEOUT);
    for id in 1..=NODES {
        wait_until(SETTLE_TIMEOUT, &format!("node {id} describing retention.ms=7200000"), || {
            describe_config(&cluster, id, &topic, "retention.ms").as_deref() == Some("7200000")
        });
    }
    let mut cli = Command::new(common::SLUICE_BIN);
    cli.args(["topic", "delete", &topic, "--http", &cluster.http_addr(1)]);
    run_ok(&mut cli, CLI_TIMEOUT);
    wait_gone_everywhere(&cluster, &topic, (1..=NODES).collect());

    // kafka-python's admin client: create, alter and describe, grow (a shrink refused), delete.
    let py_topic = unique_topic("cluster-admin-py");
    let summary = kafka_python_admin(&bootstrap, &py_topic);
    assert_eq!(summary["create"], serde_json::json!([0]), "{summary}");
    assert_eq!(summary["alter"], serde_json::json!([0]), "{summary}");
    assert_eq!(summary["retention_ms"], "1234567", "{summary}");
    assert_eq!(summary["grow"], serde_json::json!([0]), "{summary}");
    assert_eq!(summary["partitions"], 2, "{summary}");
    assert_eq!(summary["shrink"], INVALID_PARTITIONS, "{summary}");
    assert_eq!(summary["delete"], serde_json::json!([0]), "{summary}");
    wait_gone_everywhere(&cluster, &py_topic, (1..=NODES).collect());
    cluster.assert_no_panics("after the admin changes");
}

/// Runs `tests/clients/python/cluster_admin.py` (kafka-python's KafkaAdminClient) on
/// `topic`; its JSON summary.
fn kafka_python_admin(bootstrap: &str, topic: &str) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/cluster_admin.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script).args(["--bootstrap", bootstrap, "--topic", topic, "--timeout", "30"]).stdin(Stdio::null());
    let out = run_bounded(&mut cmd, PYTHON_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = common::tail(&out.stderr, 6000);
    let line = stdout.lines().last().unwrap_or_default();
    assert!(out.status.success(), "kafka-python admin failed ({}): {stdout}\nstderr: {stderr}", out.status);
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON summary ({e}): {stdout}\nstderr: {stderr}"))
}

/// Waits until `topic` is in none of `nodes`' own Metadata answers and data directories.
fn wait_gone_everywhere(cluster: &Cluster, topic: &str, nodes: Vec<u64>) {
    for id in nodes {
        wait_until(SETTLE_TIMEOUT, &format!("{topic} gone from node {id}"), || {
            !listed_by(cluster, id, topic) && !topic_dir(cluster, id, topic).exists()
        });
    }
}

/// Whether node `id`'s own Metadata answer lists `topic`.
fn listed_by(cluster: &Cluster, id: u64, topic: &str) -> bool {
    let addr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = Raw::connect_addr(addr).request(4, &request);
    response.topics.iter().any(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
}

/// The Kafka topic id of `topic` in node `id`'s own Metadata answer (v10).
fn topic_id_named_by(cluster: &Cluster, id: u64, topic: &str) -> String {
    let addr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = Raw::connect_addr(addr).request(10, &request);
    let found = response.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic));
    found.unwrap_or_else(|| panic!("node {id} does not list {topic}")).topic_id.to_string()
}

/// The controller node `id`'s own Metadata answer names.
fn controller_named_by(cluster: &Cluster, id: u64) -> i32 {
    let addr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let response: MetadataResponse = Raw::connect_addr(addr).request(4, &MetadataRequest::default());
    response.controller_id.0
}

/// The value of config `key` of `topic` as node `id`'s own DescribeConfigs answers it.
fn describe_config(cluster: &Cluster, id: u64, topic: &str, key: &str) -> Option<String> {
    let addr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let resource = DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response: DescribeConfigsResponse = Raw::connect_addr(addr).request(1, &request);
    let result = response.results.first().filter(|r| r.error_code == 0)?;
    let config = result.configs.iter().find(|c| c.name.as_str() == key)?;
    config.value.as_ref().map(|v| v.to_string())
}

/// The error code of node `id`'s AlterConfigs answer setting `key=value` on `topic`.
fn alter_config_raw(cluster: &Cluster, id: u64, topic: &str, key: &str, value: &str) -> i16 {
    let addr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let config = AlterableConfig::default()
        .with_name(StrBytes::from_string(key.to_string()))
        .with_value(Some(StrBytes::from_string(value.to_string())));
    let resource = AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configs(vec![config]);
    let request = AlterConfigsRequest::default().with_resources(vec![resource]);
    let response: AlterConfigsResponse = Raw::connect_addr(addr).request(1, &request);
    response.responses.first().map_or(-1, |r| r.error_code)
}

/// The topic's directory in node `id`'s data directory.
fn topic_dir(cluster: &Cluster, id: u64, topic: &str) -> PathBuf {
    cluster.nodes()[(id - 1) as usize].data_dir().join("topics").join(topic)
}

/// The cluster incarnation recorded in node `id`'s `topic.json` of `topic`.
fn incarnation(cluster: &Cluster, id: u64, topic: &str) -> Option<u64> {
    let text = std::fs::read_to_string(topic_dir(cluster, id, topic).join("topic.json")).ok()?;
    let meta: serde_json::Value = serde_json::from_str(&text).ok()?;
    meta["incarnation"].as_u64()
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}
