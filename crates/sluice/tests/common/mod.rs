//! Shared black-box harness: starts the real `sluice` binary on a free loopback port with a
//! temp data dir, and offers bounded helpers for driving it with real clients.
#![allow(dead_code)]

pub mod certs;
pub mod go;
pub mod ports;
pub mod raw;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// Path of the binary under test, built by cargo for integration tests.
pub const SLUICE_BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// How long a broker may take to accept TCP connections after spawn (debug build, busy CI).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a broker may take to exit after SIGTERM/SIGINT ("a few seconds" in the contract,
/// doubled for a loaded 2-core machine).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for starting a broker beyond the plain extra flags.
#[derive(Default, Clone)]
pub struct BrokerOpts {
    /// Arguments placed before the harness flags (e.g. the `serve` subcommand).
    pub prefix: Vec<String>,
    /// Extra flags placed after `--kafka-addr` and `--data-dir`.
    pub args: Vec<String>,
    /// Extra environment variables for the child (all inherited `SLUICE_*` are removed).
    pub env: Vec<(String, String)>,
    /// The data dir to use instead of `<temp dir>/data` (e.g. on a test filesystem). It is
    /// not created by the harness.
    pub data_dir: Option<PathBuf>,
    /// Soft and hard `RLIMIT_NOFILE` of the child (set with `prlimit`), or inherited.
    pub open_files_max: Option<u64>,
}

/// A running (or stopped) `sluice` child process owned by one test.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// Ports for the other listeners (NSQ TCP, HTTP) when this build of the binary has them,
    /// so brokers of parallel tests never fight over the fixed default ports.
    nsq_tcp_port: u16,
    http_port: u16,
    mqtt_port: u16,
    mqtt_ws_port: u16,
    /// Holds the data dir and the log file; removed when the broker is dropped.
    dir: tempfile::TempDir,
    opts: BrokerOpts,
    log_path: PathBuf,
}

impl Broker {
    /// Starts a broker with `--kafka-addr 127.0.0.1:<free port> --data-dir <tmp>` plus `args`.
    pub fn start(args: &[&str]) -> Broker {
        Broker::start_with(BrokerOpts { args: args.iter().map(|s| s.to_string()).collect(), ..BrokerOpts::default() })
    }

    /// Starts a broker with full control over prefix arguments and environment.
    pub fn start_with(opts: BrokerOpts) -> Broker {
        let dir = tempfile::Builder::new().prefix("sluice-test-").tempdir().expect("create temp dir");
        let port = free_port();
        let log_path = dir.path().join("broker.log");
        let mut broker = Broker {
            child: None,
            port,
            nsq_tcp_port: free_port(),
            http_port: free_port(),
            mqtt_port: free_port(),
            mqtt_ws_port: free_port(),
            dir,
            opts,
            log_path,
        };
        if broker.opts.data_dir.is_none() {
            std::fs::create_dir_all(broker.data_dir()).expect("create data dir");
        }
        // A port free when picked can be taken by another process before the broker binds it;
        // the first start then moves to fresh ports instead of failing the test.
        for _ in 1..START_ATTEMPTS {
            let log_start = broker.log_len();
            match broker.try_spawn_and_wait() {
                Ok(()) => return broker,
                Err(StartFailure::Exited(_)) if broker.log_since(log_start).contains("Address already in use") => {
                    (broker.port, broker.nsq_tcp_port, broker.http_port) = (free_port(), free_port(), free_port());
                    (broker.mqtt_port, broker.mqtt_ws_port) = (free_port(), free_port());
                }
                Err(failure) => broker.fail_start(failure),
            }
        }
        broker.spawn_and_wait();
        broker
    }

    /// `127.0.0.1:<port>` for client `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>` of the NSQ TCP listener (only meaningful if the binary has one).
    pub fn nsq_tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.nsq_tcp_port)
    }

    /// `127.0.0.1:<port>` of the HTTP listener (only meaningful if the binary has one).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    /// `127.0.0.1:<port>` of the MQTT listener (only meaningful if the binary has one).
    pub fn mqtt_addr(&self) -> String {
        format!("127.0.0.1:{}", self.mqtt_port)
    }

    pub fn mqtt_port(&self) -> u16 {
        self.mqtt_port
    }

    /// Port of the MQTT over WebSocket listener (only meaningful if the binary has one).
    pub fn mqtt_ws_port(&self) -> u16 {
        self.mqtt_ws_port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.opts.data_dir.clone().unwrap_or_else(|| self.dir.path().join("data"))
    }

    /// The temp dir of this broker (data dir and log live inside); handy for scratch files.
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the broker wrote to stderr, across all restarts.
    pub fn log_contents(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Length of the log so far; pair with `log_since` to look only at a later part.
    pub fn log_len(&self) -> usize {
        self.log_contents().len()
    }

    pub fn log_since(&self, from: usize) -> String {
        let all = self.log_contents();
        all.get(from..).unwrap_or("").to_string()
    }

    /// SIGKILL the child and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM the child, wait (bounded) and assert a clean exit 0. Returns the time it took.
    pub fn stop(&mut self) -> Duration {
        self.stop_with_signal("TERM")
    }

    /// Sends `signal` (e.g. "TERM", "INT") and asserts a clean exit 0 within `STOP_TIMEOUT`.
    pub fn stop_with_signal(&mut self, signal: &str) -> Duration {
        let mut child = self.child.take().expect("broker is not running");
        let started = Instant::now();
        send_signal(child.id(), signal);
        let status = wait_timeout(&mut child, STOP_TIMEOUT);
        let elapsed = started.elapsed();
        match status {
            Some(status) => {
                if !status.success() {
                    self.dump_log();
                    panic!("broker exited with {status} after SIG{signal} (expected 0)");
                }
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.dump_log();
                panic!("broker did not exit within {STOP_TIMEOUT:?} of SIG{signal}");
            }
        }
        elapsed
    }

    /// Replaces the test's own extra flags for the next starts (e.g. an operator's one-off flag).
    pub fn set_args(&mut self, args: &[&str]) {
        self.opts.args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the broker again on the same port with the same data dir and arguments.
    pub fn restart(&mut self) {
        if self.try_exit_status().is_some() {
            // It already died (a test provoking a crash); just start it again.
            self.child = None;
        }
        if self.child.is_some() {
            self.stop();
        }
        self.spawn_and_wait();
    }

    /// Returns the exit status if the broker has exited (it should not have).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Asserts the process is still alive (used after bad input).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit_status() {
            self.dump_log();
            panic!("broker exited unexpectedly with {status}");
        }
        assert!(self.child.is_some(), "broker is not running");
    }

    pub fn dump_log(&self) {
        eprintln!(
            "----- sluice broker log ({}) -----\n{}\n----- end of broker log -----",
            self.log_path.display(),
            self.log_contents()
        );
    }

    fn spawn_and_wait(&mut self) {
        if let Err(failure) = self.try_spawn_and_wait() {
            self.fail_start(failure);
        }
    }

    fn fail_start(&mut self, failure: StartFailure) -> ! {
        self.dump_log();
        match failure {
            StartFailure::Exited(status) => panic!("broker exited during startup with {status}"),
            StartFailure::NotReady => {
                panic!("broker did not accept connections on {} within {READY_TIMEOUT:?}", self.bootstrap())
            }
        }
    }

    fn try_spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open broker log");
        let mut cmd = match self.opts.open_files_max {
            // prlimit sets the limit on itself and execs the binary: the PID stays the broker's.
            Some(max) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={max}:{max}")).arg("--").arg(SLUICE_BIN);
                cmd
            }
            None => Command::new(SLUICE_BIN),
        };
        cmd.args(&self.opts.prefix).arg("--kafka-addr").arg(self.bootstrap()).arg("--data-dir").arg(self.data_dir());
        // Listener flags the binary may or may not have yet; a test's own args come after and win.
        if binary_has_flag("--nsq-tcp-addr") {
            cmd.arg("--nsq-tcp-addr").arg(self.nsq_tcp_addr());
        }
        if binary_has_flag("--http-addr") {
            cmd.arg("--http-addr").arg(self.http_addr());
        }
        if binary_has_flag("--mqtt-addr") {
            cmd.arg("--mqtt-addr").arg(self.mqtt_addr());
        }
        if binary_has_flag("--mqtt-ws-addr") {
            cmd.arg("--mqtt-ws-addr").arg(format!("127.0.0.1:{}", self.mqtt_ws_port));
        }
        cmd.args(&self.opts.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        clear_sluice_env(&mut cmd);
        no_initial_rebalance_delay(&mut cmd);
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = cmd.spawn().expect("spawn sluice binary");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return Err(StartFailure::Exited(status));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartFailure::NotReady);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How many times a first start may move to fresh ports after losing one to another process.
const START_ATTEMPTS: usize = 4;

/// Why a broker did not come up.
enum StartFailure {
    Exited(ExitStatus),
    NotReady,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_log();
        }
        // Only ever the child this harness spawned, by its own handle (PID).
        self.kill9();
    }
}

/// Longest a test HTTP request waits for its answer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal HTTP/1.1 request; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, dechunk(&text, body))
}

fn dechunk(head: &str, body: String) -> String {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return body;
    }
    let mut out = String::new();
    let mut rest = body.as_str();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `condition` every 20 ms until it holds; fails the test naming `what` after `timeout`.
/// Tests wait for an observable state with this, never with a bare sleep.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The clients the broker lists (`GET /api/clients`), each as JSON.
pub fn listed_clients(broker: &Broker) -> Vec<serde_json::Value> {
    let (status, body) = http(broker.http_port, "GET", "/api/clients", b"");
    assert_eq!(status, 200, "GET /api/clients: {body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("clients JSON");
    value.as_array().cloned().unwrap_or_default()
}

/// How many requests the broker has counted for the client connected from `peer`
/// (the client's local address), or None while it is not listed.
pub fn requests_from(broker: &Broker, peer: SocketAddr) -> Option<u64> {
    let peer = peer.to_string();
    listed_clients(broker).iter().find(|c| c["peer"] == peer.as_str()).and_then(|c| c["requests"].as_u64())
}

/// Whether `sluice --help` lists `flag` (checked once per test binary).
pub fn binary_has_flag(flag: &str) -> bool {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let help = HELP.get_or_init(|| {
        let mut cmd = Command::new(SLUICE_BIN);
        cmd.arg("--help").stdin(Stdio::null());
        clear_sluice_env(&mut cmd);
        let out = run_bounded(&mut cmd, Duration::from_secs(20));
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    help.split(|c: char| c.is_whitespace() || c == ',').any(|word| word == flag)
}

/// A port free on 127.0.0.1 a moment ago and never handed out before by this process (see
/// `ports::free_port`).
pub fn free_port() -> u16 {
    ports::free_port(std::net::Ipv4Addr::LOCALHOST)
}

/// Removes every inherited `SLUICE_*` variable so the environment of the test runner cannot
/// change broker configuration.
pub fn clear_sluice_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLUICE_") {
            cmd.env_remove(key);
        }
    }
}

/// Tests run groups without Kafka's 3 s initial rebalance delay, as Kafka's own test configs
/// do; a test of the delay overrides it with the flag or its own `SLUICE_*` variable.
pub fn no_initial_rebalance_delay(cmd: &mut Command) {
    cmd.env("SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
}

/// Sends a signal with the `kill` utility to one PID we own.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Waits for `child` to exit for at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A topic name unique to this process and call (legal Kafka characters only).
pub fn unique_topic(prefix: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Runs a command with stdout/stderr captured to files (no pipe deadlocks), killing it if it
/// exceeds `timeout`. Panics on timeout with whatever it printed.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    use_system_libraries(cmd);
    let scratch = tempfile::tempdir().expect("scratch dir");
    let out_path = scratch.path().join("stdout");
    let err_path = scratch.path().join("stderr");
    let out = File::create(&out_path).expect("stdout file");
    let err = File::create(&err_path).expect("stderr file");
    let mut child = cmd.stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_timeout(&mut child, timeout);
    let stdout = std::fs::read(&out_path).unwrap_or_default();
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout (tail): {}\nstderr (tail): {}",
                tail(&stdout, 2000),
                tail(&stderr, 4000)
            );
        }
    }
}

/// Removes cargo's build directories from `LD_LIBRARY_PATH` for an external client. Cargo adds
/// the native search paths of build scripts to it when running tests, which would make kcat and
/// confluent-kafka load the rdkafka crate's bundled librdkafka (built without zstd) instead of
/// the system library they were built against.
pub fn use_system_libraries(cmd: &mut Command) {
    let Some(current) = std::env::var_os("LD_LIBRARY_PATH") else {
        return;
    };
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(Path::to_path_buf).unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&current)
        .filter(|p| target_dir.as_os_str().is_empty() || !p.starts_with(&target_dir))
        .collect();
    if kept.is_empty() {
        cmd.env_remove("LD_LIBRARY_PATH");
    } else {
        cmd.env("LD_LIBRARY_PATH", std::env::join_paths(kept).expect("join LD_LIBRARY_PATH"));
    }
}

/// Like `run_bounded` but also asserts exit status 0.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Output {
    let out = run_bounded(cmd, timeout);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout (tail): {}\nstderr (tail): {}",
        out.status,
        tail(&out.stdout, 2000),
        tail(&out.stderr, 4000)
    );
    out
}

/// The last `max` bytes of `bytes`, lossily as text.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

// ---------------------------------------------------------------------------------------------
// rdkafka helpers (librdkafka, bundled by the rdkafka crate)
// ---------------------------------------------------------------------------------------------

/// Timeout for one metadata / watermark request.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Base client config pointing at the broker, with quick failure instead of long retries.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    cfg
}

/// A consumer that never joins a group: `assign` only, no offset commits. librdkafka insists
/// on a `group.id` before `assign`, so a unique one is set, but no subscribe/commit ever uses it.
pub fn plain_consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("sluice-test-assign-only"))
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("create rdkafka consumer")
}

/// One consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: Option<i64>,
}

pub fn to_rec<M: Message>(m: &M) -> Rec {
    let headers = m
        .headers()
        .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec()))).collect())
        .unwrap_or_default();
    Rec {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| k.to_vec()),
        value: m.payload().map(|v| v.to_vec()),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}

/// Reads the last `count` records of `topic`/`partition` starting at `from`, bounded by
/// `timeout`, and checks nothing follows them (no duplicates or strays at the end).
pub fn consume_exact(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    from: Offset,
    count: usize,
    timeout: Duration,
) -> Vec<Rec> {
    consume(bootstrap, topic, partition, from, count, timeout, true)
}

/// Reads `count` records of `topic`/`partition` starting at `from` (more may follow).
pub fn consume_range(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    from: Offset,
    count: usize,
    timeout: Duration,
) -> Vec<Rec> {
    consume(bootstrap, topic, partition, from, count, timeout, false)
}

fn consume(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    from: Offset,
    count: usize,
    timeout: Duration,
    expect_end: bool,
) -> Vec<Rec> {
    let consumer = plain_consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, from).expect("tpl offset");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if Instant::now() >= deadline {
            panic!(
                "consumed only {} of {count} records from {topic}/{partition} within {timeout:?}; last: {:?}",
                out.len(),
                out.last()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => out.push(to_rec(&m)),
            Some(Err(e)) => eprintln!("consumer error on {topic}/{partition} (continuing): {e}"),
        }
    }
    if expect_end {
        // Anything beyond `count` means duplicates or extra records: look briefly for more.
        let extra_deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < extra_deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let rec = to_rec(&m);
                panic!("more than {count} records in {topic}/{partition}: extra {rec:?}");
            }
        }
    }
    out.truncate(count);
    out
}

/// (low, high) watermarks of a partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer = plain_consumer(bootstrap, &[]);
    consumer
        .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// Partition count of `topic` per broker metadata (`None` if absent). Asks for all topics so the
/// request itself can never auto-create anything.
pub fn partition_count(bootstrap: &str, topic: &str) -> Option<usize> {
    let consumer = plain_consumer(bootstrap, &[("allow.auto.create.topics", "false")]);
    let md = consumer.fetch_metadata(None, CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("fetch_metadata: {e}"));
    md.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len())
}

/// All topic names per broker metadata.
pub fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer = plain_consumer(bootstrap, &[("allow.auto.create.topics", "false")]);
    let md = consumer.fetch_metadata(None, CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("fetch_metadata: {e}"));
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// Deterministic pseudo-random generator (xorshift64*), so payloads are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next_u64() >> 32) as u8).collect()
    }
}

/// Reads a whole file into memory (test-sized files only).
pub fn read_file(path: &Path) -> Vec<u8> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    buf
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().map(|n| n.to_string_lossy().ends_with(suffix)).unwrap_or(false) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A small multi-threaded tokio runtime for rdkafka's future-based APIs.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// A FutureProducer with acks=all and the given extra settings.
pub fn acks_all_producer(bootstrap: &str, extra: &[(&str, &str)]) -> rdkafka::producer::FutureProducer {
    let mut cfg = client_config(bootstrap);
    cfg.set("acks", "all").set("linger.ms", "2");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create().expect("create producer")
}

/// Produces one record and waits for its acknowledgement; returns (partition, offset).
pub fn produce_one(
    rt: &tokio::runtime::Runtime,
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    partition: i32,
    key: &[u8],
    value: &[u8],
) -> (i32, i64) {
    let record = rdkafka::producer::FutureRecord::to(topic).partition(partition).key(key).payload(value);
    let delivery = rt
        .block_on(producer.send(record, rdkafka::util::Timeout::After(CLIENT_TIMEOUT * 3)))
        .unwrap_or_else(|(e, _)| panic!("produce to {topic}/{partition}: {e}"));
    (delivery.partition, delivery.offset)
}

/// A librdkafka client context keeping the largest broker throttle time (quotas) that the
/// client's own statistics reported (set `statistics.interval.ms`).
#[derive(Clone, Default)]
pub struct ThrottleSeen(pub std::sync::Arc<std::sync::atomic::AtomicI64>);

impl rdkafka::ClientContext for ThrottleSeen {
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        let most = statistics.brokers.values().filter_map(|b| b.throttle.as_ref()).map(|w| w.max).max();
        self.0.fetch_max(most.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }
}

impl rdkafka::consumer::ConsumerContext for ThrottleSeen {}

/// Adds a SASL user to a stopped broker's data directory (`sluice user add --data-dir`), the
/// password passed as `SLUICE_USER_PASSWORD`.
pub fn add_user_offline(data_dir: &Path, name: &str, password: &str) {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(["user", "add", name, "--data-dir"]).arg(data_dir).stdin(Stdio::null());
    clear_sluice_env(&mut cmd);
    cmd.env("SLUICE_USER_PASSWORD", password);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "sluice user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A broker with one SASL_PLAINTEXT listener, `users` (name, password) added beforehand, and
/// `extra` flags: it, the listener's address, and the directory holding its data (keep it).
pub fn start_sasl_broker(users: &[(&str, &str)], extra: &[&str]) -> (Broker, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    for (name, password) in users {
        add_user_offline(&data_dir, name, password);
    }
    let sasl = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--kafka-listener".to_string(), format!("SASL_PLAINTEXT://{sasl}")];
    args.extend(extra.iter().map(|a| a.to_string()));
    (Broker::start_with(BrokerOpts { args, data_dir: Some(data_dir), ..BrokerOpts::default() }), sasl, dir)
}
