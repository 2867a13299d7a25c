//! Proves sarama 1.22's ConsumerGroup (Debian's package, config.Version V0_10_2_0) works
//! unchanged: three members share a 6-partition topic and process 600 keyed messages once,
//! a closing member's partitions move within the session timeout, commits made on close
//! equal the log ends, and a new member resumes exactly after them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run_bounded, unique_topic, Broker};

/// Bound for one program run (each of its phases is bounded at 60 s inside).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds the Go program in GOPATH mode; returns the binary.
fn program() -> PathBuf {
    common::go::build_programs("sarama_group", "sluicegrouptest", &["./groupconsumer"]).join("groupconsumer")
}

#[test]
fn consumer_group_shares_takes_over_commits_and_resumes() {
    let bin = program();
    let broker = Broker::start(&[]);
    let topic = unique_topic("sarama-group");
    let group = unique_topic("sarama-g");
    let out = run_bounded(
        Command::new(&bin)
            .args(["-brokers", &broker.bootstrap(), "-topic", &topic, "-group", &group])
            .args(["-partitions", "6", "-n", "600", "-timeout", "60s"])
            .stdin(Stdio::null()),
        PROGRAM_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("sarama group summary: {line}");
    let summary: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("no JSON summary ({e}); status {}\nstderr: {}", out.status, common::tail(&out.stderr, 6000))
    });
    assert!(
        out.status.success() && summary["ok"] == true,
        "sarama consumer group failed ({}): {summary}\nstderr: {}",
        out.status,
        common::tail(&out.stderr, 6000)
    );
    assert_eq!(summary["processed"], 600, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["committed_at_end"], true, "{summary}");
    assert_eq!(summary["resumed_count"], 30, "{summary}");
}
