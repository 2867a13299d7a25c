//! Failover under load (issue 11): acknowledged writes survive killing a partition's leader
//! again and again. On a 2-partition topic replicated on 3 nodes, four clients run together:
//! a librdkafka idempotent `acks=all` producer, a plain (not idempotent) librdkafka `acks=all`
//! producer, a sarama `WaitForAll` SyncProducer (Go, `tests/clients/sarama_cluster`) and a
//! librdkafka group consumer. The leader of partition 0 is `kill -9`ed and restarted 10 times
//! (`SLUICE_FAILOVER_KILLS` raises it for `scripts/bench-cluster.sh`); before each kill every
//! producer must have had acknowledgements since the last restart and the consumer new reads.
//! Then a final read of every partition and the history checker prove: no acknowledged record
//! missing, none at another offset than acknowledged, no offset holding two values, no
//! duplicate from the idempotent producer (the others may store a retried send twice), every
//! record read was sent, and the consumer's reads went forward. The counts are printed, and per
//! kill the time until a send each producer made after it was acknowledged on partition 0.
//!
//! The group consumer's committed offsets live in the replicated `__consumer_offsets` (issue 12):
//! when a kill takes the group's coordinator, the consumer finds the new one (the leader of
//! the group's offsets partition), rejoins and resumes from its committed offsets, reading
//! again only what it had not committed yet. The consumer records every assignment as a reset
//! of its partitions (`cluster_support::consume`) and the checker judges its reads as
//! monotonic from there; `cluster_groups.rs` checks that the committed offsets themselves never
//! go back.

mod cluster_support;
mod common;
mod history;

use cluster_support::consume::consume_in_background;
use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata_client, wait_for_leader, wait_fully_replicated,
};
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::sarama::SaramaProducer;
use cluster_support::Cluster;
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Op, Recorder};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
/// The partition whose leader is killed.
const VICTIM_PARTITION: i32 = 0;
/// Kills per run: 10 in CI; `SLUICE_FAILOVER_KILLS` raises it for the failover benchmark
/// (`scripts/bench-cluster.sh`).
fn kills() -> usize {
    std::env::var("SLUICE_FAILOVER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}
/// Values of each producer: `<prefix>-<n>`.
const IDEMPOTENT: &str = "i";
const PLAIN: &str = "p";
const SARAMA: &str = "s";
const PRODUCERS: [&str; 3] = [IDEMPOTENT, PLAIN, SARAMA];
const GROUP_CONSUMER: &str = "group-consumer";
/// Each producer's bound: it stops at this many sends even if the kills take longer.
const SENDS_MAX: u64 = 200_000;
/// The librdkafka producers sleep 10 ms after every 20 sends: about 2000 a second each at
/// most, so the final read stays quick.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Acknowledgements each producer gets, and records the consumer reads, after a restart (or
/// the start) before the next kill: every client rode out the last failover.
const PROGRESS_PER_ROUND: usize = 80;
/// Bound on that progress.
const ROUND_PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the progress is looked at.
const PROGRESS_POLL: Duration = Duration::from_millis(50);
/// Bound on a new leader being elected and acknowledging a send made after the kill.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a restarted node catching up into the ISR of every partition.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on reading one partition back.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What each client achieved so far: acknowledgements per producer (in `PRODUCERS` order) and
/// the consumer's reads.
fn progress(recorder: &Recorder) -> ([usize; 3], usize) {
    let mut acks = [0; 3];
    let mut reads = 0;
    for op in recorder.ops() {
        match op {
            Op::SendOk { value, .. } => {
                if let Some(i) = PRODUCERS.iter().position(|p| value.split_once('-').is_some_and(|(v, _)| v == *p)) {
                    acks[i] += 1;
                }
            }
            Op::Poll { consumer, .. } if consumer == GROUP_CONSUMER => reads += 1,
            _ => {}
        }
    }
    (acks, reads)
}

/// Waits (bounded) until every producer has `PROGRESS_PER_ROUND` more acknowledgements and the
/// consumer as many more reads than at `since`; returns the progress then.
fn wait_for_progress(recorder: &Recorder, since: ([usize; 3], usize), what: &str) -> ([usize; 3], usize) {
    let deadline = Instant::now() + ROUND_PROGRESS_TIMEOUT;
    loop {
        let now = progress(recorder);
        let acked = now.0.iter().zip(since.0).all(|(n, s)| *n >= s + PROGRESS_PER_ROUND);
        if acked && now.1 >= since.1 + PROGRESS_PER_ROUND {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no progress of every client {what} within {ROUND_PROGRESS_TIMEOUT:?}: acknowledgements \
             (idempotent, plain, sarama) and consumer reads were {since:?}, are {now:?}"
        );
        std::thread::sleep(PROGRESS_POLL);
    }
}

/// When (since the recorder started) the first send of `prefix` made at or after `since` was
/// acknowledged on `partition`.
fn first_ack_after(recorder: &Recorder, prefix: &str, partition: i32, since: Duration) -> Option<Duration> {
    let ours = |value: &str| value.split_once('-').is_some_and(|(p, _)| p == prefix);
    let mut sent_after = std::collections::HashSet::new();
    for s in recorder.stamped() {
        match s.op {
            Op::Send { value, .. } if s.at >= since && ours(&value) => {
                sent_after.insert(value);
            }
            Op::SendOk { value, partition: p, .. } if p == partition && sent_after.contains(&value) => {
                return Some(s.at)
            }
            _ => {}
        }
    }
    None
}

#[test]
fn acknowledged_writes_survive_killing_the_leader_under_load() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-failover");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let recorder = Recorder::new();
    let stop = Stop::default();
    let spec = |prefix: &str, idempotent| ProduceSpec {
        topic: topic.clone(),
        prefix: prefix.into(),
        count_max: SENDS_MAX,
        idempotent,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let idempotent = produce_in_background(&bootstrap, spec(IDEMPOTENT, true), &recorder, &stop);
    let plain = produce_in_background(&bootstrap, spec(PLAIN, false), &recorder, &stop);
    let mut sarama = SaramaProducer::start(&bootstrap, &topic, PARTITIONS, SARAMA, SENDS_MAX, &recorder);
    let consumer_stop = Stop::default();
    let group = format!("{topic}-group");
    let consumer = consume_in_background(&bootstrap, &topic, &group, GROUP_CONSUMER, &recorder, &consumer_stop);

    let mut failovers = Vec::new();
    let mut seen = progress(&recorder);
    for round in 1..=kills() {
        seen = wait_for_progress(&recorder, seen, &format!("before kill {round}"));
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
        let mut acked_at = None;
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: an acknowledgement after killing node {leader}"), || {
            acked_at = first_ack_after(&recorder, IDEMPOTENT, VICTIM_PARTITION, killed_at);
            acked_at.is_some()
        });
        let took = acked_at.unwrap_or_default().saturating_sub(killed_at);
        eprintln!("round {round}: killed node {leader}; first acknowledged send after it took {took:?}");
        failovers.push((leader, killed_at, took));
        cluster.node(leader as u64).restart();
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
    }
    wait_for_progress(&recorder, seen, "after the last restart");
    stop.set();
    let sarama_clean = sarama.stop();
    let idempotent = idempotent.join().expect("idempotent producer thread");
    let plain = plain.join().expect("plain producer thread");
    consumer_stop.set();
    let consumed = consumer.join().expect("consumer thread");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, READ_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    let (acks, _) = progress(&recorder);
    let resets = recorder.ops().iter().filter(|op| matches!(op, Op::Reset { .. })).count();
    eprintln!("cluster_failover: {report}");
    eprintln!(
        "cluster_failover: acknowledged: idempotent {}, plain {}, sarama {}; sends: idempotent {}, plain {}; \
         consumer read {} records ({} poll errors, {resets} partition assignments); final read {read}; \
         fatal idempotent producer errors {:?}",
        acks[0],
        acks[1],
        acks[2],
        idempotent.sent,
        plain.sent,
        consumed.records,
        consumed.errors,
        idempotent.fatal_errors
    );
    for (round, (node, killed_at, took)) in failovers.iter().enumerate() {
        // The other producers' first acknowledgement of a send after the kill, for comparison
        // (the benchmark reads the idempotent producer's, the first figure).
        let others: Vec<String> = [(PLAIN, "plain"), (SARAMA, "sarama")]
            .iter()
            .map(|(prefix, name)| match first_ack_after(&recorder, prefix, VICTIM_PARTITION, *killed_at) {
                Some(at) => format!("{name} {} ms", at.saturating_sub(*killed_at).as_millis()),
                None => format!("{name}: none"),
            })
            .collect();
        eprintln!(
            "cluster_failover: kill {} (node {node}) -> first successful produce {} ms ({})",
            round + 1,
            took.as_millis(),
            others.join(", ")
        );
    }
    assert!(sarama_clean, "the sarama producer did not finish cleanly");
    assert!(acks.iter().all(|a| *a > 0), "a producer got nothing acknowledged: {acks:?}");
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(report.non_monotonic.is_empty(), "{}", report.details());
    cluster.assert_no_panics("the end");
}
