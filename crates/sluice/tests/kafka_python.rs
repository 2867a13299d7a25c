//! Proves kafka-python (the pure-Python client, Debian's python3-kafka) produces with acks='all' and reads back 1,000 messages without a group, byte-exact, uncompressed and gzip.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run_bounded, unique_topic, Broker};

/// Debian's interpreter: the one python3-kafka is installed for (a pyenv `python3` may not have it).
const PYTHON: &str = "/usr/bin/python3";
/// Bound for the whole script (two phases of at most 60 s each, plus start-up).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/produce_consume.py")
}

fn run(compression: Option<&str>) {
    let broker = Broker::start(&[]);
    let topic = unique_topic(&format!("kpy-{}", compression.unwrap_or("none")));
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script())
        .args(["--bootstrap", &broker.bootstrap(), "--topic", &topic])
        .args(["-n", "1000", "--timeout", "60"])
        .stdin(Stdio::null());
    if let Some(c) = compression {
        cmd.args(["--compression", c]);
    }
    let out = run_bounded(&mut cmd, SCRIPT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = common::tail(&out.stderr, 6000);
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("kafka-python summary: {line}");
    let summary: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("script printed no JSON summary ({e}); status {}\nstdout: {stdout}\nstderr: {stderr}", out.status)
    });
    assert!(
        out.status.success() && summary["ok"] == true,
        "kafka-python round trip failed (status {}): {summary}\nstderr: {stderr}",
        out.status
    );
    assert_eq!(summary["consumed"], 1000, "{summary}");
    assert_eq!(summary["end_offset"], 1000, "{summary}");
}

#[test]
fn produce_consume_uncompressed() {
    run(None);
}

#[test]
fn produce_consume_gzip() {
    run(Some("gzip"));
}
