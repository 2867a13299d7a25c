//! MQTT test helpers: mosquitto_pub and mosquitto_sub (Debian's mosquitto-clients) against
//! a broker's MQTT listener, and raw packets for what no real client sends.
#![allow(dead_code)]

use crate::common::{use_system_libraries, wait_until, Broker};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest one mosquitto_pub run may take (debug broker, busy machine).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a test waits for a delivery to show up.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// `mosquitto_pub` with the broker's MQTT port and `args`; asserts it succeeded.
pub fn mosquitto_pub(broker: &Broker, args: &[&str]) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string()]).args(args).stdin(Stdio::null());
    crate::common::run_ok(&mut cmd, CLIENT_TIMEOUT);
}

/// A running `mosquitto_sub` writing `%t %p` lines (topic, payload) to a file.
pub struct Subscriber {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Subscriber {
    /// Starts `mosquitto_sub` on `filters` with `extra` flags, and waits until it receives: it
    /// publishes `<probe_topic> probe` at QoS 1 until the subscriber prints it, so records
    /// appended afterwards are after its subscription.
    pub fn start(broker: &Broker, filters: &[&str], extra: &[&str], probe_topic: &str) -> Subscriber {
        let dir = tempfile::tempdir().expect("scratch dir");
        let out = dir.path().join("sub.out");
        let file = std::fs::File::create(&out).expect("sub output");
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string(), "-F", "%t %p", "-q", "1"]);
        for filter in filters {
            cmd.args(["-t", filter]);
        }
        cmd.args(extra).stdin(Stdio::null()).stdout(file).stderr(Stdio::null());
        use_system_libraries(&mut cmd);
        let child = cmd.spawn().expect("spawn mosquitto_sub");
        let sub = Subscriber { child, out, _dir: dir };
        let mut attempts = 0;
        wait_until(DELIVERY_TIMEOUT, "mosquitto_sub to receive the probe", || {
            attempts += 1;
            if attempts % 10 == 1 {
                mosquitto_pub(broker, &["-t", probe_topic, "-m", "probe", "-q", "1"]);
            }
            sub.lines().iter().any(|l| l.ends_with(" probe"))
        });
        sub
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Waits until `line` was printed.
    pub fn wait_for(&self, line: &str) {
        wait_until(DELIVERY_TIMEOUT, &format!("mosquitto_sub to print {line:?}"), || {
            self.lines().iter().any(|l| l == line)
        });
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Only the child this helper spawned, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw MQTT connection for packets no real client sends.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(broker: &Broker) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", broker.mqtt_port())).expect("connect mqtt");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        RawClient { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed (a refused packet): the read tells.
        let _ = self.stream.write_all(bytes);
    }

    /// Everything the server sends until it closes the connection; `None` if it does not
    /// close within the read timeout.
    pub fn read_until_closed(&mut self) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
                Err(_) => return None,
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).expect("read from mqtt");
        buf
    }
}

/// A CONNECT of protocol `level` (4: 3.1.1, 5: 5.0) with a clean session, `keep_alive` seconds
/// and `client_id`.
pub fn connect_packet(level: u8, keep_alive: u16, client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// `mosquitto_pub -l -q 1 -d` fed numbered lines (`reading-<n>`, message id n) as fast as it
/// takes them: which ones were acknowledged (PUBACK) is read from its debug output.
pub struct LinePublisher {
    child: Child,
    feeder: Option<std::thread::JoinHandle<()>>,
    debug_path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Lines offered to a `LinePublisher`: more than it gets through in any test.
const PUBLISHER_LINES_MAX: usize = 50_000;

impl LinePublisher {
    pub fn start(broker: &Broker, topic: &str, client_id: &str) -> LinePublisher {
        let dir = tempfile::tempdir().expect("scratch");
        let debug_path = dir.path().join("pub.out");
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string()])
            .args(["-d", "-l", "-q", "1", "-t", topic, "-i", client_id])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&debug_path).expect("debug file"))
            .stderr(Stdio::null());
        use_system_libraries(&mut cmd);
        let mut child = cmd.spawn().expect("spawn mosquitto_pub");
        let mut stdin = child.stdin.take().expect("stdin");
        // With -l each line is one message, numbered from 1: line i has message id i.
        let feeder = std::thread::spawn(move || {
            for i in 1..=PUBLISHER_LINES_MAX {
                if writeln!(stdin, "reading-{i}").is_err() {
                    return;
                }
            }
        });
        LinePublisher { child, feeder: Some(feeder), debug_path, _dir: dir }
    }

    fn debug(&self) -> String {
        std::fs::read_to_string(&self.debug_path).unwrap_or_default()
    }

    /// The message ids acknowledged so far.
    pub fn acked(&self) -> std::collections::BTreeSet<usize> {
        self.debug()
            .lines()
            .filter_map(|l| l.split_once("received PUBACK (Mid: "))
            .filter_map(|(_, rest)| rest.split(',').next()?.parse().ok())
            .collect()
    }

    /// Waits until at least `count` publishes were acknowledged.
    pub fn wait_acked(&self, count: usize) {
        wait_until(Duration::from_secs(30), "PUBACKs", || self.acked().len() >= count);
    }

    /// Ends the publisher (it is cut off mid-stream); asserts ids followed line order, so
    /// message id n carried `reading-<n>`; the acknowledged ids.
    pub fn stop(mut self) -> std::collections::BTreeSet<usize> {
        // Only the publisher this helper spawned, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
        let debug = self.debug();
        let sent: Vec<usize> = debug
            .lines()
            .filter(|l| l.contains("sending PUBLISH (d0"))
            .filter_map(|l| l.split(", m").nth(1)?.split(',').next()?.parse().ok())
            .collect();
        assert!(sent.iter().enumerate().all(|(n, mid)| n + 1 == *mid), "ids follow line order");
        self.acked()
    }
}

impl Drop for LinePublisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every value of `topic` read from its start by kcat.
pub fn kcat_values(bootstrap: &str, topic: &str) -> std::collections::BTreeSet<String> {
    let mut cmd = Command::new("kcat");
    cmd.args(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\\n"]);
    let out = crate::common::run_ok(&mut cmd, Duration::from_secs(60));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}
