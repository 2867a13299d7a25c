//! Proves a 3-node cluster is one Kafka cluster to a real client (librdkafka): a topic created
//! with replication factor 3 has a leader, 3 replicas and a full ISR per partition in metadata
//! listing 3 brokers; 3000 keyed `acks=all` records all come back from a read of every
//! partition at the offsets they were acknowledged at (history checker: nothing lost, no
//! offset holding two values); and a replication factor above the node count is refused.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, final_read, metadata_client, wait_fully_replicated};
use cluster_support::produce::{produce, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::unique_topic;
use history::{check, CheckOptions, Recorder};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 3;
const REPLICATION: i32 = 3;
const RECORDS: u64 = 3000;
/// Bound on the topic's partitions electing leaders and filling their ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on reading one partition back.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_replicated_topic_keeps_every_acknowledged_record_at_its_offset() {
    let cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-basic");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create a topic with replication factor 3");

    let client = metadata_client(&bootstrap);
    let md = wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, REPLICATED_TIMEOUT);
    assert_eq!(md.broker_ids(), (1..=NODES as i32).collect(), "brokers listed: {:?}", md.brokers);
    for p in &md.topic(&topic).expect("topic in metadata").partitions {
        assert_eq!(p.error, None, "partition {}: {p:?}", p.id);
        assert!(md.broker_ids().contains(&p.leader), "partition {} led by an unknown broker: {p:?}", p.id);
        let replicas: std::collections::BTreeSet<i32> = p.replicas.iter().copied().collect();
        assert_eq!(replicas, md.broker_ids(), "replication factor 3 on 3 nodes puts a replica on each: {p:?}");
    }

    let recorder = Recorder::new();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "v".into(),
        count_max: RECORDS,
        idempotent: false,
        round_robin: None,
        pace: None,
    };
    let produced = produce(&bootstrap, &spec, &recorder, &Stop::default());
    assert_eq!(produced.sent, RECORDS);
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, READ_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_basic: {report}");
    assert_eq!(
        report.acknowledged,
        RECORDS as usize,
        "every send acknowledged on a healthy cluster: {}",
        report.details()
    );
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(report.non_monotonic.is_empty(), "{}", report.details());
    assert!(read >= RECORDS as usize, "final read {read} of {RECORDS}");
    // The keyed records spread over every partition (the partitioner hashes the keys).
    let used: std::collections::BTreeSet<i32> = recorder
        .ops()
        .iter()
        .filter_map(|op| match op {
            history::Op::SendOk { partition, .. } => Some(*partition),
            _ => None,
        })
        .collect();
    assert_eq!(used, (0..PARTITIONS).collect(), "partitions that got records");
    for node in cluster.nodes() {
        assert!(node.ping(), "node {} stopped answering", node.id);
    }
}

#[test]
fn a_replication_factor_above_the_node_count_is_refused() {
    let cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-rf4");
    let refused = create_topic(&bootstrap, &topic, 1, NODES as i32 + 1);
    assert_eq!(refused, Err(RDKafkaErrorCode::InvalidReplicationFactor));
    // Nothing half-made: the refused topic is not listed.
    let md = cluster_support::kafka::metadata(&metadata_client(&bootstrap), None).expect("metadata");
    assert!(md.topic(&topic).is_none(), "refused topic listed: {:?}", md.topic(&topic));
}

// Every node answers DescribeCluster and Metadata alike: 3 brokers, one controller, and the
// one cluster id the metadata group agreed (Kafka's tools compare it across brokers). A node
// applies the metadata a moment after the leader, so agreement is awaited (bounded).
#[test]
fn every_node_names_the_same_brokers_controller_and_cluster_id() {
    let cluster = Cluster::start(NODES);
    let mut answers = Vec::new();
    common::wait_until(REPLICATED_TIMEOUT, "every node naming the same cluster id and controller", || {
        answers = (1..=NODES as u64).map(|id| describe(&cluster, id)).collect();
        answers.windows(2).all(|w| (&w[0].0, w[0].1, w[0].2) == (&w[1].0, w[1].1, w[1].2))
    });
    for (id, (cluster_id, controller, metadata_controller, brokers, metadata_id)) in answers.iter().enumerate() {
        let node = id + 1;
        assert_eq!(brokers, &(1..=NODES as i32).collect::<Vec<_>>(), "node {node} lists {brokers:?}");
        assert!((1..=NODES as i32).contains(controller), "node {node}: controller {controller}");
        assert_eq!(metadata_controller, controller, "node {node}: Metadata and DescribeCluster controllers");
        assert_eq!(metadata_id.as_deref(), Some(cluster_id.as_str()), "node {node}: Metadata and DescribeCluster ids");
    }
}

/// DescribeCluster and Metadata from one node: (cluster id, controller, Metadata's controller,
/// sorted broker ids, Metadata's cluster id).
fn describe(cluster: &Cluster, id: u64) -> (String, i32, i32, Vec<i32>, Option<String>) {
    use kafka_protocol::messages::{DescribeClusterRequest, MetadataRequest};
    let addr: std::net::SocketAddr = cluster.kafka_addr(id).parse().expect("a Kafka address");
    let mut raw = common::raw::Raw::connect_addr(addr);
    let described = raw.request(0, &DescribeClusterRequest::default());
    assert_eq!(described.error_code, 0, "node {id}: {described:?}");
    let mut brokers: Vec<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    brokers.sort_unstable();
    let metadata = raw.request(9, &MetadataRequest::default());
    let metadata_id = metadata.cluster_id.as_ref().map(|s| s.to_string());
    (described.cluster_id.to_string(), described.controller_id.0, metadata.controller_id.0, brokers, metadata_id)
}
