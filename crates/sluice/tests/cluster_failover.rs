//! Proves acknowledged writes survive leader failover: an idempotent `acks=all` librdkafka
//! producer writes to a 2-partition topic replicated on 3 nodes while the leader of partition 0
//! is `kill -9`ed and restarted, 5 times; a final read of every partition then holds every
//! acknowledged value exactly once, at the offset it was acknowledged at (history checker: no
//! lost write, no inconsistent offset, no duplicate). Prints the counts and, per kill, the time
//! until a send made after the kill was acknowledged on partition 0.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata_client, wait_for_leader, wait_fully_replicated,
};
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Recorder};
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
/// The partition whose leader is killed.
const VICTIM_PARTITION: i32 = 0;
/// Kills of the leader (a few only: CI time).
/// Kills per run: 5 in CI; `SLUICE_FAILOVER_KILLS` raises it for the failover benchmark
/// (`scripts/bench-cluster.sh`).
fn kills() -> usize {
    std::env::var("SLUICE_FAILOVER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}
/// The producer's bound: it stops at this many sends even if the kills take longer.
const SENDS_MAX: u64 = 200_000;
/// The producer sleeps 10 ms after every 20 sends: about 2000 a second at most, so the final
/// read stays quick.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Bound on a new leader being elected and acknowledging a send made after the kill.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a restarted node catching up into the ISR of every partition.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the producer's first acknowledgement and on reading one partition back.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn acknowledged_writes_survive_killing_the_leader_five_times() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-failover");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let recorder = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "p".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &recorder, &stop);
    wait_until(PROGRESS_TIMEOUT, "the producer's first acknowledgement", || {
        recorder.first_ack_after(VICTIM_PARTITION, Duration::ZERO).is_some()
    });

    let mut failovers = Vec::new();
    for round in 1..=kills() {
        let leader = wait_for_leader(
            &client,
            &topic,
            VICTIM_PARTITION,
            FAILOVER_TIMEOUT,
            &format!("round {round}: a leader of partition {VICTIM_PARTITION}"),
        );
        let killed_at = recorder.started().elapsed();
        cluster.node(leader as u64).kill9();
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: a new leader after killing node {leader}"), || {
            leader_of(&client, &topic, VICTIM_PARTITION).is_some_and(|l| l != leader)
        });
        let elected = recorder.started().elapsed().saturating_sub(killed_at);
        eprintln!("round {round}: metadata names a new leader {elected:?} after the kill");
        let elected = recorder.started().elapsed().saturating_sub(killed_at);
        eprintln!("round {round}: metadata names a new leader {elected:?} after the kill");
        let mut acked_at = None;
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: an acknowledgement after killing node {leader}"), || {
            acked_at = recorder.first_ack_after(VICTIM_PARTITION, killed_at);
            acked_at.is_some()
        });
        let took = acked_at.unwrap_or_default().saturating_sub(killed_at);
        eprintln!("round {round}: killed node {leader}; first acknowledged send after it took {took:?}");
        failovers.push((leader, took));
        cluster.node(leader as u64).restart();
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
    }
    stop.set();
    let produced = producer.join().expect("producer thread");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, PROGRESS_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_failover: {report}");
    eprintln!(
        "cluster_failover: {} sends, final read {read}, fatal producer errors {:?}",
        produced.sent, produced.fatal_errors
    );
    for (round, (node, took)) in failovers.iter().enumerate() {
        eprintln!(
            "cluster_failover: kill {} (node {node}) -> first successful produce {} ms",
            round + 1,
            took.as_millis()
        );
    }
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.duplicates.is_empty(), "{}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(report.non_monotonic.is_empty(), "{}", report.details());
}
