//! Proves kcat's balanced consumer (`kcat -G`, librdkafka) and kafka-python's
//! `KafkaConsumer(group_id=...)` work against Sluice's group coordinator: partitions are
//! shared, a leaving member's partitions move, commits are kept, and seek works in a group.

mod common;
mod group_support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_bounded, run_ok, unique_topic, Broker};
use group_support::{committed, Line, Streaming};

const PYTHON: &str = "/usr/bin/python3";
const PARTITIONS: i32 = 4;
/// Bound on a group settling after members join or leave (librdkafka's join, sync and
/// first fetch on a debug build).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

fn kcat_member(broker: &Broker, group: &str, topic: &str) -> Streaming {
    Streaming::spawn(
        Command::new("kcat")
            .args(["-b", &broker.bootstrap(), "-G", group, topic])
            .args(["-f", "%p %o %s\\n", "-u"])
            .args(["-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000"])
            .args(["-X", "heartbeat.interval.ms=500", "-X", "auto.commit.interval.ms=200"]),
    )
}

fn produce(broker: &Broker, topic: &str, from: usize, n: usize) {
    // Keyed, so the partitioner spreads them over every partition (keyless messages stick
    // to one partition per batch in librdkafka, and a fast producer may fill only one).
    let input: String = (from..from + n).map(|i| format!("key-{i}:msg-{i:06}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, input).unwrap();
    run_ok(
        Command::new("kcat")
            .args(["-P", "-b", &broker.bootstrap(), "-t", topic, "-K:", "-l"])
            .arg(&path)
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
}

/// Parses "% Group g rebalanced (...): assigned: t [0], t [2]" into partition numbers.
fn assigned(line: &Line) -> Option<BTreeSet<i32>> {
    let Line::Err(s) = line else { return None };
    let rest = s.split("assigned:").nth(1)?;
    Some(rest.split('[').skip(1).filter_map(|x| x.split(']').next()?.trim().parse().ok()).collect())
}

/// Reads `%p %o %s` lines from both members until every message in `want` arrived.
fn collect(members: &mut [&mut Streaming], want: &BTreeSet<String>, got: &mut [Vec<String>]) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let all: BTreeSet<&String> = got.iter().flatten().collect();
        if want.iter().all(|w| all.contains(w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every message arrived: {} of {}\n{}",
            all.len(),
            want.len(),
            members.iter().map(|m| m.transcript()).collect::<Vec<_>>().join("\n----\n")
        );
        for (i, m) in members.iter_mut().enumerate() {
            while let Some(line) = m.next_line(Duration::from_millis(20)) {
                if let Line::Out(s) = line {
                    if let Some(value) = s.split(' ').nth(2) {
                        got[i].push(value.to_string());
                    }
                }
            }
        }
    }
}

#[test]
fn kcat_balanced_consumers_share_partitions_and_take_over() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("grp-kcat");
    let group = unique_topic("g-kcat");
    produce(&broker, &topic, 0, 4); // creates the topic

    let mut a = kcat_member(&broker, &group, &topic);
    let mut b = kcat_member(&broker, &group, &topic);
    // Wait until the latest assignments of the two members cover all partitions, disjointly.
    let mut latest: [BTreeSet<i32>; 2] = Default::default();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let covers = |l: &[BTreeSet<i32>; 2]| {
        l[0].len() + l[1].len() == PARTITIONS as usize
            && l[0].union(&l[1]).count() == PARTITIONS as usize
            && !l[0].is_empty()
            && !l[1].is_empty()
    };
    while !covers(&latest) {
        assert!(Instant::now() < deadline, "group never balanced\nA:\n{}\nB:\n{}", a.transcript(), b.transcript());
        for (i, m) in [&mut a, &mut b].into_iter().enumerate() {
            while let Some(line) = m.next_line(Duration::from_millis(50)) {
                if let Some(parts) = assigned(&line) {
                    latest[i] = parts;
                }
            }
        }
    }
    eprintln!("balanced: A {:?}, B {:?}", latest[0], latest[1]);

    let n = 1000;
    produce(&broker, &topic, 100, n);
    let want: BTreeSet<String> = (100..100 + n).map(|i| format!("msg-{i:06}")).collect();
    let mut got = vec![Vec::new(), Vec::new()];
    collect(&mut [&mut a, &mut b], &want, &mut got);
    let fresh = |v: &Vec<String>| v.iter().filter(|s| want.contains(*s)).cloned().collect::<Vec<_>>();
    let (fa, fb) = (fresh(&got[0]), fresh(&got[1]));
    assert!(!fa.is_empty() && !fb.is_empty(), "both members consumed: A {} B {}", fa.len(), fb.len());
    assert_eq!(fa.len() + fb.len(), n, "each message processed once (A {} + B {})", fa.len(), fb.len());

    // A leaves cleanly (SIGTERM: kcat commits and sends LeaveGroup); B takes every partition.
    a.signal("TERM");
    assert!(a.wait_exit(Duration::from_secs(20)), "kcat A did not exit on SIGTERM");
    b.wait_for(SETTLE_TIMEOUT, "B assigned every partition", |l| {
        assigned(l).is_some_and(|p| p.len() == PARTITIONS as usize)
    });
    produce(&broker, &topic, 5000, 200);
    let want2: BTreeSet<String> = (5000..5200).map(|i| format!("msg-{i:06}")).collect();
    let mut got2 = vec![Vec::new()];
    collect(&mut [&mut b], &want2, &mut got2);

    // B's auto commits reach the log end of every partition.
    let ends: Vec<i64> = (0..PARTITIONS).map(|p| common::watermarks(&broker.bootstrap(), &topic, p).1).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = committed(&broker, &group, &topic, PARTITIONS);
        if c == ends {
            break;
        }
        assert!(Instant::now() < deadline, "commits {c:?} never reached log ends {ends:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kafka_python_group_commit_seek_and_resume() {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("grp-kpy");
    let group = unique_topic("g-kpy");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/group_consume.py");
    let out = run_bounded(
        Command::new(PYTHON)
            .arg(script)
            .args(["--bootstrap", &broker.bootstrap(), "--topic", &topic, "--group", &group])
            .args(["-n", "400", "--partitions", &PARTITIONS.to_string(), "--timeout", "90"])
            .stdin(Stdio::null()),
        Duration::from_secs(150),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("kafka-python group summary: {line}");
    let summary: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("no JSON summary ({e}); status {}\nstderr: {}", out.status, common::tail(&out.stderr, 6000))
    });
    assert!(out.status.success() && summary["ok"] == true, "{summary}\n{}", common::tail(&out.stderr, 6000));
    // The broker's own view agrees with the client's: every partition committed at its end.
    let c = committed(&broker, &group, &topic, PARTITIONS);
    let per_partition: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 100)).collect();
    for p in 0..PARTITIONS {
        assert_eq!(c[p as usize], per_partition[&p], "partition {p} committed offset");
    }
}
