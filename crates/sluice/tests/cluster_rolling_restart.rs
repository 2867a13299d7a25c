//! Proves a rolling restart loses nothing and leaves no client stuck: while an idempotent
//! `acks=all` producer (librdkafka) writes to an RF 3 topic, every node in turn has its
//! leadership moved away and is stopped with SIGTERM, restarted, and caught up into every
//! ISR before the next:
//! - the node leading the most partitions goes first with SIGTERM alone (a clustered node's
//!   controlled shutdown moves its leadership before it stops; its log says so);
//! - the others are drained first with `sluice cluster drain ID` (asked of another node):
//!   afterwards no node's Metadata names it leader of any partition;
//! - every stop is a clean exit within the harness's bound, and the producer keeps being
//!   acknowledged after each restart.
//!
//! The history checker judges the final read: nothing acknowledged lost or misplaced, no
//! offset holding two values, no duplicate from the idempotent producer.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{final_read, leader_of, metadata_client, wait_fully_replicated};
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::Cluster;
use common::{run_ok, unique_topic, wait_until};
use history::{check, CheckOptions, Recorder};
use std::process::Command;
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 3;
const REPLICATION: i32 = 3;
const SENDS_MAX: u64 = 1_000_000;
/// About 2000 sends a second at most: a history the final read handles quickly.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Bound on elections, catching up and reads.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(40);
/// The CLI's bound (a drain's elections take a few seconds at most).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

fn sluice(args: &[&str]) -> String {
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_sluice")).args(args), CLI_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_node_restarts_in_turn_under_load_with_nothing_lost() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-rolling");
    cluster_support::kafka::create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, PROGRESS_TIMEOUT);

    let sends = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "roll".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &sends, &stop);
    wait_until(PROGRESS_TIMEOUT, "the producer's first acknowledgement", || {
        (0..PARTITIONS).all(|p| sends.first_ack_after(p, Duration::ZERO).is_some())
    });

    let leads = |id: u64| (0..PARTITIONS).filter(|p| leader_of(&client, &topic, *p) == Some(id as i32)).count();
    let mut order: Vec<u64> = (1..=NODES as u64).collect();
    order.sort_by_key(|id| std::cmp::Reverse(leads(*id)));
    for (round, id) in order.into_iter().enumerate() {
        let led = leads(id);
        if round == 0 {
            let log_from = cluster.node(id).log_contents().len();
            assert!(cluster.node(id).stop(), "node {id} did not exit by itself after SIGTERM");
            let log = cluster.node(id).log_contents();
            let said = log.get(log_from..).unwrap_or("");
            eprintln!("cluster_rolling_restart: node {id} (leading {led}) stopped with SIGTERM alone");
            assert!(said.contains("node drained of leadership"), "node {id}'s SIGTERM did not drain it");
        } else {
            let other = if id == 1 { 2 } else { 1 };
            let said = sluice(&["cluster", "drain", &id.to_string(), "--http", &cluster.http_addr(other)]);
            eprintln!("cluster_rolling_restart: node {id} (leading {led}): {}", said.trim());
            for asked in (1..=NODES as u64).filter(|n| *n != id) {
                let via = metadata_client(&cluster.kafka_addr(asked));
                wait_until(
                    PROGRESS_TIMEOUT,
                    &format!("node {asked}'s Metadata naming node {id} leader of nothing"),
                    || (0..PARTITIONS).all(|p| leader_of(&via, &topic, p).is_some_and(|l| l != id as i32)),
                );
            }
            assert!(cluster.node(id).stop(), "node {id} did not exit by itself after SIGTERM");
        }
        let stopped_at = sends.started().elapsed();
        cluster.node(id).restart();
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, PROGRESS_TIMEOUT);
        wait_until(PROGRESS_TIMEOUT, &format!("acknowledgements on every partition after node {id} came back"), || {
            (0..PARTITIONS).all(|p| sends.first_ack_after(p, stopped_at).is_some())
        });
    }
    stop.set();
    let produced = producer.join().expect("producer thread");
    assert!(produced.fatal_errors.is_empty(), "idempotent producer fatal errors: {:?}", produced.fatal_errors);

    let read = final_read(&bootstrap, &topic, PARTITIONS, &sends, PROGRESS_TIMEOUT);
    let report = check(&sends.ops(), &CheckOptions::default());
    eprintln!("cluster_rolling_restart: {} sends, final read {read}; {report}", produced.sent);
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.is_valid(), "{}", report.details());
    assert!(report.duplicates.is_empty(), "{}", report.details());
    cluster.assert_no_panics("the end");
}
