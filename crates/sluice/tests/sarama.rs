//! Proves sarama (the Go client) works unchanged with its sync and async producers (acks=all, random partitioner, 3 partitions) and partition consumers at OffsetNewest, on both the default Kafka 0.8.2 protocol (legacy message sets) and Kafka 2.1.0.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{run_bounded, run_ok, unique_topic, Broker};

/// Bound for compiling the Go programs (first build compiles sarama and its cgo zstd binding).
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound for one program run (each of its phases is bounded at 60 s inside).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(240);
/// Debian's GOPATH holding sarama and its dependencies.
const SYSTEM_GOPATH: &str = "/usr/share/gocode";

static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Builds the Go programs once per test run in GOPATH mode; returns the directory of binaries.
fn programs() -> &'static Path {
    BIN_DIR.get_or_init(|| {
        let sources = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/sarama");
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sarama");
        let gopath = root.join("gopath");
        let src = gopath.join("src/sluicetest");
        let bin = root.join("bin");
        let _ = std::fs::remove_dir_all(&src);
        copy_dir(&sources, &src);
        std::fs::create_dir_all(&bin).unwrap();
        run_ok(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&bin)
                .args(["./syncproducer", "./asyncproducer"])
                .current_dir(&src)
                .env("GO111MODULE", "off")
                .env("GOFLAGS", "")
                .env("GOPATH", format!("{}:{SYSTEM_GOPATH}", gopath.display()))
                .env("GOCACHE", root.join("gocache"))
                .stdin(Stdio::null()),
            GO_BUILD_TIMEOUT,
        );
        bin
    })
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
