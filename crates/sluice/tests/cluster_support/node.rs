//! One node of a test cluster: a `sluice serve` child process with its own address, ports,
//! data dir and log file, started, signalled, killed and restarted by the test.

use crate::common::{
    clear_sluice_env, no_initial_rebalance_delay, send_signal, wait_timeout, wait_until, READY_TIMEOUT, SLUICE_BIN,
    STOP_TIMEOUT,
};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Bound on one `/ping` (connect, write, read).
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest `/ping` answer read (it is "OK" and a few headers).
const PING_ANSWER_BYTES_MAX: u64 = 4096;
/// How much of a node's log is printed when a test fails: the end tells what went wrong,
/// and a debug build logs a lot.
const LOG_TAIL_BYTES: usize = 64 * 1024;
/// Lines printed after each panic found before the tail (its message and first frames).
const PANIC_CONTEXT_LINES: usize = 4;

/// The listeners of one node.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub cluster: u16,
    pub kafka: u16,
    pub nsq_tcp: u16,
    pub http: u16,
    pub mqtt: u16,
    pub mqtt_ws: u16,
}

impl Ports {
    /// A free port on `ip` for every listener.
    pub fn free(ip: Ipv4Addr) -> Ports {
        let port = || crate::common::ports::free_port(ip);
        Ports { cluster: port(), kafka: port(), nsq_tcp: port(), http: port(), mqtt: port(), mqtt_ws: port() }
    }
}

/// How a node finds the cluster.
#[derive(Debug, Clone)]
pub enum Membership {
    /// A founding member: `--cluster-peers 1@addr,2@addr,...`.
    Peers(String),
    /// A later node: `--join <a member's cluster address>`.
    Join(String),
}

pub struct Node {
    pub id: u64,
    pub ip: Ipv4Addr,
    pub ports: Ports,
    /// The network namespace the node runs in, if any (`netns`).
    namespace: Option<String>,
    membership: Membership,
    /// Flags after the harness's own (raft timings, replication factor, a test's extras).
    args: Vec<String>,
    /// `<cluster dir>/node-<id>`: holds `data/` and `node.log`.
    dir: PathBuf,
    /// A data directory elsewhere (a power-cut filesystem), instead of `dir/data`.
    data_dir: Option<PathBuf>,
    child: Option<Child>,
    /// Starts so far, written into the log before each so restarts can be told apart.
    starts: u32,
}

impl Node {
    pub fn new(
        id: u64,
        ip: Ipv4Addr,
        ports: Ports,
        namespace: Option<String>,
        membership: Membership,
        args: Vec<String>,
        cluster_dir: &Path,
    ) -> Node {
        let dir = cluster_dir.join(format!("node-{id}"));
        std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Node { id, ip, ports, namespace, membership, args, dir, data_dir: None, child: None, starts: 0 }
    }

    pub fn kafka_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.kafka)
    }

    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.http)
    }

    pub fn nsq_tcp_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.nsq_tcp)
    }

    /// The MQTT listener's host and port, as mosquitto's `-h` and `-p` take them.
    pub fn mqtt_host_port(&self) -> (String, u16) {
        (self.ip.to_string(), self.ports.mqtt)
    }

    pub fn cluster_addr(&self) -> String {
        format!("{}:{}", self.ip, self.ports.cluster)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| self.dir.join("data"))
    }

    /// Puts the node's data elsewhere (before it is first spawned).
    pub fn set_data_dir(&mut self, data_dir: PathBuf) {
        assert!(self.child.is_none(), "node {}: the data dir is set before the first start", self.id);
        self.data_dir = Some(data_dir);
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs (or is stopped by SIGSTOP): started and not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The exact command line the node is started with (also written into its log).
    pub fn command(&self) -> Command {
        let mut cmd = match &self.namespace {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(binary());
                cmd
            }
            None => Command::new(binary()),
        };
        cmd.arg("serve").arg("--node-id").arg(self.id.to_string());
        cmd.arg("--cluster-addr").arg(self.cluster_addr());
        match &self.membership {
            Membership::Peers(peers) => cmd.arg("--cluster-peers").arg(peers),
            Membership::Join(addr) => cmd.arg("--join").arg(addr),
        };
        cmd.arg("--kafka-addr").arg(self.kafka_addr());
        cmd.arg("--nsq-tcp-addr").arg(self.nsq_tcp_addr());
        cmd.arg("--http-addr").arg(self.http_addr());
        cmd.arg("--mqtt-addr").arg(format!("{}:{}", self.ip, self.ports.mqtt));
        cmd.arg("--mqtt-ws-addr").arg(format!("{}:{}", self.ip, self.ports.mqtt_ws));
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd.args(&self.args);
        cmd
    }

    /// Spawns the process (it must not be running); does not wait for it to answer.
    pub fn spawn(&mut self) {
        assert!(!self.is_running(), "node {} is already running", self.id);
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path().display()));
        let mut cmd = self.command();
        let _ = writeln!(log, "----- harness: start {} of node {}: {cmd:?} -----", self.starts, self.id);
        let stdout = log.try_clone().unwrap_or_else(|e| panic!("clone log handle: {e}"));
        cmd.current_dir(&self.dir).stdin(Stdio::null()).stdout(stdout).stderr(log);
        clear_sluice_env(&mut cmd);
        no_initial_rebalance_delay(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn node {}: {e}", self.id));
        self.child = Some(child);
    }

    /// Waits (bounded) until the node answers `/ping` with 200 OK; panics if it exits first.
    pub fn wait_up(&mut self) {
        let addr = self.http_socket_addr();
        let id = self.id;
        wait_until(READY_TIMEOUT, &format!("node {id} to answer /ping on {addr}"), || {
            assert!(self.is_running(), "node {id} exited while starting (log: {})", self.log_path().display());
            ping(addr)
        });
    }

    /// Whether `/ping` answers 200 now.
    pub fn ping(&self) -> bool {
        ping(self.http_socket_addr())
    }

    /// SIGKILL and reap (no-op if not running). A stopped process dies too.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): its sockets stay open, it answers nothing.
    pub fn sigstop(&mut self) {
        let pid = self.running_pid("SIGSTOP");
        send_signal(pid, "STOP");
    }

    /// Lets a frozen process run again.
    pub fn sigcont(&mut self) {
        let pid = self.running_pid("SIGCONT");
        send_signal(pid, "CONT");
    }

    /// Stops the node if it runs (SIGTERM, bounded, then SIGKILL) and starts it again with the
    /// same data dir, ports and flags; waits for `/ping`.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_up();
    }

    /// Adds flags for this node's next starts (e.g. a listener of its own).
    pub fn push_args(&mut self, args: &[&str]) {
        self.args.extend(args.iter().map(|a| a.to_string()));
    }

    /// Kills the node, empties its data dir, and starts it again (a replaced disk).
    pub fn wipe_and_restart(&mut self) {
        self.kill9();
        let data = self.data_dir();
        std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("wipe {}: {e}", data.display()));
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("create {}: {e}", data.display()));
        self.spawn();
        self.wait_up();
    }

    /// SIGTERM and wait up to `STOP_TIMEOUT`, then SIGKILL. Returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        if !matches!(child.try_wait(), Ok(None)) {
            return true;
        }
        // A frozen process cannot act on SIGTERM. Either may find it just gone: no matter.
        let _ = signal(child.id(), "CONT") && signal(child.id(), "TERM");
        if wait_timeout(&mut child, STOP_TIMEOUT).is_some() {
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Everything the node wrote, across all its starts.
    pub fn log_contents(&self) -> String {
        let mut bytes = Vec::new();
        let _ = std::fs::File::open(self.log_path()).and_then(|mut f| f.read_to_end(&mut bytes));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Prints the end of the node's log to stderr.
    pub fn dump_log(&self) {
        let log = self.log_contents();
        let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        let cut = if start > 0 { format!(" (last {LOG_TAIL_BYTES} bytes)") } else { String::new() };
        if start > 0 {
            // A panic is the cause; it may be long before the tail.
            for (n, line) in log[..start].lines().enumerate().filter(|(_, l)| l.contains("panicked at")) {
                let next: String =
                    log[..start].lines().skip(n + 1).take(PANIC_CONTEXT_LINES).collect::<Vec<_>>().join("\n");
                eprintln!("----- node {} log, before the tail: {line}\n{next}", self.id);
            }
        }
        eprintln!("----- node {} log{cut}: {} -----\n{}", self.id, self.log_path().display(), &log[start..]);
        eprintln!("----- end of node {} log -----", self.id);
    }

    fn running_pid(&mut self, what: &str) -> u32 {
        assert!(self.is_running(), "{what}: node {} is not running", self.id);
        self.pid().unwrap_or_else(|| panic!("{what}: node {} has no process", self.id))
    }

    fn http_socket_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.ports.http))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Only ever the child this harness spawned, by its own handle (PID).
        self.kill9();
    }
}

/// Sends `name` (e.g. "TERM") to one PID we own; whether `kill` succeeded.
fn signal(pid: u32, name: &str) -> bool {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).stderr(Stdio::null()).status();
    status.is_ok_and(|s| s.success())
}

/// One `GET /ping`, bounded by `PING_TIMEOUT`; true on a 200 answer.
pub fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PING_TIMEOUT) else { return false };
    let _ = stream.set_read_timeout(Some(PING_TIMEOUT));
    let _ = stream.set_write_timeout(Some(PING_TIMEOUT));
    let request = format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(PING_ANSWER_BYTES_MAX).read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).split_whitespace().nth(1) == Some("200")
}

/// The binary every node runs: this build's, or `SLUICE_TEST_BINARY` (e.g. an older build,
/// so `scripts/bench-cluster.sh` compares two builds with the same test in the same run).
fn binary() -> std::ffi::OsString {
    std::env::var_os("SLUICE_TEST_BINARY").filter(|b| !b.is_empty()).unwrap_or_else(|| SLUICE_BIN.into())
}
