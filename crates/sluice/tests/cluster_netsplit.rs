//! Proves a leader cut off the network is replaced and loses nothing acknowledged: 3 nodes,
//! each in its own network namespace, an idempotent `acks=all` producer writing to a topic
//! replicated 3 times while the leader of partition 0 has its link cut (twice), then healed;
//! the history checker finds no lost write, no inconsistent offset, no duplicate. While cut
//! off, the old leader's `/ping` (asked from inside its namespace) answers 500 NOK, the
//! majority's answer OK; once healed it answers OK again.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{
    create_topic, final_read, leader_of, metadata_client, wait_for_leader, wait_fully_replicated,
};
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::{netns, Cluster, ClusterOpts};
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Recorder};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
const VICTIM_PARTITION: i32 = 0;
/// Cuts of the leader's link.
const CUTS: usize = 2;
const SENDS_MAX: u64 = 100_000;
/// About 2000 sends a second at most.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Bound on the majority electing a new leader and acknowledging a send made after the cut.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a healed node catching up into every ISR.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_leader_cut_off_the_network_is_replaced_and_loses_nothing_acknowledged() {
    // Root and iproute2 are what `scripts/install-test-deps.sh` guarantees: no silent skip.
    assert!(netns::available(), "network namespaces need root and the `ip` tool (iproute2)");
    let mut cluster = Cluster::start_with(NODES, ClusterOpts { namespaces: true, ..ClusterOpts::default() });
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-netsplit");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let recorder = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "n".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &recorder, &stop);
    wait_until(PROGRESS_TIMEOUT, "the producer's first acknowledgement", || {
        recorder.first_ack_after(VICTIM_PARTITION, Duration::ZERO).is_some()
    });

    for round in 1..=CUTS {
        let leader = wait_for_leader(
            &client,
            &topic,
            VICTIM_PARTITION,
            FAILOVER_TIMEOUT,
            &format!("round {round}: a leader of partition {VICTIM_PARTITION}"),
        );
        let cut_at = recorder.started().elapsed();
        cluster.cut(leader as u64);
        // Only the majority answers metadata now, so a new leader is the majority's choice.
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: a new leader after cutting node {leader}"), || {
            leader_of(&client, &topic, VICTIM_PARTITION).is_some_and(|l| l != leader)
        });
        let isolated = ping_from_inside(&cluster, leader as u64);
        assert!(isolated.starts_with("500") && isolated.contains("cut off"), "cut node's /ping: {isolated}");
        let others: Vec<u64> = (1..=NODES as u64).filter(|id| *id != leader as u64).collect();
        for id in &others {
            let answer = raw_get(&cluster.http_addr(*id), "/ping");
            assert!(answer.starts_with("200"), "node {id}'s /ping with node {leader} cut off: {answer}");
        }
        let mut acked_at = None;
        wait_until(FAILOVER_TIMEOUT, &format!("round {round}: an acknowledgement after cutting node {leader}"), || {
            acked_at = recorder.first_ack_after(VICTIM_PARTITION, cut_at);
            acked_at.is_some()
        });
        let took = acked_at.unwrap_or_default().saturating_sub(cut_at);
        eprintln!("cluster_netsplit: cut {round} (node {leader}) -> first successful produce {} ms", took.as_millis());
        cluster.heal(leader as u64);
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
        wait_until(CATCH_UP_TIMEOUT, &format!("round {round}: node {leader}'s /ping OK once healed"), || {
            raw_get(&cluster.http_addr(leader as u64), "/ping").starts_with("200")
        });
        assert!(cluster.node(leader as u64).is_running(), "node {leader} died while cut off");
    }
    stop.set();
    let produced = producer.join().expect("producer thread");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, PROGRESS_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_netsplit: {report}");
    eprintln!(
        "cluster_netsplit: {} sends, final read {read}, fatal producer errors {:?}",
        produced.sent, produced.fatal_errors
    );
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.is_valid(), "{}", report.details());
    assert!(report.duplicates.is_empty(), "{}", report.details());
}

/// The node's `/ping` as "STATUS BODY", asked from inside its own namespace (nothing else
/// reaches it while cut off), once it says NOK or after PROGRESS_TIMEOUT (the last answer).
fn ping_from_inside(cluster: &Cluster, id: u64) -> String {
    let network = cluster.network().expect("namespaces");
    let addr = cluster.http_addr(id);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // This thread only: the test's other threads stay in the root namespace.
                network.enter(id as usize).expect("enter the node's namespace");
                let mut last = String::new();
                let deadline = std::time::Instant::now() + PROGRESS_TIMEOUT;
                while std::time::Instant::now() < deadline {
                    last = raw_get(&addr, "/ping");
                    if last.starts_with("500") {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                last
            })
            .join()
            .expect("ping thread")
    })
}

/// GET over a fresh connection: "STATUS BODY", or the error.
fn raw_get(addr: &str, path: &str) -> String {
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).unwrap_or("0").to_string();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    format!("{status} {body}")
}
