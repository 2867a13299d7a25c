//! Proves the operator command line against a running broker: every subcommand's table and
//! `--json` output, one-line errors with exit 1 (unreachable broker, unknown topic) and exit 2
//! for usage errors, a produce → consume round trip with keys and headers, group commits and
//! lag, NSQ channel pause/unpause, a bounded bench, and shell completions.

mod common;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{clear_sluice_env, free_port, run_bounded, unique_topic, Broker, SLUICE_BIN};

/// Bound on one CLI invocation (debug build on a busy 2-core machine).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the HTTP listener may take to answer after the Kafka port accepts.
const HTTP_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `sluice <args>` with no inherited SLUICE_* variables and optional stdin bytes.
fn sluice_with_input(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args);
    match stdin {
        Some(path) => cmd.stdin(std::fs::File::open(path).expect("open stdin file")),
        None => cmd.stdin(Stdio::null()),
    };
    clear_sluice_env(&mut cmd);
    run_bounded(&mut cmd, CLI_TIMEOUT)
}

fn sluice(args: &[&str]) -> Output {
    sluice_with_input(args, None)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and asserts exit 0, returning stdout.
fn ok(args: &[&str]) -> String {
    ok_with_input(args, None)
}

fn ok_with_input(args: &[&str], stdin: Option<&Path>) -> String {
    let out = sluice_with_input(args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?} exited {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs with `--json` appended and parses stdout as one JSON document.
fn ok_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(&all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("sluice {all:?} printed invalid JSON ({e}): {text}"))
}

/// Asserts exit status 1 and exactly one stderr line `sluice: …`; returns that line.
fn fails_with_one_line(args: &[&str]) -> String {
    let out = sluice(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sluice {args:?} should exit 1\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line from sluice {args:?}, got: {err:?}");
    assert!(lines[0].starts_with("sluice: "), "error line lacks the `sluice: ` prefix: {err:?}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "stack trace: {err}");
    lines[0].to_string()
}

/// Waits until the admin API answers (the harness only waits for the Kafka port).
fn wait_for_admin_api(broker: &Broker) {
    let deadline = Instant::now() + HTTP_READY_TIMEOUT;
    loop {
        let out = sluice(&["topic", "list", "--http", &broker.http_addr(), "--json"]);
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "admin API at {} never answered: {}", broker.http_addr(), stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_broker() -> Broker {
    let broker = Broker::start(&[]);
    wait_for_admin_api(&broker);
    broker
}

/// Parses one JSON object per line.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}"))).collect()
}

fn find<'a>(list: &'a Value, field: &str, wanted: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v.get(field).and_then(Value::as_str) == Some(wanted))
}

#[test]
fn unreachable_broker_is_one_line_and_exit_1() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let line = fails_with_one_line(&["topic", "list", "--http", &addr]);
    assert_eq!(line, format!("sluice: cannot reach broker at {addr}: connection refused"));
    let line = fails_with_one_line(&["consume", "t", "--bootstrap", &addr]);
    assert_eq!(line, format!("sluice: cannot reach broker at {addr}: connection refused"));
    fails_with_one_line(&["channel", "list", "--http", &addr]);
    fails_with_one_line(&["group", "list", "--http", &addr]);
}

// A usage error is one line `sluice: … (see --help)` with exit status 2, as the README says.
#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["topic"], "sluice topic <COMMAND>"),
        (&["consume"], "<TOPIC>"),
        (&["topic", "list", "--no-such-flag"], "--no-such-flag"),
        (&["consume", "t", "--from"], "--from"),
        (&["--no-such-flag-xyz"], "--no-such-flag-xyz"),
        (&["serve", "--message-max-bytes", "lots"], "lots"),
    ];
    for (args, named) in cases {
        let out = sluice(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "sluice {args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "sluice {args:?}: one line expected, got {err:?}");
        assert!(lines[0].starts_with("sluice: ") && lines[0].ends_with("(see --help)"), "sluice {args:?}: {err:?}");
        assert!(lines[0].contains(named), "sluice {args:?}: the line must name {named}: {err:?}");
    }
    // Bad values the command itself checks are plain errors (exit 1), still one line.
    fails_with_one_line(&["consume", "t", "--from", "middle", "--bootstrap", "127.0.0.1:1"]);
}

// `consume --from offset:N` past the log end says so (one line, exit 1) instead of printing
// nothing; offset:N at the end itself is an empty read, and one inside the log reads from N.
#[test]
fn consume_from_offset_past_the_end_is_an_error() {
    let broker = start_broker();
    let (http, bootstrap) = (broker.http_addr(), broker.bootstrap());
    let topic = unique_topic("cli-past-end");
    ok(&["topic", "create", &topic, "--partitions", "1", "--http", &http]);
    let input = broker.temp_dir().join("three.txt");
    std::fs::write(&input, "a\nb\nc\n").expect("write input");
    ok(&["produce", &topic, "--file", input.to_str().unwrap_or_default(), "--bootstrap", &bootstrap]);
    let line = fails_with_one_line(&["consume", &topic, "--from", "offset:7", "--bootstrap", &bootstrap]);
    assert_eq!(line, format!("sluice: offset 7 is past the end of {topic}/0 (log end 3)"));
    assert_eq!(ok(&["consume", &topic, "--from", "offset:3", "--bootstrap", &bootstrap]), "");
    assert_eq!(ok(&["consume", &topic, "--from", "offset:1", "--bootstrap", &bootstrap]), "b\nc\n");
}

#[test]
fn completions_are_generated() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("_sluice") && bash.contains("consume"), "bash completion: {bash:.200}");
    assert!(ok(&["completions", "zsh"]).contains("#compdef sluice"));
    assert!(ok(&["completions", "fish"]).contains("complete -c sluice"));
}

#[test]
fn topic_lifecycle_with_tables_and_json() {
    let broker = start_broker();
    let http = broker.http_addr();
    let topic = unique_topic("cli-topic");

    let created =
        ok(&["topic", "create", &topic, "--partitions", "3", "--config", "retention.ms=3600000", "--http", &http]);
    assert!(created.contains(&format!("created topic {topic}")), "{created}");
    assert!(created.contains("PARTITION") && created.contains("LOG_END"), "{created}");

    let table = ok(&["topic", "list", "--http", &http]);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("TOPIC") && header.contains("PARTITIONS"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&topic)).unwrap_or_else(|| panic!("{topic} missing: {table}"));
    assert_eq!(row.split_whitespace().nth(1), Some("3"), "partition column: {row}");

    let list = ok_json(&["topic", "list", "--http", &http]);
    assert_eq!(find(&list, "name", &topic).and_then(|t| t["partitions"].as_i64()), Some(3), "{list}");

    let detail = ok_json(&["topic", "describe", &topic, "--http", &http]);
    assert_eq!(detail["partitions"].as_array().map(Vec::len), Some(3), "{detail}");
    let retention = find(&detail["config"], "name", "retention.ms").unwrap_or_else(|| panic!("{detail}"));
    assert_eq!((retention["value"].as_str(), retention["source"].as_str()), (Some("3600000"), Some("topic")));

    let altered =
        ok_json(&["topic", "alter", &topic, "--partitions", "4", "--config", "retention.ms=7200000", "--http", &http]);
    assert_eq!(altered["partitions"].as_array().map(Vec::len), Some(4), "{altered}");
    assert_eq!(find(&altered["config"], "name", "retention.ms").and_then(|c| c["value"].as_str()), Some("7200000"));
    let reverted = ok_json(&["topic", "alter", &topic, "--delete-config", "retention.ms", "--http", &http]);
    assert_eq!(find(&reverted["config"], "name", "retention.ms").and_then(|c| c["source"].as_str()), Some("default"));

    let described = ok(&["topic", "describe", &topic, "--http", &http]);
    assert!(described.contains("CONFIG") && described.contains("retention.ms"), "{described}");

    assert!(ok(&["topic", "delete", &topic, "--http", &http]).contains(&format!("deleted topic {topic}")));
    fails_with_one_line(&["topic", "describe", &topic, "--http", &http]);
    fails_with_one_line(&["topic", "delete", &topic, "--http", &http]);
    // Creating a topic twice is a conflict, reported in one line.
    ok(&["topic", "create", &topic, "--http", &http]);
    fails_with_one_line(&["topic", "create", &topic, "--http", &http]);
}

#[test]
fn produce_then_consume_round_trip_with_keys_and_headers() {
    let broker = start_broker();
    let (http, bootstrap) = (broker.http_addr(), broker.bootstrap());
    let topic = unique_topic("cli-data");
    ok(&["topic", "create", &topic, "--partitions", "1", "--http", &http]);

    let input = broker.temp_dir().join("input.txt");
    std::fs::write(&input, "k1:hello\nk2:wörld\nk3:a:b\n").expect("write input");
    let produced = ok_json(&[
        "produce",
        &topic,
        "--file",
        input.to_str().unwrap_or_default(),
        "--key-separator",
        ":",
        "--header",
        "app=cli",
        "--header",
        "trace=x=y",
        "--bootstrap",
        &bootstrap,
    ]);
    assert_eq!(produced["messages"], 3, "{produced}");
    assert_eq!(produced["partitions"][0]["first_offset"], 0);
    assert_eq!(produced["partitions"][0]["last_offset"], 2);

    // Stdin, a fixed key, and the human summary.
    let more = broker.temp_dir().join("more.txt");
    std::fs::write(&more, "fourth\n").expect("write input");
    let human = ok_with_input(&["produce", &topic, "--key", "k4", "--bootstrap", &bootstrap], Some(&more));
    assert!(human.contains(&format!("produced 1 message to {topic}")) && human.contains("offsets 3..3"), "{human}");

    let plain = ok(&["consume", &topic, "--bootstrap", &bootstrap]);
    assert_eq!(plain, "hello\nwörld\na:b\nfourth\n");

    let records = json_lines(&ok(&["consume", &topic, "--json", "--bootstrap", &bootstrap]));
    assert_eq!(records.len(), 4);
    for (i, (key, value)) in [("k1", "hello"), ("k2", "wörld"), ("k3", "a:b"), ("k4", "fourth")].iter().enumerate() {
        let r = &records[i];
        assert_eq!((r["partition"].as_i64(), r["offset"].as_i64()), (Some(0), Some(i as i64)), "{r}");
        assert_eq!((r["key"].as_str(), r["value"].as_str()), (Some(*key), Some(*value)), "{r}");
        assert!(r["timestamp"].as_i64().unwrap_or(0) > 0, "{r}");
    }
    let headers = &records[0]["headers"];
    assert_eq!(headers[0]["key"], "app");
    assert_eq!(headers[0]["value"], "cli");
    assert_eq!(headers[1]["key"], "trace");
    assert_eq!(headers[1]["value"], "x=y");
    assert_eq!(records[3]["headers"].as_array().map(Vec::len), Some(0));

    // Positions and bounds.
    assert_eq!(ok(&["consume", &topic, "--from", "offset:2", "--bootstrap", &bootstrap]), "a:b\nfourth\n");
    assert_eq!(ok(&["consume", &topic, "--from", "end", "--bootstrap", &bootstrap]), "");
    // Past the log end: said plainly (consume_from_offset_past_the_end_is_an_error).
    let past = fails_with_one_line(&["consume", &topic, "--from", "offset:99", "--bootstrap", &bootstrap]);
    assert!(past.contains("offset 99 is past the end"), "{past}");
    assert_eq!(ok(&["consume", &topic, "--max-messages", "2", "--bootstrap", &bootstrap]), "hello\nwörld\n");
    let ts = records[2]["timestamp"].as_i64().unwrap_or_default();
    let from_ts = ok(&["consume", &topic, "--from", &format!("timestamp:{ts}"), "--bootstrap", &bootstrap]);
    assert!(from_ts.lines().count() >= 2 && from_ts.ends_with("a:b\nfourth\n"), "{from_ts}");
    let followed =
        ok(&["consume", &topic, "--follow", "--max-messages", "4", "--timeout", "30s", "--bootstrap", &bootstrap]);
    assert_eq!(followed.lines().count(), 4);
    // --follow with nothing new ends at --timeout, having printed what there was.
    let timed =
        ok(&["consume", &topic, "--from", "offset:3", "--follow", "--timeout", "300ms", "--bootstrap", &bootstrap]);
    assert_eq!(timed, "fourth\n");

    let line = fails_with_one_line(&["consume", "no-such-topic-xyz", "--bootstrap", &bootstrap]);
    assert_eq!(line, "sluice: unknown topic no-such-topic-xyz");
    fails_with_one_line(&["consume", &topic, "--partition", "7", "--bootstrap", &bootstrap]);
}

#[test]
fn keyed_messages_spread_over_partitions_like_kafka() {
    let broker = start_broker();
    let (http, bootstrap) = (broker.http_addr(), broker.bootstrap());
    let topic = unique_topic("cli-keys");
    ok(&["topic", "create", &topic, "--partitions", "4", "--http", &http]);
    let input = broker.temp_dir().join("keys.txt");
    let lines: String = (0..40).map(|i| format!("key-{i},value-{i}\n")).collect();
    std::fs::write(&input, lines).expect("write input");
    ok(&[
        "produce",
        &topic,
        "--file",
        input.to_str().unwrap_or_default(),
        "--key-separator",
        ",",
        "--bootstrap",
        &bootstrap,
    ]);
    let records = json_lines(&ok(&["consume", &topic, "--json", "--bootstrap", &bootstrap]));
    assert_eq!(records.len(), 40);
    let mut partition_of_key = std::collections::HashMap::new();
    for r in &records {
        let key = r["key"].as_str().unwrap_or_default().to_string();
        assert_eq!(r["value"].as_str(), Some(key.replace("key", "value").as_str()));
        partition_of_key.insert(key, r["partition"].as_i64());
    }
    let used: std::collections::HashSet<_> = partition_of_key.values().collect();
    assert!(used.len() > 1, "40 keys all landed in one partition: {partition_of_key:?}");
    let only_p1 = json_lines(&ok(&["consume", &topic, "--partition", "1", "--json", "--bootstrap", &bootstrap]));
    assert!(only_p1.iter().all(|r| r["partition"] == 1));
}

#[test]
fn group_commit_describe_lag_reset_and_delete() {
    let broker = start_broker();
    let (http, bootstrap) = (broker.http_addr(), broker.bootstrap());
    let topic = unique_topic("cli-group");
    let group = unique_topic("cli-g");
    ok(&["topic", "create", &topic, "--partitions", "1", "--http", &http]);
    let input = broker.temp_dir().join("five.txt");
    std::fs::write(&input, "1\n2\n3\n4\n5\n").expect("write input");
    let file = input.to_str().unwrap_or_default().to_string();
    ok(&["produce", &topic, "--file", &file, "--bootstrap", &bootstrap]);

    // Read three as the group: it commits offset 3, so the lag is 2.
    let first = ok(&["consume", &topic, "--group", &group, "--max-messages", "3", "--bootstrap", &bootstrap]);
    assert_eq!(first, "1\n2\n3\n");
    let detail = ok_json(&["group", "describe", &group, "--http", &http]);
    let offset = find(&detail["offsets"], "topic", &topic).unwrap_or_else(|| panic!("{detail}"));
    assert_eq!((offset["committed_offset"].as_i64(), offset["lag"].as_i64()), (Some(3), Some(2)), "{detail}");
    let table = ok(&["group", "describe", &group, "--http", &http]);
    assert!(table.contains("COMMITTED") && table.contains("LAG"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&topic)).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), vec![topic.as_str(), "0", "3", "5", "2"]);

    let groups = ok_json(&["group", "list", "--http", &http]);
    assert!(find(&groups, "group_id", &group).is_some(), "{groups}");
    assert!(ok(&["group", "list", "--http", &http]).contains(&group));

    // The next run continues where the group stopped.
    assert_eq!(ok(&["consume", &topic, "--group", &group, "--bootstrap", &bootstrap]), "4\n5\n");

    let reset = ok_json(&["group", "reset-offsets", &group, "--topic", &topic, "--to", "earliest", "--http", &http]);
    assert_eq!(find(&reset["offsets"], "topic", &topic).and_then(|o| o["committed_offset"].as_i64()), Some(0));
    let reset_table = ok(&["group", "reset-offsets", &group, "--topic", &topic, "--to", "offset:4", "--http", &http]);
    assert!(reset_table.contains("NEW_OFFSET"), "{reset_table}");
    assert_eq!(ok(&["consume", &topic, "--group", &group, "--bootstrap", &bootstrap]), "5\n");

    assert!(ok(&["group", "delete", &group, "--http", &http]).contains(&format!("deleted group {group}")));
    fails_with_one_line(&["group", "describe", &group, "--http", &http]);
}

#[test]
fn standalone_commit_is_refused_while_the_group_has_members() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let broker = start_broker();
    let (http, bootstrap) = (broker.http_addr(), broker.bootstrap());
    let topic = unique_topic("cli-busy");
    let group = unique_topic("cli-busy-g");
    ok(&["topic", "create", &topic, "--partitions", "1", "--http", &http]);
    let input = broker.temp_dir().join("one.txt");
    std::fs::write(&input, "only\n").expect("write input");
    ok(&["produce", &topic, "--file", input.to_str().unwrap_or_default(), "--bootstrap", &bootstrap]);

    // A real group member (librdkafka): once it has received the message it holds the group.
    let member: BaseConsumer = common::client_config(&bootstrap)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("create rdkafka consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(member.poll(Duration::from_millis(200)), Some(Ok(_))) {
        assert!(Instant::now() < deadline, "the group member never received the message");
    }
    let args = ["consume", topic.as_str(), "--group", group.as_str(), "--bootstrap", bootstrap.as_str()];
    let line = fails_with_one_line(&args);
    assert_eq!(line, format!("sluice: group {group} has active members: a standalone consumer cannot commit for it"));
    assert!(sluice(&args).stdout.is_empty(), "refused before printing anything");
    fails_with_one_line(&["group", "delete", &group, "--http", &http]);
    let detail = ok_json(&["group", "describe", &group, "--http", &http]);
    assert_eq!(detail["members"].as_array().map(Vec::len), Some(1), "{detail}");
}

/// POSTs `body` to the NSQ HTTP API and returns the status code.
fn nsq_http_post(addr: &str, path_and_query: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP listener");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    let length = body.len();
    let request = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn channel_list_pause_unpause_empty() {
    let broker = start_broker();
    let http = broker.http_addr();
    let topic = unique_topic("cli-nsq");
    assert_eq!(nsq_http_post(&http, &format!("/topic/create?topic={topic}"), ""), 200);
    assert_eq!(nsq_http_post(&http, &format!("/channel/create?topic={topic}&channel=workers"), ""), 200);
    assert_eq!(nsq_http_post(&http, &format!("/pub?topic={topic}"), "job-1"), 200);

    let list = ok_json(&["channel", "list", "--topic", &topic, "--http", &http]);
    let channels = &list[0]["channels"];
    let workers = find(channels, "channel", "workers").unwrap_or_else(|| panic!("{list}"));
    assert_eq!(workers["paused"], false);
    assert_eq!(workers["depth"], 1, "{list}");

    let paused = ok_json(&["channel", "pause", &topic, "workers", "--http", &http]);
    assert_eq!(paused["paused"], true, "{paused}");
    let table = ok(&["channel", "list", "--http", &http]);
    assert!(table.starts_with("TOPIC") && table.contains("IN_FLIGHT"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&topic)).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.split_whitespace().nth(2), Some("yes"), "{row}");

    let human = ok(&["channel", "unpause", &topic, "workers", "--http", &http]);
    assert!(human.contains(&format!("unpaused channel {topic}/workers")), "{human}");
    let after = ok_json(&["channel", "list", "--topic", &topic, "--http", &http]);
    assert_eq!(
        find(&after[0]["channels"], "channel", "workers").map(|c| c["paused"].clone()),
        Some(Value::Bool(false))
    );

    let emptied = ok_json(&["channel", "empty", &topic, "workers", "--http", &http]);
    assert_eq!(emptied["depth"], 0, "{emptied}");
    fails_with_one_line(&["channel", "pause", &topic, "no-such-channel", "--http", &http]);
    fails_with_one_line(&["channel", "list", "--topic", "no-such-nsq-topic", "--http", &http]);
}

#[test]
fn bench_produce_and_consume_bounded() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-bench");
    let produced = ok_json(&[
        "bench",
        "produce",
        "--topic",
        &topic,
        "--messages",
        "2000",
        "--size",
        "64",
        "--batch",
        "100",
        "--bootstrap",
        &bootstrap,
    ]);
    assert_eq!(produced["messages"], 2000, "{produced}");
    assert_eq!(produced["bytes"], 2000 * 64);
    assert_eq!(produced["requests"], 20);
    let latency = &produced["latency_ms"];
    let (p50, p99, max) = (latency["p50"].as_f64(), latency["p99"].as_f64(), latency["max"].as_f64());
    assert!(p50.is_some() && p50 <= p99 && p99 <= max, "{produced}");
    assert!(produced["msgs_per_sec"].as_f64().unwrap_or(0.0) > 0.0);

    let consumed = ok_json(&["bench", "consume", "--topic", &topic, "--messages", "5000", "--bootstrap", &bootstrap]);
    assert_eq!(consumed["messages"], 2000, "reads what the topic holds: {consumed}");
    assert_eq!(consumed["bytes"], 2000 * 64);

    let table = ok(&["bench", "produce", "--topic", &topic, "--messages", "300", "--bootstrap", &bootstrap]);
    for metric in ["msgs/s", "MB/s", "latency p50 ms", "latency p99 ms", "latency max ms"] {
        assert!(table.contains(metric), "{metric} missing: {table}");
    }
    // The time bound ends a run that the count would not.
    let timed = ok_json(&[
        "bench",
        "produce",
        "--topic",
        &topic,
        "--messages",
        "100000000",
        "--duration",
        "500ms",
        "--bootstrap",
        &bootstrap,
    ]);
    assert!(timed["messages"].as_u64().unwrap_or(0) < 100_000_000, "{timed}");
}
