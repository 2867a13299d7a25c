//! Proves KIP-134's initial rebalance delay and KIP-429's incremental protocol with a real
//! cooperative-sticky librdkafka client: two consumers started together under the default
//! 3 s delay share one rebalance (one assignment each, nothing revoked), and a third member
//! joining later revokes only the one partition that moves to it; two static members
//! (group.instance.id, eager assignor) started together are assigned once each.

mod common;
mod group_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use common::{unique_topic, Broker};
use group_support::rebalances::{assignment, member, Recorder};

const PARTITIONS: i32 = 4;
/// The members' session: long enough that a member busy in a long rebalance is not dropped.
const SESSION: (&str, &str) = ("session.timeout.ms", "10000");
/// Bound on a group settling on a loaded 2-core machine (the delay itself is 3 to 6 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After balancing, how long the test keeps polling to catch a late extra rebalance.
const QUIET: Duration = Duration::from_secs(4);

fn cooperative_member(broker: &Broker, group: &str, topic: &str) -> (BaseConsumer<Recorder>, Recorder) {
    member(broker, group, topic, &[("partition.assignment.strategy", "cooperative-sticky"), SESSION])
}

/// Polls every consumer until `done` holds (bounded by `timeout`).
fn poll_until(consumers: &[&BaseConsumer<Recorder>], timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        for c in consumers {
            let _ = c.poll(Duration::from_millis(20));
        }
    }
}

fn poll_for(consumers: &[&BaseConsumer<Recorder>], quiet: Duration) {
    let until = Instant::now() + quiet;
    poll_until(consumers, quiet + Duration::from_secs(5), "a quiet period", || Instant::now() >= until);
}

fn covers_all(consumers: &[&BaseConsumer<Recorder>]) -> bool {
    let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assignment(c)).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    sets.iter().all(|s| !s.is_empty()) && total == PARTITIONS as usize
}

/// Lines of the broker log announcing a completed join phase of `group`.
fn rebalances(broker: &Broker, group: &str) -> usize {
    broker.log_contents().lines().filter(|l| l.contains("group rebalanced") && l.contains(group)).count()
}

fn broker_with_topic(prefix: &str) -> (Broker, String) {
    // Kafka's default delay (the harness turns it off for other tests).
    let broker =
        Broker::start(&["--default-partitions", &PARTITIONS.to_string(), "--group-initial-rebalance-delay-ms", "3000"]);
    let topic = unique_topic(prefix);
    let producer: BaseProducer = common::client_config(&broker.bootstrap()).create().expect("producer");
    for p in 0..PARTITIONS {
        producer.send(BaseRecord::to(&topic).partition(p).key("k").payload("v")).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    (broker, topic)
}

/// Each recorder saw exactly one callback that moved partitions: an assignment of half.
fn assert_assigned_once(recorders: &[(&str, &Recorder)]) {
    for (name, rec) in recorders {
        let moves = rec.moves();
        assert_eq!(moves.len(), 1, "{name}: exactly one assignment, no revocation: {moves:?}");
        assert_eq!(moves[0].0, "assign", "{name}: {moves:?}");
        assert_eq!(moves[0].1.len(), 2, "{name}: half of the partitions: {moves:?}");
    }
}

#[test]
fn consumers_started_together_share_one_rebalance_and_a_newcomer_revokes_only_what_moves() {
    let (broker, topic) = broker_with_topic("delay");
    let group = unique_topic("g-delay");

    let started = Instant::now();
    let (a, rec_a) = cooperative_member(&broker, &group, &topic);
    let (b, rec_b) = cooperative_member(&broker, &group, &topic);
    poll_until(&[&a, &b], SETTLE_TIMEOUT, "A and B to share the partitions", || covers_all(&[&a, &b]));
    let first_assignment = started.elapsed();
    poll_for(&[&a, &b], QUIET);
    eprintln!("first assignment after {first_assignment:?}; A {:?}, B {:?}", rec_a.moves(), rec_b.moves());
    assert_assigned_once(&[("A", &rec_a), ("B", &rec_b)]);
    assert_eq!(rebalances(&broker, &group), 1, "one rebalance for both members");
    assert!(first_assignment >= Duration::from_secs(3), "the delay held the first rebalance");

    // KIP-429: C joins a running group at once (no delay); one partition moves from its
    // owner to C in two rebalances, and nobody else gives anything up.
    let (c, rec_c) = cooperative_member(&broker, &group, &topic);
    poll_until(&[&a, &b, &c], SETTLE_TIMEOUT, "A, B and C to share the partitions", || covers_all(&[&a, &b, &c]));
    poll_for(&[&a, &b, &c], QUIET);
    let later = |rec: &Recorder| rec.moves().into_iter().skip(1).collect::<Vec<_>>();
    let (after_a, after_b) = (later(&rec_a), later(&rec_b));
    eprintln!("after C joined: A {after_a:?}, B {after_b:?}, C {:?}", rec_c.moves());
    let revoked: Vec<i32> =
        after_a.iter().chain(&after_b).flat_map(|(k, p)| p.clone().into_iter().filter(|_| *k == "revoke")).collect();
    assert_eq!(revoked.len(), 1, "only the moving partition is revoked: A {after_a:?}, B {after_b:?}");
    assert!(
        after_a.iter().chain(&after_b).all(|(k, _)| *k == "revoke"),
        "A and B gained nothing: A {after_a:?}, B {after_b:?}"
    );
    assert_eq!(rec_c.moves(), vec![("assign", revoked.clone())], "C got exactly the revoked partition");
    assert_eq!(rebalances(&broker, &group), 3, "C's join and the revocation's follow-up rebalance");
}

#[test]
fn static_members_started_together_are_assigned_once() {
    let (broker, topic) = broker_with_topic("delay-static");
    let group = unique_topic("g-delay-static");
    let (a, rec_a) = member(&broker, &group, &topic, &[("group.instance.id", "static-a"), SESSION]);
    let (b, rec_b) = member(&broker, &group, &topic, &[("group.instance.id", "static-b"), SESSION]);
    poll_until(&[&a, &b], SETTLE_TIMEOUT, "A and B to share the partitions", || covers_all(&[&a, &b]));
    poll_for(&[&a, &b], QUIET);
    eprintln!("static members: A {:?}, B {:?}", rec_a.moves(), rec_b.moves());
    assert_assigned_once(&[("A", &rec_a), ("B", &rec_b)]);
    assert_eq!(rebalances(&broker, &group), 1, "one rebalance for both members");
}
