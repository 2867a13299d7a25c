//! Proves a whole cluster killed at once (`kill -9` of every node, as a power loss of the
//! processes) comes back with everything acknowledged under `acks=all`: the three nodes
//! restart from their data directories, elect leaders again (a restarted replica holds its
//! elections until it caught up or heard from no leader for a while), and a full read finds
//! every acknowledged record at its offset, with no duplicate from the idempotent producer.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, final_read, metadata_client, wait_fully_replicated};
use cluster_support::produce::{produce, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::unique_topic;
use history::{check, CheckOptions, Recorder};
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
const RECORDS: u64 = 2000;
/// Bound on the restarted cluster electing leaders and filling every ISR.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_cluster_killed_as_a_whole_keeps_every_acknowledged_record() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-restart");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create a topic with replication factor 3");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, RECOVERY_TIMEOUT);
    let recorder = Recorder::new();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "r".into(),
        count_max: RECORDS,
        idempotent: true,
        round_robin: None,
        pace: None,
    };
    let produced = produce(&bootstrap, &spec, &recorder, &Stop::default());
    assert_eq!(produced.sent, RECORDS);

    for id in 1..=NODES as u64 {
        cluster.node(id).kill9();
    }
    for id in 1..=NODES as u64 {
        cluster.node(id).restart();
    }
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, RECOVERY_TIMEOUT);
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, READ_TIMEOUT);
    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_restart: {report}; final read {read}");
    assert_eq!(report.acknowledged, RECORDS as usize, "every send acknowledged before the kill: {}", report.details());
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    cluster.assert_no_panics("after the whole-cluster restart");
}
