//! The web console works end to end in a real browser: headless Chromium, driven by
//! `tests/console/scenario.mjs` (playwright-core), creates a topic, publishes a message and
//! finds it in the message browser, pauses and unpauses an NSQ channel and reads a consumer
//! group's lag, and finds a mosquitto_sub client's persistent session and the retained count on
//! the MQTT page — all through the console the binary serves — and saves screenshots.
//! Also checks the embedded assets are served with their types and revalidation headers, and,
//! on a 3-node cluster (`tests/console/cluster.mjs`), that the cluster page opened on node 2
//! shows the 3 nodes and a replicated topic's placement, then — live, once node 3 is killed —
//! node 3 down and the topic's partitions under-replicated.
//!
//! Needs `scripts/install-console-test-deps.sh` (Debian `chromium`, `npm ci` in tests/console).
mod cluster_support;
mod common;
mod history;
mod mqtt_common;

use cluster_support::kafka::{create_topic, metadata_client, wait_fully_replicated};
use cluster_support::Cluster;
use common::{
    acks_all_producer, client_config, produce_one, run_bounded, runtime, tail, unique_topic, use_system_libraries,
    wait_timeout, Broker,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The whole browser scenario: a dozen steps, each waiting at most 20 s for the page.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);
/// Messages produced for the lagging group, and how many of them it has committed.
const GROUP_MESSAGES: i64 = 7;
const GROUP_COMMITTED: i64 = 2;
/// The MQTT client whose persistent session the MQTT page must list.
const MQTT_CLIENT_ID: &str = "console-watcher";
/// The cluster scenario: the page's checks before and after the kill, each step at most 20 s.
const CLUSTER_SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// The cluster the cluster page is checked on, the node serving the page and the node killed.
const CLUSTER_NODES: usize = 3;
const PAGE_NODE: u64 = 2;
const KILLED_NODE: u64 = 3;
/// The replicated topic shown: a replica of each partition on every node.
const CLUSTER_PARTITIONS: i32 = 2;
/// Bound on the topic's partitions electing leaders and filling their ISR.
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(30);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the screenshots go: `$CONSOLE_SCREENSHOTS`, else `<cargo target dir>/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONSOLE_SCREENSHOTS") {
        return PathBuf::from(dir);
    }
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(Path::to_path_buf);
    target.unwrap_or_else(|| repo_root().join("target")).join("console-screenshots")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn assert_dependencies_installed() {
    let playwright = repo_root().join("tests/console/node_modules/playwright-core/package.json");
    assert!(
        chromium().exists() && playwright.exists(),
        "the console test needs {} and {} — run scripts/install-console-test-deps.sh",
        chromium().display(),
        playwright.display()
    );
}

/// One HTTP/1.1 GET with extra header lines; returns (status, lower-cased head, body).
fn get(addr: &str, path: &str, extra_headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set read timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra_headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete HTTP head");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, head, response[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

#[test]
fn console_assets_are_embedded_and_revalidated() {
    let broker = Broker::start(&[]);
    let addr = broker.http_addr();
    let (status, head, body) = get(&addr, "/", "");
    assert_eq!(status, 200, "GET /: {head}");
    assert_eq!(header(&head, "content-type"), Some("text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&body).contains(r#"<script type="module" src="/console/app.js">"#));
    for (asset, content_type) in
        [("app.js", "text/javascript"), ("style.css", "text/css"), ("topic.js", "text/javascript")]
    {
        let (status, head, body) = get(&addr, &format!("/console/{asset}"), "");
        assert_eq!(status, 200, "GET /console/{asset}: {head}");
        assert!(header(&head, "content-type").is_some_and(|t| t.starts_with(content_type)), "{asset}: {head}");
        assert_eq!(header(&head, "cache-control"), Some("no-cache"), "{asset}");
        assert!(!body.is_empty(), "{asset} is empty");
        let etag = header(&head, "etag").expect("an etag").to_string();
        let (status, _, body) = get(&addr, &format!("/console/{asset}"), &format!("If-None-Match: {etag}\r\n"));
        assert_eq!((status, body.len()), (304, 0), "{asset} revalidated with its etag");
    }
    let (status, _, _) = get(&addr, "/console/../Cargo.toml", "");
    assert_eq!(status, 404, "only embedded assets are served");
    let (status, _, _) = get(&addr, "/console/nope.js", "");
    assert_eq!(status, 404);
}

/// Creates `group` with committed offsets GROUP_COMMITTED on a one-partition topic holding
/// GROUP_MESSAGES records, so its lag is the difference. Returns the consumer, still connected,
/// for the clients page to list.
fn make_lagging_group(broker: &Broker, topic: &str, group: &str) -> BaseConsumer {
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for i in 0..GROUP_MESSAGES {
        produce_one(&rt, &producer, topic, 0, format!("k{i}").as_bytes(), format!("invoice {i}").as_bytes());
    }
    let consumer: BaseConsumer = client_config(&broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create consumer");
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, 0, Offset::Offset(GROUP_COMMITTED)).expect("add offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit the group's offsets");
    consumer
}

#[test]
fn console_scenario_in_headless_chromium() {
    assert_dependencies_installed();
    let broker = Broker::start(&["--default-partitions", "1"]);
    let topic = unique_topic("console-invoices");
    let group = unique_topic("console-billing");
    let _connected = make_lagging_group(&broker, &topic, &group);
    // For the MQTT page: a retained message and a subscriber holding a persistent session.
    mqtt_common::mosquitto_pub(&broker, &["-t", "console/lamp", "-m", "on", "-r", "-q", "1"]);
    let _mqtt_subscriber =
        mqtt_common::Subscriber::start(&broker, &["console/#"], &["-c", "-i", MQTT_CLIENT_ID], "console/probe");

    let shots = screenshot_dir();
    let mut cmd = Command::new("node");
    cmd.arg("scenario.mjs")
        .current_dir(repo_root().join("tests/console"))
        .env("SLUICE_CONSOLE_URL", format!("http://{}", broker.http_addr()))
        .env("CONSOLE_SCREENSHOTS", &shots)
        .env("CONSOLE_GROUP", &group)
        .env("CONSOLE_GROUP_TOPIC", &topic)
        .env("CONSOLE_GROUP_LAG", (GROUP_MESSAGES - GROUP_COMMITTED).to_string())
        .env("CONSOLE_EXPECT_KAFKA_CLIENT", "1")
        .env("CONSOLE_MQTT_CLIENT", MQTT_CLIENT_ID)
        .env("CHROMIUM", chromium());
    let out = run_bounded(&mut cmd, SCENARIO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "console scenario failed with {}\nstdout: {stdout}\nstderr (tail): {}\nscreenshots: {}",
        out.status,
        tail(&out.stderr, 4000),
        shots.display()
    );
    assert!(stdout.contains("console scenario passed"), "the scenario did not finish: {stdout}");
    println!("console screenshots: {}", shots.display());
}

#[test]
fn console_cluster_view_in_headless_chromium() {
    assert_dependencies_installed();
    let mut cluster = Cluster::start(CLUSTER_NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("console-cluster");
    create_topic(&bootstrap, &topic, CLUSTER_PARTITIONS, CLUSTER_NODES as i32).expect("create a replicated topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, CLUSTER_PARTITIONS, CLUSTER_NODES, REPLICATED_TIMEOUT);

    let shots = screenshot_dir();
    let mut cmd = Command::new("node");
    cmd.arg("cluster.mjs")
        .current_dir(repo_root().join("tests/console"))
        .env("SLUICE_CONSOLE_URL", format!("http://{}", cluster.http_addr(PAGE_NODE)))
        .env("CONSOLE_SCREENSHOTS", &shots)
        .env("CONSOLE_CLUSTER_NODES", CLUSTER_NODES.to_string())
        .env("CONSOLE_CLUSTER_TOPIC", &topic)
        .env("CONSOLE_CLUSTER_PARTITIONS", CLUSTER_PARTITIONS.to_string())
        .env("CONSOLE_KILLED_NODE", KILLED_NODE.to_string())
        .env("CHROMIUM", chromium());
    let mut scenario = Scenario::spawn(&mut cmd);
    let deadline = Instant::now() + CLUSTER_SCENARIO_TIMEOUT;
    let kill_line = format!("KILL NODE {KILLED_NODE}");
    if scenario.wait_for_line(&kill_line, deadline) {
        cluster.node(KILLED_NODE).kill9();
        scenario.say("killed");
    }
    let (success, stdout, stderr) = scenario.finish(deadline);
    println!("{stdout}");
    assert!(
        success,
        "cluster scenario failed\nstdout: {stdout}\nstderr (tail): {}\nscreenshots: {}",
        tail(stderr.as_bytes(), 4000),
        shots.display()
    );
    assert!(stdout.contains("cluster scenario passed"), "the scenario did not finish: {stdout}");
}

/// A browser scenario that talks with the test while it runs: its stdout lines arrive through
/// a reader thread (so every wait is bounded), the test answers on its stdin.
struct Scenario {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
    stderr: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Scenario {
    fn spawn(cmd: &mut Command) -> Scenario {
        use_system_libraries(cmd);
        let scratch = tempfile::tempdir().expect("scratch dir");
        let stderr = scratch.path().join("stderr");
        let err = std::fs::File::create(&stderr).expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Scenario { child, lines, seen: Vec::new(), stderr, _scratch: scratch }
    }

    /// Whether the scenario printed `wanted` before `deadline` (false: it ended or timed out).
    fn wait_for_line(&mut self, wanted: &str, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == wanted;
                    self.seen.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Sends `line` and closes stdin (the scenario reads one answer).
    fn say(&mut self, line: &str) {
        let mut stdin = self.child.stdin.take().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to the scenario");
    }

    /// Waits for the end (killing it at `deadline`): (success, stdout, stderr).
    fn finish(mut self, deadline: Instant) -> (bool, String, String) {
        let status = wait_timeout(&mut self.child, deadline.saturating_duration_since(Instant::now()));
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader thread ends with the child's stdout, so this ends at once after the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let seen = self.seen;
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let success = status.is_some_and(|s| s.success());
        (success, seen.join("\n"), if status.is_none() { format!("timed out\n{stderr}") } else { stderr })
    }
}
