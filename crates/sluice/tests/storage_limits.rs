//! Many partitions under a low open-file limit: topic creation all or nothing, a start that
//! skips (and reports) a damaged topic, and 10,000 partitions served under 4,096 descriptors.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    acks_all_producer, clear_sluice_env, consume_exact, partition_count, produce_one, run_bounded, runtime, Broker,
    BrokerOpts, SLUICE_BIN,
};
use rdkafka::Offset;

/// Bound on one CLI call: creating 10,000 partitions takes tens of seconds in a debug build.
const CLI_TIMEOUT: Duration = Duration::from_secs(300);
const CONSUME_TIMEOUT: Duration = Duration::from_secs(30);

fn start_limited(open_files_max: u64) -> Broker {
    Broker::start_with(BrokerOpts { open_files_max: Some(open_files_max), ..BrokerOpts::default() })
}

/// `sluice topic create` against the broker's admin API; returns (success, stderr).
fn create_topic(broker: &Broker, name: &str, partitions: u32) -> (bool, String) {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(["topic", "create", name, "--partitions", &partitions.to_string(), "--json", "--http"])
        .arg(broker.http_addr());
    clear_sluice_env(&mut cmd);
    let out = run_bounded(&mut cmd, CLI_TIMEOUT);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Produces one record to each of `partitions` and reads each back.
fn round_trip(broker: &Broker, topic: &str, partitions: &[i32], tag: &str) {
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for &p in partitions {
        let (_, offset) = produce_one(&rt, &producer, topic, p, b"k", format!("{tag}-{p}").as_bytes());
        let got = consume_exact(&broker.bootstrap(), topic, p, Offset::Offset(offset), 1, CONSUME_TIMEOUT);
        assert_eq!(got[0].value.as_deref(), Some(format!("{tag}-{p}").as_bytes()), "partition {p}");
    }
}

fn topic_dirs(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("topics"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// 1,000 partitions are created under a limit of 1,024 descriptors, and the broker restarts
/// and serves them (before the file cache this failed with "Too many open files").
#[test]
fn thousand_partitions_under_1024_descriptors() {
    let mut broker = start_limited(1024);
    let (ok, stderr) = create_topic(&broker, "many", 1000);
    assert!(ok, "create failed: {stderr}");
    round_trip(&broker, "many", &[0, 499, 999], "before");
    broker.restart();
    assert_eq!(partition_count(&broker.bootstrap(), "many"), Some(1000));
    round_trip(&broker, "many", &[1, 500, 998], "after");
    assert!(broker.log_contents().contains("open-file limit"), "the limit is logged");
}

/// A creation that fails (the rename into `topics/` is refused: the directory is made
/// immutable) leaves no topic and no directory; the broker restarts and serves its other
/// topics, and the same name can be created afterwards.
#[test]
fn failed_creation_leaves_nothing_behind() {
    let mut broker = start_limited(1024);
    assert!(create_topic(&broker, "kept", 2).0);
    round_trip(&broker, "kept", &[0, 1], "one");
    let topics = broker.data_dir().join("topics");
    let immutable = |on: bool| {
        let flag = if on { "+i" } else { "-i" };
        let status = Command::new("chattr").arg(flag).arg(&topics).status().expect("run chattr");
        assert!(status.success(), "chattr {flag} failed: this test needs a file system with the immutable flag");
    };
    immutable(true);
    let (ok, _) = create_topic(&broker, "doomed", 50);
    immutable(false);
    assert!(!ok, "creation into an immutable directory must fail");
    assert_eq!(topic_dirs(&broker.data_dir()), vec!["kept".to_string()]);
    let staging = broker.data_dir().join("staging");
    let leftovers = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "the staging directory is cleaned up");
    broker.restart();
    round_trip(&broker, "kept", &[0, 1], "two");
    assert_eq!(partition_count(&broker.bootstrap(), "doomed"), None);
    assert!(create_topic(&broker, "doomed", 3).0, "the name is free again");
    round_trip(&broker, "doomed", &[2], "three");
}

/// A topic whose metadata is unreadable, and one whose partition directory is damaged, are
/// reported by name at start and skipped; the broker serves the others.
#[test]
fn damaged_topics_are_reported_and_skipped_at_start() {
    let mut broker = start_limited(1024);
    for name in ["good", "garbled", "halfmade"] {
        assert!(create_topic(&broker, name, 2).0);
    }
    round_trip(&broker, "good", &[0, 1], "before");
    broker.stop();
    let topics = broker.data_dir().join("topics");
    std::fs::write(topics.join("garbled/topic.json"), b"{ not json").expect("garble topic.json");
    let partition = topics.join("halfmade/1");
    std::fs::remove_dir_all(&partition).expect("remove partition");
    std::fs::write(&partition, b"a file where a partition directory belongs").expect("plant file");
    let from = broker.log_len();
    broker.restart();
    // The listener accepts (its backlog) before the broker has opened its topics, so the
    // reports may land in the log just after the broker looks ready.
    let reported =
        |log: &str, name: &str| log.lines().any(|l| l.contains("topic cannot be opened") && l.contains(name));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut log = broker.log_since(from);
    while !["garbled", "halfmade"].iter().all(|name| reported(&log, name)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = broker.log_since(from);
    }
    for name in ["garbled", "halfmade"] {
        assert!(reported(&log, name), "no report of {name} in:\n{log}");
    }
    round_trip(&broker, "good", &[0, 1], "after");
    assert_eq!(partition_count(&broker.bootstrap(), "garbled"), None);
}

/// 10,000 partitions (the documented maximum) work under 4,096 descriptors: created,
/// produced to and fetched from across the range, and again after a restart.
#[test]
fn ten_thousand_partitions_under_4096_descriptors() {
    let mut broker = start_limited(4096);
    let (ok, stderr) = create_topic(&broker, "huge", 10_000);
    assert!(ok, "create failed: {stderr}");
    let spread: Vec<i32> = (0..10_000).step_by(1111).chain([9_999]).collect();
    round_trip(&broker, "huge", &spread, "before");
    broker.restart();
    assert_eq!(partition_count(&broker.bootstrap(), "huge"), Some(10_000));
    let shifted: Vec<i32> = spread.iter().map(|p| (p + 7) % 10_000).collect();
    round_trip(&broker, "huge", &shifted, "after");
}
