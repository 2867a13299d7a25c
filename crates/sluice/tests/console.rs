//! The web console works end to end in a real browser: headless Chromium, driven by
//! `tests/console/scenario.mjs` (playwright-core), creates a topic, publishes a message and
//! finds it in the message browser, pauses and unpauses an NSQ channel and reads a consumer
//! group's lag — all through the console the binary serves — and saves screenshots.
//! Also checks the embedded assets are served with their types and revalidation headers.
//!
//! Needs `scripts/install-console-test-deps.sh` (Debian `chromium`, `npm ci` in tests/console).
mod common;

use common::{acks_all_producer, client_config, produce_one, run_bounded, runtime, tail, unique_topic, Broker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The whole browser scenario: a dozen steps, each waiting at most 20 s for the page.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);
/// Messages produced for the lagging group, and how many of them it has committed.
const GROUP_MESSAGES: i64 = 7;
const GROUP_COMMITTED: i64 = 2;

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
