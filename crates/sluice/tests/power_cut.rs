//! Power cuts: the broker's data directory is on the power-cut FUSE filesystem
//! (crates/powercut), which keeps every byte and directory change in memory until it is
//! fsynced and drops all the rest at a cut. Kafka `acks=all` producers (librdkafka, idempotent
//! and not), an NSQ publisher, a Kafka group consumer committing and an NSQ channel consumer
//! run while the power is cut and the broker `kill -9`ed at random moments, then restarted on
//! what survived. With `--flush always` the checker proves that nothing acknowledged was lost:
//! every acked Kafka record is at its acked offset, every acked NSQ message is delivered, and
//! committed offsets never fall behind an acknowledged commit. With `--flush os` the same run
//! must lose acknowledged messages, proving the test can fail.
//!
//! `SLUICE_POWER_CUTS` (default 3) sets the cuts per run; `SLUICE_POWER_CUT_SEED` replays a
//! run's cut moments.

mod common;
mod nsq_common;
mod powercut_support;
mod torture_support;

use common::Rng;
use powercut_support::PowerCutBroker;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::sync::Mutex;
use std::time::Duration;
use torture_support::check::{self, CommitRegression, CommitWatch};
use torture_support::workload::{self, Names, Workload};
use torture_support::{kafka, nsq, wait_until};

const KAFKA_TOPIC: &str = "powercut-kafka";
const KAFKA_PARTITIONS: i32 = 3;
const NSQ_TOPIC: &str = "powercut-nsq";
const NSQ_CHANNEL: &str = "powercut";
const GROUP: &str = "powercut-group";
const NAMES: Names = Names { kafka_topic: KAFKA_TOPIC, nsq_topic: NSQ_TOPIC, nsq_channel: NSQ_CHANNEL, group: GROUP };
/// The broker runs between `UPTIME_MIN` and `UPTIME_MAX` before each cut.
const UPTIME_MIN: Duration = Duration::from_millis(1500);
const UPTIME_MAX: Duration = Duration::from_millis(4000);
/// Bound on each wait of the final phase.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on reading one partition back.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on one marker send.
const MARKER_TIMEOUT: Duration = Duration::from_secs(20);
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Serialises the two runs: each drives a broker under load on a 2-core machine.
static ONE_RUN: Mutex<()> = Mutex::new(());

#[test]
fn power_cuts_lose_nothing_acknowledged_with_flush_always() {
    // With fsync before every acknowledgement, no power cut loses anything acknowledged.
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let out = run("always");
    out.print("--flush always");
    out.assert_nothing_lost();
}

#[test]
fn power_cuts_lose_acknowledged_messages_with_flush_os() {
    // Without fsync the same workload loses acknowledged messages: the test can fail.
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let out = run("os");
    out.print("--flush os");
    let lost = out.kafka_lost() + out.nsq_lost.len();
    assert!(
        lost > 0,
        "--flush os lost no acknowledged message over {} power cuts: the power-cut test cannot tell \
         fsync from no fsync",
        out.cuts
    );
}

/// What one run found.
struct Outcome {
    seed: u64,
    cuts: u64,
    fsyncs: u64,
    files_reverted: u64,
    dirs_reverted: u64,
    /// Per Kafka source (idempotent, plain, markers): name, acked, missing, misplaced.
    kafka: Vec<KafkaCheck>,
    nsq_acked: usize,
    nsq_lost: Vec<u64>,
    nsq_undelivered: Vec<String>,
    commit_regressions: Vec<CommitRegression>,
    commits_acked: u64,
}

struct KafkaCheck {
    name: &'static str,
    acked: usize,
    missing: Vec<u64>,
    misplaced: Vec<(u64, (i32, i64))>,
}

impl Outcome {
    fn kafka_lost(&self) -> usize {
        self.kafka.iter().map(|k| k.missing.len() + k.misplaced.len()).sum()
    }

    fn print(&self, mode: &str) {
        println!("power cut results {mode} (seed {}):", self.seed);
        println!(
            "  cuts {}; fsyncs served {}; at the cuts {} files and {} directories reverted to their durable state",
            self.cuts, self.fsyncs, self.files_reverted, self.dirs_reverted
        );
        for k in &self.kafka {
            println!(
                "  kafka {}: acknowledged {}, missing {}, not at the acknowledged offset {}",
                k.name,
                k.acked,
                k.missing.len(),
                k.misplaced.len()
            );
        }
        println!(
            "  nsq: acknowledged {}, missing from the log {}, never delivered {}",
            self.nsq_acked,
            self.nsq_lost.len(),
            self.nsq_undelivered.len()
        );
        println!(
            "  group: commits acknowledged {}, committed offsets behind a promise {}",
            self.commits_acked,
            self.commit_regressions.len()
        );
        for r in &self.commit_regressions {
            println!("    {r:?}");
        }
    }

    fn assert_nothing_lost(&self) {
        for k in &self.kafka {
            assert!(k.acked > 0, "kafka {}: nothing acknowledged in the whole run", k.name);
            assert!(
                k.missing.is_empty(),
                "kafka {}: {} acknowledged records missing after power cuts, e.g. ids {:?}",
                k.name,
                k.missing.len(),
                &k.missing[..k.missing.len().min(10)]
            );
            assert!(
                k.misplaced.is_empty(),
                "kafka {}: {} acknowledged records not at their acknowledged (partition, offset), e.g. {:?}",
                k.name,
                k.misplaced.len(),
                &k.misplaced[..k.misplaced.len().min(10)]
            );
        }
        assert!(self.nsq_acked > 0, "nsq: nothing acknowledged in the whole run");
        assert!(
            self.nsq_lost.is_empty(),
            "nsq: {} acknowledged messages missing from the log after power cuts, e.g. ids {:?}",
            self.nsq_lost.len(),
            &self.nsq_lost[..self.nsq_lost.len().min(10)]
        );
        assert!(
            self.nsq_undelivered.is_empty(),
            "nsq: acknowledged messages never delivered after power cuts, e.g. {:?}",
            self.nsq_undelivered
        );
        assert!(self.commits_acked > 0, "group: no commit acknowledged in the whole run");
        assert!(
            self.commit_regressions.is_empty(),
            "group: committed offsets went behind what was acknowledged: {:?}",
            self.commit_regressions
        );
    }
}

fn run(flush: &str) -> Outcome {
    let cuts = env_u64("SLUICE_POWER_CUTS", 3).max(1);
    let seed = env_u64("SLUICE_POWER_CUT_SEED", std::process::id() as u64 ^ flush.len() as u64);
    println!("power cuts --flush {flush}: {cuts} cuts, seed {seed}");
    let mut b = PowerCutBroker::start(&["--flush", flush, "--msg-timeout", "5s"]);
    let bootstrap = b.bootstrap();
    workload::create_topic(&bootstrap, KAFKA_TOPIC, KAFKA_PARTITIONS);
    create_nsq_topic(b.http);

    let w = Workload::start(&bootstrap, b.nsq_tcp, NAMES);
    let acked_commits = &w.acked_commits;
    let nsq_seen = &w.nsq_seen;

    let rt = common::runtime();
    let marker_producer = common::acks_all_producer(&bootstrap, &[("message.timeout.ms", "20000")]);
    let mut markers = kafka::Produced::default();
    let mut rng = Rng::new(seed);
    let mut commits = CommitWatch::new(KAFKA_TOPIC, GROUP, KAFKA_PARTITIONS);
    let mut regressions = Vec::new();
    let (mut files_reverted, mut dirs_reverted) = (0, 0);
    for round in 0..cuts {
        let uptime = UPTIME_MIN + Duration::from_millis(rng.below((UPTIME_MAX - UPTIME_MIN).as_millis() as u64));
        std::thread::sleep(uptime);
        // One record acknowledged just before the cut: with --flush os it cannot have been
        // fsynced yet, so that run always has acknowledged data at risk.
        send_marker(&rt, &marker_producer, round, &mut markers);
        let report = b.power_cut();
        files_reverted += report.files_reverted;
        dirs_reverted += report.dirs_reverted;
        // Every commit acknowledged by now was acknowledged before the broker died.
        let acked_before_cut = acked_commits.lock().expect("acked commits").clone();
        regressions.extend(commits.regressions(
            &bootstrap,
            &acked_before_cut,
            &format!("after power cut #{}", round + 1),
        ));
    }

    w.producers.set();
    let idempotent = w.idempotent.join().expect("idempotent producer");
    let plain = w.plain.join().expect("plain producer");
    let published = w.publisher.join().expect("nsq publisher");

    // With --flush os a partition may have lost everything, its start included.
    let lossy = flush != "always";
    let kafka_log = check::read_topic_at(&bootstrap, KAFKA_TOPIC, READ_TIMEOUT, lossy);
    let nsq_log = check::read_topic_at(&bootstrap, NSQ_TOPIC, READ_TIMEOUT, lossy);
    let kafka = [("idempotent", "ki", &idempotent), ("plain", "kp", &plain), ("markers", "m", &markers)]
        .into_iter()
        .map(|(name, tag, p)| {
            let missing = check::missing_acked(tag, &p.acked, &kafka_log);
            let misplaced = check::misplaced_acked(tag, &p.at, &kafka_log)
                .into_iter()
                .filter(|(id, _)| !missing.contains(id))
                .collect();
            KafkaCheck { name, acked: p.acked.len(), missing, misplaced }
        })
        .collect();
    let nsq_lost = check::missing_acked("n", &published.acked, &nsq_log);

    // Every acknowledged NSQ message still in the log is delivered to the channel.
    let undelivered = |seen: &nsq::Consumed| -> Vec<String> {
        published
            .acked
            .iter()
            .map(|id| kafka::value("n", *id))
            .filter(|v| nsq_log.contains_key(v) && !seen.deliveries.contains_key(v))
            .take(10)
            .collect()
    };
    if !lossy {
        wait_until(SETTLE_TIMEOUT, || undelivered(&nsq_seen.lock().expect("seen")).is_empty());
    }
    let nsq_undelivered = if lossy { Vec::new() } else { undelivered(&nsq_seen.lock().expect("seen")) };
    w.consumers.set();
    let group = w.group.join().expect("group consumer");
    w.channel.join().expect("channel consumer");

    Outcome {
        seed,
        cuts: b.cuts,
        fsyncs: b.fsyncs(),
        files_reverted,
        dirs_reverted,
        kafka,
        nsq_acked: published.acked.len(),
        nsq_lost,
        nsq_undelivered,
        commit_regressions: regressions,
        commits_acked: group.commits_acked,
    }
}

fn send_marker(rt: &tokio::runtime::Runtime, producer: &FutureProducer, round: u64, out: &mut kafka::Produced) {
    let value = kafka::value("m", round);
    let partition = (round % KAFKA_PARTITIONS as u64) as i32;
    let record = FutureRecord::to(KAFKA_TOPIC).partition(partition).key("marker").payload(&value);
    match rt.block_on(producer.send(record, rdkafka::util::Timeout::After(MARKER_TIMEOUT))) {
        Ok(delivery) => {
            out.acked.insert(round);
            out.at.insert(round, (delivery.partition, delivery.offset));
        }
        Err(_) => out.failed += 1,
    }
}

/// Creates the NSQ topic and channel up front, so they exist before the first cut.
fn create_nsq_topic(http: u16) {
    for path in
        [format!("/topic/create?topic={NSQ_TOPIC}"), format!("/channel/create?topic={NSQ_TOPIC}&channel={NSQ_CHANNEL}")]
    {
        let (status, body) = nsq_common::http(http, "POST", &path, b"");
        assert_eq!(status, 200, "POST {path}: {body}");
    }
}
