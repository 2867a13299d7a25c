//! Crash torture: Kafka `acks=all` producers (idempotent and not), an NSQ publisher, a Kafka
//! group consumer committing and an NSQ channel consumer finishing run while the broker is
//! `kill -9`ed and restarted at random moments (20 times by default). The checker then proves:
//! no acknowledged message is missing; the idempotent producer left no duplicate; committed
//! group offsets never went backwards (nor below a commit the broker acknowledged); every NSQ
//! message published got finished (so whatever a crash left unfinished was delivered again);
//! and after a clean restart no finished NSQ message is delivered.
//!
//! `SLUICE_TORTURE_RESTARTS` (default 20) and `SLUICE_TORTURE_SECS` (default 100, the time the
//! restarts are spread over) make longer runs by hand; `SLUICE_TORTURE_SEED` replays a run's
//! kill moments.

mod common;
mod nsq_common;
mod torture_support;

use common::{watermarks, Rng};
use nsq_common::NsqBroker;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use torture_support::check::{check_acked, not_finished, CommitWatch};
use torture_support::workload::{self, Names, Workload};
use torture_support::{nsq, wait_until};

const KAFKA_TOPIC: &str = "torture-kafka";
const KAFKA_PARTITIONS: i32 = 3;
const NSQ_TOPIC: &str = "torture-nsq";
const NSQ_CHANNEL: &str = "torture";
const GROUP: &str = "torture-group";
const NAMES: Names = Names { kafka_topic: KAFKA_TOPIC, nsq_topic: NSQ_TOPIC, nsq_channel: NSQ_CHANNEL, group: GROUP };
/// Shortest time the broker runs between two kills.
const UPTIME_MIN: Duration = Duration::from_millis(300);
/// Bound on each wait of the final phase (consumers catching up, the broker answering).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on reading one partition back.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn crash_torture() {
    let restarts = env_u64("SLUICE_TORTURE_RESTARTS", 20).max(1);
    let spread = Duration::from_secs(env_u64("SLUICE_TORTURE_SECS", 100));
    let seed = env_u64("SLUICE_TORTURE_SEED", std::process::id() as u64);
    println!("crash torture: {restarts} kill -9 restarts over about {spread:?}, seed {seed}");
    // A short message timeout brings withheld messages back soon after the last restart too.
    let mut nsq = NsqBroker::start(&["--msg-timeout", "5s"]);
    let bootstrap = nsq.broker.bootstrap();
    workload::create_topic(&bootstrap, KAFKA_TOPIC, KAFKA_PARTITIONS);

    let w = Workload::start(&bootstrap, nsq.tcp, NAMES);
    let acked_commits = &w.acked_commits;
    let nsq_seen = &w.nsq_seen;

    let mut rng = Rng::new(seed);
    let mut commits = CommitWatch::new(KAFKA_TOPIC, GROUP, KAFKA_PARTITIONS);
    let uptime_max = (spread / restarts as u32).max(UPTIME_MIN * 2);
    for round in 0..restarts {
        let uptime = UPTIME_MIN + Duration::from_millis(rng.below((uptime_max - UPTIME_MIN).as_millis() as u64));
        std::thread::sleep(uptime);
        let acked_before_kill = acked_commits.lock().expect("acked commits").clone();
        nsq.broker.kill9();
        nsq.restart();
        commits.check(&bootstrap, &acked_before_kill, &format!("after kill -9 #{}", round + 1));
    }

    w.producers.set();
    let idempotent = w.idempotent.join().expect("idempotent producer");
    let plain = w.plain.join().expect("plain producer");
    let published = w.publisher.join().expect("nsq publisher");

    let kafka_log = read_topic(&bootstrap, KAFKA_TOPIC);
    let nsq_log = read_topic(&bootstrap, NSQ_TOPIC);
    let idem_check = check_acked("kafka idempotent", "ki", &idempotent.acked, &kafka_log);
    let plain_check = check_acked("kafka plain", "kp", &plain.acked, &kafka_log);
    let nsq_check = check_acked("nsq", "n", &published.acked, &nsq_log);
    assert_eq!(idem_check.duplicates, 0, "the idempotent producer's messages are duplicated in the log");

    // Every NSQ message in the log gets finished: what a crash left unfinished came again.
    let in_log: BTreeSet<String> = nsq_log.keys().cloned().collect();
    let all_finished = wait_until(SETTLE_TIMEOUT, || {
        not_finished(&nsq_seen.lock().expect("seen"), &in_log).is_empty()
            && torture_support::check::channel_is_empty(nsq.http, NSQ_TOPIC)
    });
    let unfinished = not_finished(&nsq_seen.lock().expect("seen"), &in_log);
    if !all_finished {
        let (_, stats) = nsq_common::http(nsq.http, "GET", &format!("/stats?format=json&topic={NSQ_TOPIC}"), b"");
        let seen = nsq_seen.lock().expect("seen");
        panic!(
            "NSQ messages in the log never delivered and finished, e.g. {unfinished:?}; consumer saw {} distinct, \
             confirmed {}; broker stats: {stats}",
            seen.deliveries.len(),
            seen.confirmed.len()
        );
    }
    let ends: BTreeMap<i32, i64> =
        (0..KAFKA_PARTITIONS).map(|p| (p, watermarks(&bootstrap, KAFKA_TOPIC, p).1)).collect();
    let caught_up = wait_until(SETTLE_TIMEOUT, || {
        let acked = acked_commits.lock().expect("acked commits");
        ends.iter().all(|(p, end)| *end == 0 || acked.get(p) == Some(end))
    });
    assert!(caught_up, "the group consumer did not commit up to the log end: {:?} vs {ends:?}", acked_commits);
    w.consumers.set();
    let group = w.group.join().expect("group consumer");
    w.channel.join().expect("channel consumer");

    // A clean restart: committed offsets intact, and no finished NSQ message comes back.
    let acked_final = acked_commits.lock().expect("acked commits").clone();
    nsq.broker.stop();
    nsq.restart();
    commits.check(&bootstrap, &acked_final, "after the clean restart");
    let late = nsq::deliveries_before_sentinel(nsq.tcp, NSQ_TOPIC, NSQ_CHANNEL, "sentinel").expect("sentinel");
    assert!(
        late.is_empty(),
        "{} finished messages delivered after a clean restart, e.g. {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );

    let seen = nsq_seen.lock().expect("seen");
    let redelivered = seen.deliveries.values().filter(|&&n| n > 1).count();
    println!("crash torture results (seed {seed}):");
    println!("  restarts survived: {restarts} kill -9 + 1 clean");
    for c in [&idem_check, &plain_check, &nsq_check] {
        println!(
            "  {}: acknowledged {}, found {}, duplicates {}, in log {}",
            c.name, c.acked, c.found, c.duplicates, c.in_log
        );
    }
    println!(
        "  send failures (not acknowledged): kafka idempotent {}, kafka plain {}, nsq {}",
        idempotent.failed, plain.failed, published.failed
    );
    println!(
        "  nsq: delivered {} distinct, redelivered {redelivered} (attempts > 1: {}), finished and confirmed {}, \
         FIN in doubt at a crash {}, withheld on first delivery and redelivered {}",
        seen.deliveries.len(),
        seen.redelivered_attempts,
        seen.confirmed.len(),
        seen.in_doubt.difference(&seen.confirmed).count(),
        seen.withheld.len()
    );
    println!(
        "  group: consumed {}, commits acknowledged {}, failed {}, committed offsets checked {} times",
        group.messages, group.commits_acked, group.commits_failed, commits.checks
    );
}

/// Every value in `topic` with how many times it is stored.
fn read_topic(bootstrap: &str, topic: &str) -> HashMap<String, u32> {
    torture_support::check::read_topic(bootstrap, topic, READ_TIMEOUT)
}
