//! Proves sarama (the Go client) works unchanged with its sync and async producers (acks=all, random partitioner, 3 partitions) and partition consumers at OffsetNewest, on both the default Kafka 0.8.2 protocol (legacy message sets) and Kafka 2.1.0.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{run_bounded, unique_topic, Broker};

/// Bound for one program run (each of its phases is bounded at 60 s inside).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(240);

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Builds the Go programs once per test run; returns the directory of binaries.
fn programs() -> &'static Path {
    BIN_DIR.get_or_init(|| common::go::build_programs("sarama", "sluicetest", &["./syncproducer", "./asyncproducer"]))
}

fn run_program(program: &str, version: Option<&str>, n: usize) {
    let bin = programs().join(program);
    let broker = Broker::start(&["--default-partitions", "3"]);
    let topic = unique_topic(&format!("sarama-{program}-{}", version.unwrap_or("default").replace('.', "_")));
    let mut cmd = Command::new(&bin);
    cmd.args(["-brokers", &broker.bootstrap(), "-topic", &topic])
        .args(["-n", &n.to_string(), "-partitions", "3", "-timeout", "60s"])
        .stdin(Stdio::null());
    if let Some(v) = version {
        cmd.args(["-version", v]);
    }
    let out = run_bounded(&mut cmd, PROGRAM_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("sarama {program} ({}) summary: {line}", version.unwrap_or("default 0.8.2"));
    let summary: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{program} printed no JSON summary ({e}); status {}\nstdout: {stdout}\nstderr: {}",
            out.status,
            common::tail(&out.stderr, 4000)
        )
    });
    assert!(
        out.status.success() && summary["ok"] == true,
        "sarama {program} (version {version:?}) failed with {}: {summary}",
        out.status
    );
    assert_eq!(summary["produced"], n, "{summary}");
    assert_eq!(summary["consumed"], n, "{summary}");
    let per_partition = summary["per_partition"].as_object().expect("per_partition");
    assert_eq!(per_partition.len(), 3, "all three partitions used: {summary}");
}

#[test]
fn sync_producer_default_protocol() {
    run_program("syncproducer", None, 300);
}

#[test]
fn sync_producer_v2_1_0() {
    run_program("syncproducer", Some("2.1.0"), 300);
}

#[test]
fn async_producer_default_protocol() {
    run_program("asyncproducer", None, 1000);
}

#[test]
fn async_producer_v2_1_0() {
    run_program("asyncproducer", Some("2.1.0"), 1000);
}
