//! Proves what sarama (the Go client) is told survives leader failover: a sarama `WaitForAll`
//! SyncProducer (Debian's sarama 1.22, Kafka 2.1.0 protocol, `tests/clients/sarama_cluster`)
//! writes round-robin to a 2-partition topic replicated on 3 nodes while the leader of
//! partition 0 is `kill -9`ed and restarted, twice (100 acknowledgements before each kill and
//! after the last restart). Every message sarama acknowledged must be
//! in the final read at the offset sarama was told (history checker: nothing lost, nothing
//! misplaced, no offset holding two values). Prints the counts and each failover's time.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata_client, wait_for_leader, wait_fully_replicated,
};
use cluster_support::Cluster;
use common::{unique_topic, wait_timeout, wait_until};
use history::{check, CheckOptions, Recorder};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
const VICTIM_PARTITION: i32 = 0;
/// Kills of the leader.
const KILLS: usize = 2;
/// The program's bound: it stops at this many sends even if the kills take longer.
const SENDS_MAX: u64 = 100_000;
/// Bound on a new leader being elected and sarama getting a send made after the kill through.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(40);
/// Bound on a restarted node catching up into the ISR of every partition.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the first acknowledgement and on reading one partition back.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Acknowledgements sarama must get before each kill and after the last restart, so each
/// phase of the run has its share of the history (a sync producer sends one at a time).
const ACKS_PER_PHASE: usize = 100;
/// Bound on one phase's acknowledgements.
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the program finishing its send in flight and exiting once its stdin is closed
/// (a send retries for at most about 40 × 250 ms plus its timeouts).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the Go program once; its path.
fn program() -> std::path::PathBuf {
    common::go::build_programs("sarama_cluster", "sluiceclustertest", &["./clusterproducer"]).join("clusterproducer")
}

/// Acknowledgements recorded so far.
fn acknowledged(recorder: &Recorder) -> usize {
    recorder.ops().iter().filter(|op| matches!(op, history::Op::SendOk { .. })).count()
}

/// Waits (bounded) until sarama got `ACKS_PER_PHASE` more acknowledgements than `since`.
fn wait_for_acks(recorder: &Recorder, since: usize, phase: &str) -> usize {
    let mut now = since;
    wait_until(PHASE_TIMEOUT, &format!("{ACKS_PER_PHASE} acknowledgements to sarama {phase}"), || {
        now = acknowledged(recorder);
        now >= since + ACKS_PER_PHASE
    });
    now
}

/// Records one line of the program's output; returns false on `done`.
fn record_line(recorder: &Recorder, line: &str) -> bool {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("send"), Some(value), None) => recorder.send(value, None, false),
        (Some("ok"), Some(value), Some(at)) => {
            let (partition, offset) = at.split_once(' ').unwrap_or_else(|| panic!("bad ok line: {line}"));
            let partition = partition.parse().unwrap_or_else(|e| panic!("bad partition in {line}: {e}"));
            let offset = offset.parse().unwrap_or_else(|e| panic!("bad offset in {line}: {e}"));
            recorder.send_ok(value, partition, offset);
        }
        // An error after the send left: it may be stored or not.
        (Some("err"), Some(value), _) => recorder.send_unknown(value),
        (Some("done"), Some(_), None) => return false,
        _ => panic!("clusterproducer printed an unknown line: {line}"),
    }
    true
}

#[test]
fn every_message_sarama_was_told_is_stored_across_leader_kills() {
    let program = program();
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-sarama");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let mut child = Command::new(&program)
        .args(["-brokers", &bootstrap, "-topic", &topic, "-partitions", &PARTITIONS.to_string()])
        .args(["-max", &SENDS_MAX.to_string(), "-prefix", "s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let recorder = Recorder::new();
    let reader = {
        let recorder = recorder.clone();
        std::thread::spawn(move || {
            let mut done = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !record_line(&recorder, &line) {
                    done = true;
                    break;
                }
            }
            done
        })
    };
    wait_until(PROGRESS_TIMEOUT, "sarama's first acknowledgement", || {
        recorder.first_ack_after(VICTIM_PARTITION, Duration::ZERO).is_some()
    });

    let mut failovers = Vec::new();
    let mut acks = 0;
    for round in 1..=KILLS {
        acks = wait_for_acks(&recorder, acks, &format!("before kill {round}"));
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
        wait_until(
            FAILOVER_TIMEOUT,
            &format!("round {round}: sarama acknowledged after killing node {leader}"),
            || {
                acked_at = recorder.first_ack_after(VICTIM_PARTITION, killed_at);
                acked_at.is_some()
            },
        );
        let took = acked_at.unwrap_or_default().saturating_sub(killed_at);
        eprintln!(
            "cluster_sarama: kill {round} (node {leader}) -> first send acknowledged to sarama {} ms",
            took.as_millis()
        );
        failovers.push((leader, took));
        cluster.node(leader as u64).restart();
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
    }
    wait_for_acks(&recorder, acks, "after the last restart");
    // Closing its stdin stops the program after the send in flight.
    drop(stdin);
    let status = wait_timeout(&mut child, EXIT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let done = reader.join().expect("reader thread");
    assert!(status.is_some_and(|s| s.success()) && done, "clusterproducer did not finish cleanly: {status:?}");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, PROGRESS_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_sarama: {report}");
    let ran = recorder.started().elapsed();
    eprintln!(
        "cluster_sarama: final read {read}; {} sends acknowledged in {} ms (one at a time); failovers {failovers:?}",
        report.acknowledged,
        ran.as_millis()
    );
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(report.non_monotonic.is_empty(), "{}", report.details());
    cluster.assert_no_panics("the end");
}
