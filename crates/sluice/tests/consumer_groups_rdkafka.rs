//! Proves librdkafka (the `rdkafka` crate, and confluent_kafka in a child process) consumer
//! groups work against Sluice: manual commits are kept and resumed, a member killed with
//! kill -9 is evicted after its session timeout, cooperative-sticky rebalances incrementally,
//! and a static member (group.instance.id) restarts without a rebalance.

mod common;
mod group_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use common::{unique_topic, Broker};
use group_support::rebalances::{assignment, member, Recorder};
use group_support::{committed, Line, Streaming};

const PARTITIONS: i32 = 4;
const SESSION_TIMEOUT_MS: u64 = 6000;
/// Bound on a group settling (join, sync, first fetch) on a loaded 2-core machine.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

fn produce(broker: &Broker, topic: &str, from: usize, n: usize) {
    let producer: BaseProducer =
        common::client_config(&broker.bootstrap()).set("acks", "all").create().expect("create producer");
    for i in from..from + n {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let mut record = BaseRecord::to(topic).partition(i as i32 % PARTITIONS).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Polls every consumer (collecting values) until `done` holds or the timeout passes.
fn poll_until(
    consumers: &[&BaseConsumer<Recorder>],
    got: &mut [Vec<(i32, i64, String)>],
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&[Vec<(i32, i64, String)>]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done(got) {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        for (i, c) in consumers.iter().enumerate() {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                got[i].push((m.partition(), m.offset(), value));
            }
        }
    }
}

fn balanced(consumers: &[&BaseConsumer<Recorder>]) -> bool {
    let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assignment(c)).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == PARTITIONS as usize && union.len() == PARTITIONS as usize
}

#[test]
fn manual_commits_are_kept_and_a_new_member_resumes_after_them() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("rdk-commit");
    let group = unique_topic("g-rdk-commit");
    produce(&broker, &topic, 0, 200);

    let (a, _) = member(&broker, &group, &topic, &[]);
    let mut got = vec![Vec::new()];
    poll_until(&[&a], &mut got, SETTLE_TIMEOUT, "first 100 messages", |g| g[0].len() >= 100);
    let mut tpl = TopicPartitionList::new();
    let mut next = [0i64; PARTITIONS as usize];
    for (p, o, _) in &got[0] {
        next[*p as usize] = next[*p as usize].max(o + 1);
    }
    for (p, o) in next.iter().enumerate() {
        if *o > 0 {
            tpl.add_partition_offset(&topic, p as i32, Offset::Offset(*o)).unwrap();
        }
    }
    a.commit(&tpl, CommitMode::Sync).expect("commit");
    let fetched = committed(&broker, &group, &topic, PARTITIONS);
    for (p, o) in next.iter().enumerate() {
        let want = if *o > 0 { *o } else { -1 };
        assert_eq!(fetched[p], want, "partition {p} committed offset (all {fetched:?})");
    }
    let first: BTreeSet<String> = got[0].iter().map(|(_, _, v)| v.clone()).collect();
    drop(a);

    let (b, _) = member(&broker, &group, &topic, &[]);
    let mut rest = vec![Vec::new()];
    let want = 200 - first.len();
    poll_until(&[&b], &mut rest, SETTLE_TIMEOUT, "the rest", |g| g[0].len() >= want);
    // Each partition is read in order from where b starts, so anything re-read below the
    // commit would come first: `want` distinct offsets at or above the commits are exactly
    // the uncommitted messages, with no need to wait for strays.
    for (p, o, _) in &rest[0] {
        let floor = if next[*p as usize] > 0 { next[*p as usize] } else { 0 };
        assert!(*o >= floor, "partition {p}: offset {o} re-read below the commit {floor}");
    }
    let distinct: BTreeSet<(i32, i64)> = rest[0].iter().map(|(p, o, _)| (*p, *o)).collect();
    assert_eq!(distinct.len(), rest[0].len(), "a message was read twice");
    assert_eq!(rest[0].len(), want, "exactly the uncommitted messages");
}

#[test]
fn member_killed_without_leaving_is_evicted_after_its_session_timeout() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("rdk-kill");
    let group = unique_topic("g-rdk-kill");
    produce(&broker, &topic, 0, 8);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/group_member.py");
    let mut victim = Streaming::spawn(
        Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--bootstrap", &broker.bootstrap(), "--topic", &topic, "--group", &group])
            .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()]),
    );
    victim.wait_for(
        SETTLE_TIMEOUT,
        "the child member's first assignment",
        |l| matches!(l, Line::Out(s) if s.starts_with("assigned ") && s.len() > "assigned ".len()),
    );

    let (survivor, _) = member(&broker, &group, &topic, &[]);
    let mut got = vec![Vec::new()];
    let mut victim_parts = 0;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    // Both share the partitions: the survivor has some, the child printed a matching assignment.
    while !(victim_parts > 0 && victim_parts + assignment(&survivor).len() == PARTITIONS as usize) {
        assert!(Instant::now() < deadline, "never balanced; child:\n{}", victim.transcript());
        poll_until(&[&survivor], &mut got, SETTLE_TIMEOUT, "poll", |_| true);
        survivor.poll(Duration::from_millis(50));
        while let Some(line) = victim.next_line(Duration::from_millis(10)) {
            if let Line::Out(s) = line {
                if let Some(parts) = s.strip_prefix("assigned ") {
                    victim_parts = parts.split(',').filter(|p| !p.is_empty()).count();
                }
            }
        }
    }

    let killed = Instant::now();
    victim.kill9();
    let deadline = killed + Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(20);
    while assignment(&survivor).len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "survivor never took over all partitions");
        survivor.poll(Duration::from_millis(50));
    }
    let took = killed.elapsed();
    eprintln!("takeover after kill -9: {took:?}");
    assert!(
        took >= Duration::from_millis(SESSION_TIMEOUT_MS) - Duration::from_millis(1500),
        "partitions moved after {took:?}, before the session timeout could have expired"
    );
}

#[test]
fn cooperative_sticky_rebalances_incrementally() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("rdk-coop");
    let group = unique_topic("g-rdk-coop");
    produce(&broker, &topic, 0, 4);
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let (a, rec_a) = member(&broker, &group, &topic, &coop);
    let mut got = vec![Vec::new(), Vec::new()];
    poll_until(&[&a], &mut got[..1], SETTLE_TIMEOUT, "A owns every partition", |_| {
        assignment(&a).len() == PARTITIONS as usize
    });
    let (b, rec_b) = member(&broker, &group, &topic, &coop);
    poll_until(&[&a, &b], &mut got, SETTLE_TIMEOUT, "A and B balanced", |_| balanced(&[&a, &b]));
    // Incremental: A only ever gave up the partitions that moved, never all of them.
    let revoked: Vec<Vec<i32>> = rec_a.events().into_iter().filter(|(k, _)| *k == "revoke").map(|(_, p)| p).collect();
    assert!(!revoked.is_empty(), "A gave partitions to B: {:?}", rec_a.events());
    for r in &revoked {
        assert!(r.len() < PARTITIONS as usize, "eager-style full revocation {r:?}; events {:?}", rec_a.events());
    }
    assert!(rec_b.events().iter().all(|(k, _)| *k == "assign"), "B only gained: {:?}", rec_b.events());

    let is_new = |v: &String| v.strip_prefix('v').and_then(|n| n.parse::<usize>().ok()).is_some_and(|i| i >= 1000);
    let mut fresh = vec![Vec::new(), Vec::new()];
    produce(&broker, &topic, 1000, 400);
    poll_until(&[&a, &b], &mut fresh, SETTLE_TIMEOUT, "400 messages", |g| {
        g.iter().flatten().filter(|(_, _, v)| is_new(v)).count() >= 400
    });
    let values: Vec<&String> = fresh.iter().flatten().map(|(_, _, v)| v).filter(|v| is_new(v)).collect();
    let distinct: BTreeSet<&String> = values.iter().copied().collect();
    assert_eq!(distinct.len(), values.len(), "each new message consumed once");
    assert!(!fresh[0].is_empty() && !fresh[1].is_empty(), "both members consumed");
}

#[test]
fn static_member_restarts_without_a_rebalance() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("rdk-static");
    let group = unique_topic("g-rdk-static");
    produce(&broker, &topic, 0, 4);
    let session = [("session.timeout.ms", "20000")];
    let (a, _) = member(&broker, &group, &topic, &[session[0], ("group.instance.id", "instance-a")]);
    let (b, rec_b) = member(&broker, &group, &topic, &[session[0], ("group.instance.id", "instance-b")]);
    let mut got = vec![Vec::new(), Vec::new()];
    poll_until(&[&a, &b], &mut got, SETTLE_TIMEOUT, "A and B balanced", |_| balanced(&[&a, &b]));
    let a_parts = assignment(&a);
    // Let the group settle, then note B's rebalance history.
    poll_until(&[&a, &b], &mut got, SETTLE_TIMEOUT, "settle", {
        let until = Instant::now() + Duration::from_secs(1);
        move |_| Instant::now() >= until
    });
    let before = rec_b.events().len();

    drop(a); // a static member does not send LeaveGroup on close
    let (a2, _) = member(&broker, &group, &topic, &[session[0], ("group.instance.id", "instance-a")]);
    poll_until(&[&a2, &b], &mut got, SETTLE_TIMEOUT, "restarted A assigned", |_| !assignment(&a2).is_empty());
    assert_eq!(assignment(&a2), a_parts, "the restarted static member got its old partitions back");
    poll_until(&[&a2, &b], &mut got, SETTLE_TIMEOUT, "quiet period", {
        let until = Instant::now() + Duration::from_secs(3);
        move |_| Instant::now() >= until
    });
    assert_eq!(rec_b.events().len(), before, "B saw a rebalance: {:?}", rec_b.events());
    assert!(balanced(&[&a2, &b]), "still balanced");
}
