//! Proves partitions move between nodes under load and a node can be taken out:
//! - while an idempotent `acks=all` producer (librdkafka) writes to both partitions of an RF 3
//!   topic, a 4th node joins and partition 0 moves from {1,2,3} to {2,3,4} through
//!   AlterPartitionReassignments (raw Kafka frames: no client in the test images sends it);
//!   ListPartitionReassignments lists the move while it is under way (when a poll sees it)
//!   and nothing after; every node's Metadata names the new replicas; node 4's own log holds
//!   every acknowledged record of the partition and node 1 dropped its copy;
//! - the APIs answer Kafka's errors: unknown topic, a duplicated replica
//!   (INVALID_REPLICA_ASSIGNMENT), a cancel with no move (NO_REASSIGNMENT_IN_PROGRESS), and
//!   `sluice topic reassign` says the same through the admin API;
//! - ElectLeaders (preferred) makes the moved partition's first replica its leader, then
//!   answers ELECTION_NOT_NEEDED;
//! - node 1 dies holding a replica of partition 1; `sluice cluster remove-node 1` moves that
//!   replica to node 4 and removes node 1: Metadata lists brokers {2,3,4}, no partition names
//!   node 1, and the cluster still takes and serves writes;
//! - `sluice cluster add-node 4` gives a node that joined after a topic was created its share
//!   of that topic's replicas (each node then holds 4 or 5 of 18), with the records intact.
//!
//! The history checker judges the Kafka read: nothing acknowledged lost or misplaced, no offset
//! holding two values, no duplicate from the idempotent producer.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, final_read, metadata_client, wait_fully_replicated};
use cluster_support::local;
use cluster_support::produce::{produce, produce_in_background, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::raw::Raw;
use common::{run_bounded, run_ok, unique_topic, wait_until};
use history::{check, CheckOptions, Op, Recorder, Report};
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_response::OngoingTopicReassignment;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
const MOVED: i32 = 0;
/// Acknowledgements before the move starts and after it ended, so both sides of it are in
/// the history.
const ACKS_PER_PHASE: usize = 300;
/// The producer's bound (it is stopped long before, once the phases are done).
const SENDS_MAX: u64 = 1_000_000;
/// Keeps the run's history a size the final read handles quickly.
const PACE: (u64, Duration) = (50, Duration::from_millis(20));
/// Records written after node 1 is gone.
const RECORDS_AFTER_REMOVAL: u64 = 200;
/// Bound on the move (a learner copying the log, two membership changes) and on any election.
const MOVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the producer's acknowledgements of one phase, and on reads.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// The CLI's bound (remove-node waits up to 25 s for moves).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Serialises the tests: each runs a 4-node cluster, three at once on a 2-core machine time
/// out creating a topic.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
const ELECTION_NOT_NEEDED: i16 = 84;

fn raw(kafka_addr: &str) -> Raw {
    let addr: SocketAddr = kafka_addr.parse().unwrap_or_else(|e| panic!("{kafka_addr}: {e}"));
    Raw::connect_addr(addr)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// AlterPartitionReassignments v0 of one partition; its partition error code.
fn alter(kafka_addr: &str, topic: &str, partition: i32, replicas: Option<Vec<i32>>) -> i16 {
    let request = AlterPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        ReassignableTopic::default().with_name(name(topic)).with_partitions(vec![ReassignablePartition::default()
            .with_partition_index(partition)
            .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))]),
    ]);
    let response: AlterPartitionReassignmentsResponse = raw(kafka_addr).request(0, &request);
    assert_eq!(response.error_code, NONE, "top-level error: {:?}", response.error_message);
    let code = response.responses.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
    code.unwrap_or_else(|| panic!("no partition in the answer: {response:?}"))
}

/// ElectLeaders v2 (preferred) of one partition; its partition error code.
fn elect(kafka_addr: &str, topic: &str, partition: i32) -> i16 {
    let request =
        ElectLeadersRequest::default().with_election_type(0).with_timeout_ms(30_000).with_topic_partitions(Some(vec![
            TopicPartitions::default().with_topic(name(topic)).with_partitions(vec![partition]),
        ]));
    let response: ElectLeadersResponse = raw(kafka_addr).request(2, &request);
    assert_eq!(response.error_code, NONE, "top-level error: {response:?}");
    let code = response.replica_election_results.first().and_then(|t| t.partition_result.first());
    code.map(|p| p.error_code).unwrap_or_else(|| panic!("no partition in the answer: {response:?}"))
}

/// The leader of `topic`/`partition` named by the node's own Metadata answer (-1: none).
fn leader_named_by(kafka_addr: &str, topic: &str, partition: i32) -> i32 {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    let response: MetadataResponse = raw(kafka_addr).request(4, &request);
    let found = response.topics.iter().flat_map(|t| t.partitions.iter()).find(|p| p.partition_index == partition);
    found.map_or(-1, |p| p.leader_id.0)
}

/// ListPartitionReassignments v0 of every partition.
fn list(kafka_addr: &str) -> Vec<OngoingTopicReassignment> {
    let response = raw(kafka_addr).request(0, &ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000));
    assert_eq!(response.error_code, NONE, "{:?}", response.error_message);
    response.topics
}

/// The replicas of `topic`/`partition` named by the node's own Metadata answer.
fn replicas_named_by(kafka_addr: &str, topic: &str, partition: i32) -> BTreeSet<i32> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    let response: MetadataResponse = raw(kafka_addr).request(4, &request);
    let found = response.topics.iter().flat_map(|t| t.partitions.iter()).find(|p| p.partition_index == partition);
    found.map(|p| p.replica_nodes.iter().map(|b| b.0).collect()).unwrap_or_default()
}

fn brokers_named_by(kafka_addr: &str) -> BTreeSet<i32> {
    let response: MetadataResponse = raw(kafka_addr).request(4, &MetadataRequest::default().with_topics(Some(vec![])));
    response.brokers.iter().map(|b| b.node_id.0).collect()
}

/// Waits until node 1's Metadata lists the joined node (its registration applied), as
/// `cluster_membership` does before creating a topic: a CreateTopics racing the join
/// sometimes timed out in this file's runs.
fn wait_listed(cluster: &Cluster, joined: u64) {
    let via = cluster.kafka_addr(1);
    wait_until(PROGRESS_TIMEOUT, &format!("Metadata listing node {joined}"), || {
        brokers_named_by(&via).contains(&(joined as i32))
    });
}

fn wait_for_acks(sends: &Recorder, more: usize, phase: &str) {
    let target = sends.acknowledged() + more;
    wait_until(PROGRESS_TIMEOUT, &format!("{more} more acknowledgements {phase}"), || sends.acknowledged() >= target);
}

fn judge(sends: &Recorder, reads: &Recorder) -> Report {
    let mut ops = sends.ops();
    ops.extend(reads.ops());
    check(&ops, &CheckOptions::default())
}

fn assert_nothing_broken(what: &str, report: &Report) {
    eprintln!("cluster_reassign: {what}: {report}");
    assert!(report.lost.is_empty(), "{what}: {}", report.details());
    assert!(report.misplaced.is_empty(), "{what}: {}", report.details());
    assert!(report.inconsistent.is_empty(), "{what}: {}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{what}: {}", report.details());
    assert!(report.unexpected.is_empty(), "{what}: {}", report.details());
}

fn sluice(args: &[&str]) -> String {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_sluice")).args(args), CLI_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a CLI command that must fail; its stderr.
fn sluice_fails(args: &[&str]) -> String {
    let out = run_bounded(Command::new(env!("CARGO_BIN_EXE_sluice")).args(args), CLI_TIMEOUT);
    assert!(!out.status.success(), "sluice {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_partition_moves_to_a_new_node_under_load_and_a_node_is_removed() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-reassign");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, MOVE_TIMEOUT);

    let sends = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "r".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &sends, &stop);
    wait_for_acks(&sends, ACKS_PER_PHASE, "before the join");

    let joined = cluster.add_node();
    let via = cluster.kafka_addr(2);
    wait_until(PROGRESS_TIMEOUT, "Metadata listing node 4", || brokers_named_by(&via).contains(&(joined as i32)));

    // Kafka's errors first: none of these records anything.
    assert_eq!(alter(&via, "no-such-topic", 0, Some(vec![2, 3, 4])), UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(alter(&via, &topic, MOVED, Some(vec![2, 2, 4])), INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(alter(&via, &topic, MOVED, Some(vec![2, 3, 9])), INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(alter(&via, &topic, 1, None), NO_REASSIGNMENT_IN_PROGRESS);

    // The CLI says why it refuses, through the admin API.
    let http = cluster.http_addr(3);
    let refused =
        sluice_fails(&["topic", "reassign", &topic, "--partition", "0", "--replicas", "2,2,4", "--http", &http]);
    assert!(refused.contains("twice"), "{refused}");
    let refused = sluice_fails(&["topic", "reassign", &topic, "--partition", "1", "--cancel", "--http", &http]);
    assert!(refused.contains("no reassignment in progress"), "{refused}");

    let target: BTreeSet<i32> = [2, 3, joined as i32].into();
    assert_eq!(alter(&via, &topic, MOVED, Some(target.iter().copied().collect())), NONE);
    let mut seen_in_flight = false;
    wait_until(
        MOVE_TIMEOUT,
        &format!("{topic}-{MOVED} on {target:?} in every node's Metadata, no move listed"),
        || {
            let listed = list(&via);
            seen_in_flight |= listed.iter().any(|t| t.name.0.as_str() == topic);
            listed.is_empty()
                && (2..=joined).all(|id| replicas_named_by(&cluster.kafka_addr(id), &topic, MOVED) == target)
        },
    );
    eprintln!("cluster_reassign: the move was listed while under way: {seen_in_flight}");
    wait_for_acks(&sends, ACKS_PER_PHASE, "after the move");
    stop.set();
    let produced = producer.join().expect("producer thread");
    assert!(produced.fatal_errors.is_empty(), "idempotent producer fatal errors: {:?}", produced.fatal_errors);

    let kafka_read = Recorder::new();
    let read = final_read(&bootstrap, &topic, PARTITIONS, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_reassign: Kafka read {read} records after the move");
    assert!(report.acknowledged >= 2 * ACKS_PER_PHASE, "{}", report.details());
    assert_nothing_broken("Kafka read after the move", &report);

    // Node 4's own log of the moved partition holds every acknowledged record there.
    let marks = client.fetch_watermarks(&topic, MOVED, Duration::from_secs(10)).expect("watermarks");
    wait_until(PROGRESS_TIMEOUT, &format!("node {joined}'s own log of {topic}-{MOVED} to reach {}", marks.1), || {
        local::end_offsets(&cluster.http_addr(joined), &topic)
            .is_ok_and(|ends| ends.get(MOVED as usize).is_some_and(|end| *end >= marks.1))
    });
    let copy = local::copy_against_acknowledged(&cluster.http_addr(joined), &topic, &[MOVED], &sends)
        .unwrap_or_else(|e| panic!("read node {joined}'s own log: {e}"));
    eprintln!(
        "cluster_reassign: node {joined}'s own log holds {} records of {}, {} acknowledged",
        copy.held, MOVED, copy.acknowledged
    );
    assert!(
        copy.missing.is_empty(),
        "node {joined}'s own log lacks acknowledged records (first ones): {:?}",
        copy.missing
    );
    let node1_ends = local::end_offsets(&cluster.http_addr(1), &topic).unwrap_or_default();
    assert_eq!(node1_ends.get(MOVED as usize), Some(&0), "node 1 dropped its copy of {topic}-{MOVED}");

    // The preferred replica (the first of the target, node 2) is made leader on request.
    let before = leader_named_by(&via, &topic, MOVED);
    let code = elect(&via, &topic, MOVED);
    eprintln!("cluster_reassign: ElectLeaders with node {before} leading answered {code}");
    assert!([NONE, ELECTION_NOT_NEEDED].contains(&code), "ElectLeaders answered {code}");
    wait_until(PROGRESS_TIMEOUT, "node 2 leading the moved partition in every node's Metadata", || {
        (2..=joined).all(|id| leader_named_by(&cluster.kafka_addr(id), &topic, MOVED) == 2)
    });
    assert_eq!(elect(&via, &topic, MOVED), ELECTION_NOT_NEEDED);
    let listed = sluice(&["cluster", "reassignments", "--http", &cluster.http_addr(3)]);
    assert!(listed.contains("no partition moves under way"), "{listed}");

    // Node 1 dies (a lost disk) while it still holds partition 1: removing it moves that
    // replica to node 4 (the two live replicas carry the move), then takes it out.
    cluster.node(1).kill9();
    let said = sluice(&["cluster", "remove-node", "1", "--http", &cluster.http_addr(2)]);
    eprintln!("cluster_reassign: remove-node said: {}", said.trim());
    let everyone_else: BTreeSet<i32> = (2..=joined as i32).collect();
    for id in 2..=joined {
        let addr = cluster.kafka_addr(id);
        wait_until(PROGRESS_TIMEOUT, &format!("node {id}'s Metadata without node 1"), || {
            brokers_named_by(&addr) == everyone_else
                && (0..PARTITIONS).all(|p| !replicas_named_by(&addr, &topic, p).contains(&1))
        });
    }
    let remaining = (2..=joined).map(|id| cluster.kafka_addr(id)).collect::<Vec<_>>().join(",");
    let after = ProduceSpec {
        topic: topic.clone(),
        prefix: "after".into(),
        count_max: RECORDS_AFTER_REMOVAL,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: None,
    };
    produce(&remaining, &after, &sends, &Stop::default());
    let kafka_read = Recorder::new();
    let read = final_read(&remaining, &topic, PARTITIONS, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_reassign: Kafka read {read} records after node 1 was removed");
    assert_nothing_broken("Kafka read after the removal", &report);
    let after_acks =
        sends.ops().iter().filter(|op| matches!(op, Op::SendOk { value, .. } if value.starts_with("after-"))).count();
    assert_eq!(after_acks, RECORDS_AFTER_REMOVAL as usize, "every write after the removal acknowledged");
    cluster.assert_no_panics("the end");
}

/// Proves a move survives its driver's death: the partition's leader, itself moved off, is
/// `kill -9`ed as soon as the move is recorded; the next leader finishes it. Restarted, the
/// old leader drops its stale copy, and every acknowledged record is still read.
#[test]
fn a_move_whose_leader_dies_is_finished_by_the_next_leader() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(NODES);
    let joined = cluster.add_node();
    wait_listed(&cluster, joined);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-reassign-kill");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    let md = wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, MOVE_TIMEOUT);
    let part = md.partition(&topic, MOVED).expect("partition listed").clone();
    let sends = Recorder::new();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "k".into(),
        count_max: ACKS_PER_PHASE as u64,
        idempotent: true,
        round_robin: Some(1),
        pace: None,
    };
    produce(&bootstrap, &spec, &sends, &Stop::default());

    // The leader is replaced by node 4: it drives its own removal, and dies doing so.
    let leader = part.leader;
    let target: Vec<i32> = part.replicas.iter().map(|r| if *r == leader { joined as i32 } else { *r }).collect();
    let survivor = (1..=joined).find(|id| *id as i32 != leader).unwrap_or(joined);
    assert_eq!(alter(&cluster.kafka_addr(survivor), &topic, MOVED, Some(target.clone())), NONE);
    cluster.node(leader as u64).kill9();
    let in_flight = !list(&cluster.kafka_addr(survivor)).is_empty();
    eprintln!("cluster_reassign: node {leader} killed with the move still listed: {in_flight}");
    let wanted: BTreeSet<i32> = target.iter().copied().collect();
    let live: Vec<u64> = (1..=joined).filter(|id| *id as i32 != leader).collect();
    wait_until(MOVE_TIMEOUT, &format!("{topic}-{MOVED} on {wanted:?} with node {leader} dead, no move listed"), || {
        list(&cluster.kafka_addr(survivor)).is_empty()
            && live.iter().all(|id| replicas_named_by(&cluster.kafka_addr(*id), &topic, MOVED) == wanted)
    });

    cluster.node(leader as u64).restart();
    let http = cluster.http_addr(leader as u64);
    wait_until(PROGRESS_TIMEOUT, &format!("node {leader} dropping its stale copy"), || {
        local::end_offsets(&http, &topic).is_ok_and(|ends| ends.first() == Some(&0))
    });
    let kafka_read = Recorder::new();
    let read = final_read(&bootstrap, &topic, 1, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_reassign: node {leader} (leader, moved off) killed mid-move; Kafka read {read} records");
    assert_eq!(report.acknowledged, ACKS_PER_PHASE, "{}", report.details());
    assert_nothing_broken("Kafka read after the leader died mid-move", &report);
    cluster.assert_no_panics("the end");
}

/// The learners of `topic`/`partition`'s group as its leader (among `nodes`) reports them in
/// `/api/cluster`; None when no node reports leading it.
fn learners_on_leader(cluster: &Cluster, nodes: &[u64], topic: &str, partition: i32) -> Option<BTreeSet<i64>> {
    nodes.iter().find_map(|id| {
        let status = local::get_json(&cluster.http_addr(*id), "/api/cluster").ok()?;
        let entry = status["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["topic"] == topic && p["partition"] == partition && p["role"] == "leader")?;
        Some(entry["learners"].as_array()?.iter().filter_map(|l| l.as_i64()).collect())
    })
}

/// Proves a move to a node that is down never completes (a replica is made a voter only once
/// caught up, as Kafka waits for the ISR) and a cancel takes it back: the learner is removed,
/// the replicas are the original ones, and the partition still takes `acks=all` writes.
#[test]
fn a_move_to_a_dead_node_waits_and_a_cancel_takes_it_back() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(NODES);
    let joined = cluster.add_node();
    wait_listed(&cluster, joined);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-reassign-cancel");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    let md = wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, MOVE_TIMEOUT);
    let part = md.partition(&topic, MOVED).expect("partition listed").clone();
    let original: BTreeSet<i32> = part.replicas.iter().copied().collect();
    cluster.node(joined).kill9();

    let replaced = *part.replicas.iter().find(|r| **r != part.leader).expect("a follower");
    let target: Vec<i32> = part.replicas.iter().map(|r| if *r == replaced { joined as i32 } else { *r }).collect();
    let via = cluster.kafka_addr(part.leader as u64);
    assert_eq!(alter(&via, &topic, MOVED, Some(target)), NONE);
    let live: Vec<u64> = (1..=NODES as u64).collect();
    wait_until(MOVE_TIMEOUT, &format!("node {joined} (down) a learner of {topic}-{MOVED}"), || {
        learners_on_leader(&cluster, &live, &topic, MOVED).is_some_and(|l| l.contains(&(joined as i64)))
    });
    assert!(!list(&via).is_empty(), "the move to a dead node is still under way");
    assert_eq!(alter(&via, &topic, MOVED, None), NONE, "cancel");
    wait_until(MOVE_TIMEOUT, &format!("{topic}-{MOVED} back on {original:?}, no learner, no move"), || {
        list(&via).is_empty()
            && learners_on_leader(&cluster, &live, &topic, MOVED).is_some_and(|l| l.is_empty())
            && live.iter().all(|id| replicas_named_by(&cluster.kafka_addr(*id), &topic, MOVED) == original)
    });
    assert_eq!(alter(&via, &topic, MOVED, None), NO_REASSIGNMENT_IN_PROGRESS);

    let remaining = live.iter().map(|id| cluster.kafka_addr(*id)).collect::<Vec<_>>().join(",");
    let sends = Recorder::new();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "c".into(),
        count_max: RECORDS_AFTER_REMOVAL,
        idempotent: true,
        round_robin: Some(1),
        pace: None,
    };
    produce(&remaining, &spec, &sends, &Stop::default());
    let kafka_read = Recorder::new();
    let read = final_read(&remaining, &topic, 1, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_reassign: after the cancelled move to a dead node, Kafka read {read} records");
    assert_eq!(report.acknowledged, RECORDS_AFTER_REMOVAL as usize, "{}", report.details());
    assert_nothing_broken("Kafka read after the cancel", &report);
    cluster.assert_no_panics("the end");
}

/// Proves `sluice cluster add-node` gives a joined node its share: 6 RF 3 partitions placed
/// on nodes 1–3 (6 replicas each), node 4 joins and holds none; the command moves 4 replicas
/// onto it (18 / 4), every node's Metadata then names 4 or 5 replicas per node, a second run
/// moves nothing, an unknown node is refused, and every acknowledged record is read back.
#[test]
fn add_node_moves_a_share_of_the_replicas_onto_a_joined_node() {
    const SPREAD: i32 = 6;
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-add-node");
    create_topic(&bootstrap, &topic, SPREAD, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, SPREAD, REPLICATION as usize, MOVE_TIMEOUT);
    let sends = Recorder::new();
    let spec = |prefix: &str| ProduceSpec {
        topic: topic.clone(),
        prefix: prefix.into(),
        count_max: ACKS_PER_PHASE as u64,
        idempotent: true,
        round_robin: Some(SPREAD),
        pace: None,
    };
    produce(&bootstrap, &spec("before"), &sends, &Stop::default());

    let joined = cluster.add_node();
    wait_listed(&cluster, joined);
    let http = cluster.http_addr(2);
    let refused = sluice_fails(&["cluster", "add-node", "9", "--http", &http]);
    assert!(refused.contains("not registered"), "{refused}");
    let said = sluice(&["cluster", "add-node", &joined.to_string(), "--http", &http]);
    eprintln!("cluster_reassign: add-node said: {}", said.trim());
    assert!(said.contains("4 partition replicas moved"), "{said}");

    let mut per_node = BTreeMap::new();
    for id in 1..=joined {
        let addr = cluster.kafka_addr(id);
        wait_until(MOVE_TIMEOUT, &format!("node {id}'s Metadata with node {joined} holding 4 replicas"), || {
            per_node = replicas_per_node(&addr, &topic, SPREAD);
            list(&addr).is_empty() && per_node.get(&(joined as i32)) == Some(&4)
        });
    }
    eprintln!("cluster_reassign: replicas per node after add-node: {per_node:?}");
    assert!(per_node.values().all(|count| (4..=5).contains(count)), "{per_node:?}");
    let again = sluice(&["cluster", "add-node", &joined.to_string(), "--http", &http]);
    assert!(again.contains(" 0 partition replicas moved"), "{again}");

    produce(&bootstrap, &spec("after"), &sends, &Stop::default());
    let kafka_read = Recorder::new();
    let read = final_read(&bootstrap, &topic, SPREAD, &kafka_read, PROGRESS_TIMEOUT);
    let report = judge(&sends, &kafka_read);
    eprintln!("cluster_reassign: Kafka read {read} records after add-node");
    assert_eq!(report.acknowledged, 2 * ACKS_PER_PHASE, "{}", report.details());
    assert_nothing_broken("Kafka read after add-node", &report);
    cluster.assert_no_panics("the end");
}

/// How many of `topic`'s replicas each node holds, as the node at `kafka_addr` names them.
fn replicas_per_node(kafka_addr: &str, topic: &str, partitions: i32) -> BTreeMap<i32, usize> {
    let mut counts = BTreeMap::new();
    for p in 0..partitions {
        for id in replicas_named_by(kafka_addr, topic, p) {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}
