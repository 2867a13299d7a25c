//! Proves the cluster's membership changes keep data where Kafka says it is:
//! - a follower whose disk is replaced (killed, data dir emptied, restarted with the same id)
//!   becomes a full replica again: its own log (read through its admin API, not through a
//!   leader) holds every acknowledged record at its offset, and with one other node killed the
//!   topic still takes `acks=all` writes with the wiped node as one of the two live replicas;
//! - a node added with `--join` is listed in Metadata, gets replicas of a topic created after
//!   it joined, and holds them: produce and consume work, and its own log has its partitions.
//!
//! The history checker judges every read: nothing acknowledged lost, nothing misplaced, no
//! offset holding two values.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata, metadata_client, wait_fully_replicated, REQUEST_TIMEOUT,
};
use cluster_support::local;
use cluster_support::produce::{produce, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Recorder, Report, FINAL_READ};
use rdkafka::consumer::Consumer;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const NODES: usize = 3;
const REPLICATION: i32 = 3;
/// Two partitions on three nodes: one node leads none of them, the follower that is wiped.
const REPLACEMENT_PARTITIONS: i32 = 2;
/// More partitions than nodes after the join, so placement must use the new node.
const JOINED_PARTITIONS: i32 = 8;
const RECORDS_BEFORE: u64 = 2000;
const RECORDS_AFTER: u64 = 500;
/// Bound on a wiped or new node catching up (and on any partition electing a leader).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(40);
/// Bound on reading a partition back and on the new node being listed.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

fn spec(topic: &str, prefix: &str, count: u64, partitions: i32) -> ProduceSpec {
    ProduceSpec {
        topic: topic.into(),
        prefix: prefix.into(),
        count_max: count,
        idempotent: false,
        round_robin: Some(partitions),
        pace: None,
    }
}

/// Judges the sends of `sends` against the reads recorded in `reads` (its `FINAL_READ`s).
fn judge(sends: &Recorder, reads: &Recorder) -> Report {
    let mut ops = sends.ops();
    ops.extend(reads.ops());
    check(&ops, &CheckOptions::default())
}

fn assert_nothing_broken(what: &str, report: &Report) {
    eprintln!("cluster_membership: {what}: {report}");
    assert!(report.lost.is_empty(), "{what}: {}", report.details());
    assert!(report.misplaced.is_empty(), "{what}: {}", report.details());
    assert!(report.inconsistent.is_empty(), "{what}: {}", report.details());
    assert!(report.unexpected.is_empty(), "{what}: {}", report.details());
}

/// Waits until node `id`'s own log of each partition in `held` (those it replicates) reaches
/// the end the cluster's leaders report (their high watermarks).
fn wait_local_caught_up(cluster: &Cluster, id: u64, topic: &str, partitions: i32, held: &[i32]) -> Vec<i64> {
    let client = metadata_client(&cluster.bootstrap_servers());
    let mut marks = Vec::new();
    wait_until(PROGRESS_TIMEOUT, &format!("high watermarks of {topic}"), || {
        let found: Result<Vec<i64>, _> =
            (0..partitions).map(|p| client.fetch_watermarks(topic, p, REQUEST_TIMEOUT).map(|(_, high)| high)).collect();
        found.map(|f| marks = f).is_ok()
    });
    let http = cluster.http_addr(id);
    let mut local = Vec::new();
    wait_until(
        CATCH_UP_TIMEOUT,
        &format!("node {id}'s own log of {topic} partitions {held:?} to reach {marks:?}"),
        || {
            local = local::end_offsets(&http, topic).unwrap_or_default();
            local.len() == marks.len() && held.iter().all(|p| local[*p as usize] >= marks[*p as usize])
        },
    );
    eprintln!("cluster_membership: node {id} holds {topic} up to {local:?} (cluster high watermarks {marks:?})");
    local
}

#[test]
fn a_wiped_follower_becomes_a_full_replica_again() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-wiped");
    create_topic(&bootstrap, &topic, REPLACEMENT_PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, REPLACEMENT_PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let sends = Recorder::new();
    let before =
        produce(&bootstrap, &spec(&topic, "before", RECORDS_BEFORE, REPLACEMENT_PARTITIONS), &sends, &Stop::default());
    assert_eq!(before.sent, RECORDS_BEFORE);

    // The follower: a node leading no partition (two partitions, three nodes), per metadata now.
    let md = wait_fully_replicated(&client, &topic, REPLACEMENT_PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
    let leaders: BTreeSet<i32> = md.topic(&topic).expect("topic listed").partitions.iter().map(|p| p.leader).collect();
    let wiped = (1..=NODES as u64).find(|id| !leaders.contains(&(*id as i32))).expect("a node leading nothing");
    eprintln!("cluster_membership: leaders {leaders:?}; wiping node {wiped}");
    cluster.node(wiped).wipe_and_restart();
    wait_local_caught_up(&cluster, wiped, &topic, REPLACEMENT_PARTITIONS, &[0, 1]);
    // Checked first: a leader's Raft group that panicked on the wiped follower never fills
    // its ISR again, and the panic is the cause to report.
    cluster.assert_no_panics(&format!("node {wiped} back with an empty disk"));
    wait_fully_replicated(&client, &topic, REPLACEMENT_PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    // The wiped node's own log, read from it alone, is the read judged.
    let own = Recorder::new();
    let read = local::read_all(&cluster.http_addr(wiped), &topic, 0..REPLACEMENT_PARTITIONS, &own, FINAL_READ)
        .unwrap_or_else(|e| panic!("read node {wiped}'s own log: {e}"));
    let report = judge(&sends, &own);
    eprintln!("cluster_membership: node {wiped}'s own log holds {read} records after the wipe");
    assert_eq!(
        report.acknowledged,
        RECORDS_BEFORE as usize,
        "a healthy cluster acknowledges all: {}",
        report.details()
    );
    assert_nothing_broken("wiped node's own log after catching up", &report);

    // Kill another node: the wiped node is one of the two live replicas of every partition.
    let other = (1..=NODES as u64).find(|id| *id != wiped).unwrap_or_default();
    cluster.node(other).kill9();
    for p in 0..REPLACEMENT_PARTITIONS {
        wait_until(CATCH_UP_TIMEOUT, &format!("partition {p} led by a live node after killing node {other}"), || {
            leader_of(&client, &topic, p).is_some_and(|l| l != other as i32)
        });
    }
    let after =
        produce(&bootstrap, &spec(&topic, "after", RECORDS_AFTER, REPLACEMENT_PARTITIONS), &sends, &Stop::default());
    assert_eq!(after.sent, RECORDS_AFTER);

    let kafka_read = Recorder::new();
    let read = final_read(&bootstrap, &topic, REPLACEMENT_PARTITIONS, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_membership: Kafka read {read} records with node {other} dead");
    assert_eq!(
        report.acknowledged,
        (RECORDS_BEFORE + RECORDS_AFTER) as usize,
        "two live replicas of three acknowledge every acks=all send: {}",
        report.details()
    );
    assert_nothing_broken("Kafka read with the wiped node as one of two live replicas", &report);

    wait_local_caught_up(&cluster, wiped, &topic, REPLACEMENT_PARTITIONS, &[0, 1]);
    let own = Recorder::new();
    let read = local::read_all(&cluster.http_addr(wiped), &topic, 0..REPLACEMENT_PARTITIONS, &own, FINAL_READ)
        .unwrap_or_else(|e| panic!("read node {wiped}'s own log: {e}"));
    let report = judge(&sends, &own);
    eprintln!("cluster_membership: node {wiped}'s own log holds {read} records at the end");
    assert_nothing_broken("wiped node's own log at the end", &report);
    cluster.assert_no_panics("the end");
}

#[test]
fn a_joined_node_is_listed_and_holds_replicas_of_a_new_topic() {
    let mut cluster = Cluster::start(NODES);
    let joined = cluster.add_node();
    assert_eq!(joined, NODES as u64 + 1);
    let bootstrap = cluster.bootstrap_servers();
    let client = metadata_client(&bootstrap);
    let everyone: BTreeSet<i32> = (1..=joined as i32).collect();
    let mut listed = BTreeSet::new();
    wait_until(PROGRESS_TIMEOUT, &format!("Metadata listing brokers {everyone:?}"), || {
        listed = metadata(&client, None).map(|md| md.broker_ids()).unwrap_or_default();
        listed == everyone
    });
    eprintln!("cluster_membership: Metadata lists brokers {listed:?} after node {joined} joined");

    let topic = unique_topic("cluster-joined");
    create_topic(&bootstrap, &topic, JOINED_PARTITIONS, REPLICATION).expect("create topic after the join");
    let md = wait_fully_replicated(&client, &topic, JOINED_PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
    let partitions = &md.topic(&topic).expect("topic listed").partitions;
    let mut replicas_per_node: BTreeMap<i32, usize> = BTreeMap::new();
    for p in partitions {
        for r in &p.replicas {
            *replicas_per_node.entry(*r).or_default() += 1;
        }
    }
    eprintln!("cluster_membership: replicas per node {replicas_per_node:?}");
    assert_eq!(replicas_per_node.keys().copied().collect::<BTreeSet<_>>(), everyone, "every node holds replicas");
    let on_joined: Vec<i32> =
        partitions.iter().filter(|p| p.replicas.contains(&(joined as i32))).map(|p| p.id).collect();

    let sends = Recorder::new();
    let produced = produce(&bootstrap, &spec(&topic, "j", RECORDS_BEFORE, JOINED_PARTITIONS), &sends, &Stop::default());
    assert_eq!(produced.sent, RECORDS_BEFORE);
    let kafka_read = Recorder::new();
    let read = final_read(&bootstrap, &topic, JOINED_PARTITIONS, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_membership: Kafka read {read} records of a topic placed on the joined node");
    assert_eq!(
        report.acknowledged,
        RECORDS_BEFORE as usize,
        "a healthy cluster acknowledges all: {}",
        report.details()
    );
    assert_nothing_broken("Kafka read after the join", &report);

    // The joined node's own log holds every acknowledged record of its partitions.
    wait_local_caught_up(&cluster, joined, &topic, JOINED_PARTITIONS, &on_joined);
    let copy = local::copy_against_acknowledged(&cluster.http_addr(joined), &topic, &on_joined, &sends)
        .unwrap_or_else(|e| panic!("read node {joined}'s own log: {e}"));
    eprintln!(
        "cluster_membership: node {joined}'s own log of partitions {on_joined:?}: {} records, {} acknowledged there",
        copy.held, copy.acknowledged
    );
    assert!(copy.acknowledged > 0, "nothing acknowledged on node {joined}'s partitions {on_joined:?}");
    assert!(
        copy.missing.is_empty(),
        "node {joined}'s own log lacks acknowledged records (first ones): {:?}",
        copy.missing
    );
    cluster.assert_no_panics("the end");
}
