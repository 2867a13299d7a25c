//! Proves the ISR is Kafka's and the same on every node: 4 nodes, a topic replicated 3 times
//! (so one node hosts no replica), `--replica-lag-time-max-ms` lowered to 2 s. A killed
//! follower leaves the ISR named by the node without a replica (its raw Metadata answer), and
//! that node's `/api/cluster` lists the partition under-replicated and its `/metrics` counts
//! it; restarted, the follower catches up with the records written meanwhile and is back in
//! that node's ISR.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::{local, Cluster, ClusterOpts};
use common::{acks_all_producer, runtime, unique_topic, wait_until};
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};

const NODES: usize = 4;
const REPLICATION: i32 = 3;
const PARTITION: i32 = 0;
/// The lag window: short, so the test sees a follower leave quickly.
const LAG_TIME_MAX_MS: u64 = 2000;
/// Records written while the follower is down, so it has something to catch up on.
const RECORDS_WHILE_DOWN: usize = 50;
/// Bound on the topic's replicas forming, and on each ISR change being seen everywhere.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether node `http`'s `/api/cluster` lists the partition under-replicated, and its
/// `/metrics` count of under-replicated partitions.
fn under_replicated_on(http: &str, topic: &str) -> (bool, Option<u64>) {
    let (_, body) = local::get(http, "/api/cluster").unwrap_or_else(|e| panic!("{e}"));
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let listed = status["under_replicated"]
        .as_array()
        .is_some_and(|list| list.iter().any(|p| p["topic"] == topic && p["partition"] == PARTITION));
    let (_, metrics) = local::get(http, "/metrics").unwrap_or_else(|e| panic!("{e}"));
    let counted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_cluster_under_replicated_partitions "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64);
    (listed, counted)
}

#[test]
fn a_node_without_a_replica_sees_the_isr_shrink_and_grow_back() {
    let opts = ClusterOpts {
        args: vec!["--replica-lag-time-max-ms".into(), LAG_TIME_MAX_MS.to_string()],
        ..ClusterOpts::default()
    };
    let mut cluster = Cluster::start_with(NODES, opts);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-isr");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    let md = wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, SETTLE_TIMEOUT);
    let mut replicas = md.partition(&topic, PARTITION).expect("partition").replicas.clone();
    replicas.sort_unstable();
    let outsider = (1..=NODES as i32).find(|id| !replicas.contains(id)).expect("a node without a replica") as u64;
    let leader = wait_for_leader(&client, &topic, PARTITION, SETTLE_TIMEOUT, "a leader");
    let follower = *replicas.iter().find(|id| **id != leader).expect("a follower");
    let (outsider_kafka, outsider_http) = (cluster.kafka_addr(outsider), cluster.http_addr(outsider));
    eprintln!("cluster_isr: replicas {replicas:?}, leader {leader}, follower {follower}, outsider {outsider}");
    wait_until(SETTLE_TIMEOUT, "the outsider naming every replica in sync", || {
        local::isr_named_by(&outsider_kafka, &topic, PARTITION) == replicas
    });

    cluster.node(follower as u64).kill9();
    let killed = Instant::now();
    let shrunk: Vec<i32> = replicas.iter().copied().filter(|id| *id != follower).collect();
    wait_until(SETTLE_TIMEOUT, &format!("the outsider's ISR without node {follower}"), || {
        local::isr_named_by(&outsider_kafka, &topic, PARTITION) == shrunk
    });
    eprintln!(
        "cluster_isr: node {outsider} (no replica) names ISR {shrunk:?} {} ms after node {follower} was killed (window {LAG_TIME_MAX_MS} ms)",
        killed.elapsed().as_millis()
    );
    wait_until(SETTLE_TIMEOUT, "the outsider's status and metrics counting it under-replicated", || {
        under_replicated_on(&outsider_http, &topic) == (true, Some(1))
    });

    let rt = runtime();
    let producer = acks_all_producer(&bootstrap, &[]);
    for n in 0..RECORDS_WHILE_DOWN {
        let value = format!("while-down-{n}");
        let record = FutureRecord::<str, str>::to(&topic).partition(PARTITION).payload(&value);
        let delivery =
            rt.block_on(async { tokio::time::timeout(SETTLE_TIMEOUT, producer.send(record, Duration::ZERO)).await });
        assert!(matches!(delivery, Ok(Ok(_))), "{value}: {delivery:?}");
    }
    assert_eq!(local::isr_named_by(&outsider_kafka, &topic, PARTITION), shrunk, "the dead follower stays out");

    cluster.node(follower as u64).restart();
    let restarted = Instant::now();
    wait_until(SETTLE_TIMEOUT, &format!("the outsider's ISR with node {follower} again"), || {
        local::isr_named_by(&outsider_kafka, &topic, PARTITION) == replicas
    });
    eprintln!(
        "cluster_isr: node {outsider} names ISR {replicas:?} again {} ms after node {follower} restarted",
        restarted.elapsed().as_millis()
    );
    wait_until(SETTLE_TIMEOUT, "the outsider's status and metrics counting nothing under-replicated", || {
        under_replicated_on(&outsider_http, &topic) == (false, Some(0))
    });
    let leader_http = cluster.http_addr(leader as u64);
    wait_until(SETTLE_TIMEOUT, "the leader agreeing", || under_replicated_on(&leader_http, &topic) == (false, Some(0)));
    cluster.assert_no_panics("the end");
}
