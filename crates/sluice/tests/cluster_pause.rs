//! Proves a frozen leader is replaced and steps down when it thaws, losing nothing: 3 nodes, an
//! idempotent `acks=all` producer writing to a topic replicated 3 times while the leader of
//! partition 0 is paused with SIGSTOP (its sockets stay open, it answers nothing), twice. The
//! others elect a new leader and acknowledgements resume; after SIGCONT the old leader's own
//! Metadata names the new leader and it is back in every ISR. The history checker finds no
//! lost write, no duplicate, no offset holding two values.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata_client, wait_for_leader, wait_fully_replicated,
};
use cluster_support::local;
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Recorder};
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
const VICTIM_PARTITION: i32 = 0;
/// Pauses of the leader.
const PAUSES: usize = 2;
const SENDS_MAX: u64 = 100_000;
/// About 2000 sends a second at most.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Bound on the others electing a new leader and acknowledging a send made after the pause.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the thawed node stepping down and catching up into every ISR.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_paused_leader_is_replaced_steps_down_when_thawed_and_loses_nothing() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-pause");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let recorder = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "z".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &recorder, &stop);
    wait_until(PROGRESS_TIMEOUT, "the producer's first acknowledgement", || {
        recorder.first_ack_after(VICTIM_PARTITION, Duration::ZERO).is_some()
    });

    for round in 1..=PAUSES {
        let leader = wait_for_leader(
            &client,
            &topic,
            VICTIM_PARTITION,
            FAILOVER_TIMEOUT,
            &format!("round {round}: a leader of partition {VICTIM_PARTITION}"),
        );
        let paused_at = recorder.started().elapsed();
        cluster.node(leader as u64).sigstop();
        let mut successor = None;
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: a new leader after pausing node {leader}"), || {
            successor = leader_of(&client, &topic, VICTIM_PARTITION).filter(|l| *l != leader);
            successor.is_some()
        });
        let successor = successor.unwrap_or_default();
        let elected = recorder.started().elapsed().saturating_sub(paused_at);
        let mut acked_at = None;
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: an acknowledgement after pausing node {leader}"), || {
            acked_at = recorder.first_ack_after(VICTIM_PARTITION, paused_at);
            acked_at.is_some()
        });
        let took = acked_at.unwrap_or_default().saturating_sub(paused_at);
        eprintln!(
            "cluster_pause: pause {round} (node {leader}) -> the test's metadata client saw node {successor} lead after {} ms (its requests to the frozen node time out); first successful produce {} ms",
            elected.as_millis(),
            took.as_millis()
        );

        cluster.node(leader as u64).sigcont();
        let thawed_at = recorder.started().elapsed();
        // Asked of the thawed node alone: it must have learnt it no longer leads.
        let kafka = cluster.kafka_addr(leader as u64);
        let mut named = -1;
        wait_until(CATCH_UP_TIMEOUT, &format!("round {round}: thawed node {leader} naming another leader"), || {
            named = local::leader_named_by(&kafka, &topic, VICTIM_PARTITION);
            named >= 0 && named != leader
        });
        eprintln!(
            "cluster_pause: thawed node {leader} names node {named} leader after {} ms",
            recorder.started().elapsed().saturating_sub(thawed_at).as_millis()
        );
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
        assert!(cluster.node(leader as u64).is_running(), "node {leader} died after SIGCONT");
        wait_until(PROGRESS_TIMEOUT, &format!("round {round}: an acknowledgement after thawing node {leader}"), || {
            recorder.first_ack_after(VICTIM_PARTITION, thawed_at).is_some()
        });
    }
    stop.set();
    let produced = producer.join().expect("producer thread");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, PROGRESS_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_pause: {report}");
    eprintln!(
        "cluster_pause: {} sends, final read {read}, fatal producer errors {:?}",
        produced.sent, produced.fatal_errors
    );
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.is_valid(), "{}", report.details());
    assert!(report.duplicates.is_empty(), "{}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{}", report.details());
    cluster.assert_no_panics("the end");
}
