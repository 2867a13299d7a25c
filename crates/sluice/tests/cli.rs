//! Proves the command line contract: --version/--help, rejection of unknown flags, config precedence (flag > env > toml > default), the `serve` form, flush and log-format options, and clean exit 0 on SIGTERM/SIGINT.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    acks_all_producer, clear_sluice_env, partition_count, produce_one, run_bounded, runtime, unique_topic, Broker,
    BrokerOpts, SLUICE_BIN,
};

/// Bound for one-shot invocations like --version.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

fn sluice(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args).stdin(Stdio::null());
    clear_sluice_env(&mut cmd);
    run_bounded(&mut cmd, CLI_TIMEOUT)
}

#[test]
fn version_prints_name_and_version() {
    let out = sluice(&["--version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--version exited {}", out.status);
    assert!(stdout.to_lowercase().contains("sluice"), "--version output lacks the name: {stdout:?}");
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version output lacks {}: {stdout:?}",
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn help_lists_the_contract_flags() {
    let out = sluice(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--help exited {}", out.status);
    assert!(stdout.to_lowercase().contains("sluice"), "{stdout}");
    for flag in [
        "--data-dir",
        "--kafka-addr",
        "--advertised-host",
        "--auto-create-topics",
        "--default-partitions",
        "--flush",
        "--config",
        "--message-max-bytes",
        "--segment-bytes",
        "--log-format",
    ] {
        assert!(stdout.contains(flag), "--help does not mention {flag}:\n{stdout}");
    }
}

#[test]
fn unknown_flag_is_an_error() {
    let out = sluice(&["--no-such-flag-xyz"]);
    assert!(!out.status.success(), "an unknown flag must fail, exited {}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-flag-xyz"), "error does not name the bad flag: {stderr}");
}

/// Starts a broker with the given config layers, auto-creates a topic by producing to it and
/// returns its partition count.
fn partitions_with(toml: Option<&str>, env: Option<&str>, flag: Option<&str>) -> usize {
    let config_dir = tempfile::tempdir().unwrap();
    let mut opts = BrokerOpts::default();
    if let Some(n) = toml {
        let path = config_dir.path().join("sluice.toml");
        std::fs::write(&path, format!("default_partitions = {n}\n")).unwrap();
        opts.args.push("--config".into());
        opts.args.push(path.display().to_string());
    }
    if let Some(n) = env {
        opts.env.push(("SLUICE_DEFAULT_PARTITIONS".into(), n.to_string()));
    }
    if let Some(n) = flag {
        opts.args.push("--default-partitions".into());
        opts.args.push(n.to_string());
    }
    let broker = Broker::start_with(opts);
    let topic = unique_topic("cli-parts");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"v"), (0, 0), "auto-created topic accepts a message");
    partition_count(&broker.bootstrap(), &topic).expect("auto-created topic in metadata")
}

#[test]
fn flag_beats_env_and_toml() {
    assert_eq!(partitions_with(Some("2"), Some("3"), Some("4")), 4);
}

#[test]
fn env_beats_toml() {
    assert_eq!(partitions_with(Some("2"), Some("3"), None), 3);
}

#[test]
fn toml_beats_default() {
    assert_eq!(partitions_with(Some("2"), None, None), 2);
}

#[test]
fn default_is_one_partition() {
    assert_eq!(partitions_with(None, None, None), 1);
}

#[test]
fn toml_sets_other_keys_too() {
    // data_dir from the toml file is overridden by the harness flag, but message_max_bytes
    // from the file must apply: a 3,000-byte message is refused with a 2,000-byte limit.
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("sluice.toml");
    // max_msg_size must leave room for one NSQ message's batch inside message_max_bytes.
    let toml = "message_max_bytes = 2000\nmax_msg_size = 1000\nauto_create_topics = true\nflush = \"always\"\n";
    std::fs::write(&path, toml).unwrap();
    let broker = Broker::start(&["--config", path.to_str().unwrap()]);
    let topic = unique_topic("cli-toml");
    let rt = runtime();
    let producer =
        acks_all_producer(&broker.bootstrap(), &[("message.max.bytes", "1000000"), ("message.send.max.retries", "0")]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"small"), (0, 0));
    let big = vec![b'x'; 3000];
    let res = rt.block_on(producer.send(
        rdkafka::producer::FutureRecord::<(), _>::to(&topic).partition(0).payload(&big),
        rdkafka::util::Timeout::After(Duration::from_secs(20)),
    ));
    assert!(res.is_err(), "message_max_bytes = 2000 from the toml file did not apply: {res:?}");
}

#[test]
fn auto_create_can_be_disabled() {
    let broker = Broker::start(&["--auto-create-topics", "false"]);
    let topic = unique_topic("cli-noauto");
    let rt = runtime();
    let producer =
        acks_all_producer(&broker.bootstrap(), &[("message.timeout.ms", "3000"), ("message.send.max.retries", "0")]);
    let res = rt.block_on(producer.send(
        rdkafka::producer::FutureRecord::<(), _>::to(&topic).partition(0).payload("x"),
        rdkafka::util::Timeout::After(Duration::from_secs(10)),
    ));
    assert!(res.is_err(), "produce to a missing topic succeeded with --auto-create-topics false: {res:?}");
    assert_eq!(partition_count(&broker.bootstrap(), &topic), None, "topic was created although auto-create is off");
}

#[test]
fn sigterm_exits_zero_promptly_with_open_connections() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("cli-term");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"v"), (0, 0));
    // An idle raw connection and a live client connection must not hold up shutdown.
    let _idle = std::net::TcpStream::connect(broker.addr()).unwrap();
    let took = broker.stop();
    eprintln!("SIGTERM -> exit 0 in {took:?}");
    drop(producer);
}

#[test]
fn sigint_exits_zero() {
    let mut broker = Broker::start(&[]);
    let took = broker.stop_with_signal("INT");
    eprintln!("SIGINT -> exit 0 in {took:?}");
}

#[test]
fn serve_subcommand_form_works() {
    let mut broker = Broker::start_with(BrokerOpts { prefix: vec!["serve".into()], ..BrokerOpts::default() });
    let topic = unique_topic("cli-serve");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"v"), (0, 0));
    drop(producer);
    broker.stop();
}

#[test]
fn every_flush_policy_serves_and_restarts() {
    for policy in ["always", "interval:50", "os"] {
        let mut broker = Broker::start(&["--flush", policy]);
        let topic = unique_topic("cli-flush");
        let rt = runtime();
        let producer = acks_all_producer(&broker.bootstrap(), &[]);
        for i in 0..20i64 {
            let v = format!("{policy}-{i}");
            assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", v.as_bytes()), (0, i), "flush {policy}");
        }
        drop(producer);
        broker.restart();
        let recs = common::consume_exact(
            &broker.bootstrap(),
            &topic,
            0,
            rdkafka::Offset::Beginning,
            20,
            Duration::from_secs(30),
        );
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.value.as_deref(), Some(format!("{policy}-{i}").as_bytes()), "flush {policy} after restart");
        }
        broker.stop();
    }
}

#[test]
fn log_format_json_writes_json_lines() {
    let mut broker = Broker::start(&["--log-format", "json"]);
    let topic = unique_topic("cli-json");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"v"), (0, 0));
    drop(producer);
    broker.stop();
    let log = broker.log_contents();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "broker wrote no log lines with --log-format json");
    for line in lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
            "not a JSON object log line: {line:?}"
        );
    }
}

#[test]
fn advertised_host_is_what_metadata_reports() {
    let broker = Broker::start(&["--advertised-host", "localhost"]);
    let consumer = common::plain_consumer(&broker.bootstrap(), &[]);
    let md = rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, common::CLIENT_TIMEOUT)
        .expect("metadata with --advertised-host localhost");
    let brokers: Vec<(String, i32)> = md.brokers().iter().map(|b| (b.host().to_string(), b.port())).collect();
    assert_eq!(brokers, vec![("localhost".to_string(), i32::from(broker.port()))]);
}
