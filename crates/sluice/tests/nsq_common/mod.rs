//! NSQ test helpers: a broker with NSQ TCP, HTTP and lookupd listeners on free ports, a raw
//! protocol-V2 client over std sockets, and a minimal HTTP/1.1 client.
#![allow(dead_code)]

pub mod fake_lookupd;

use crate::common::{free_port, Broker};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const FRAME_RESPONSE: i32 = 0;
pub const FRAME_ERROR: i32 = 1;
pub const FRAME_MESSAGE: i32 = 2;
/// Longest a raw client waits for one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NsqBroker {
    pub broker: Broker,
    pub tcp: u16,
    pub http: u16,
    pub lookupd: u16,
}

impl NsqBroker {
    /// A broker with `--nsq-tcp-addr`, `--http-addr` and `--lookupd-http-addr` on free ports.
    pub fn start(extra: &[&str]) -> NsqBroker {
        let (tcp, http, lookupd) = (free_port(), free_port(), free_port());
        let mut args = vec![
            "--nsq-tcp-addr".to_string(),
            format!("127.0.0.1:{tcp}"),
            "--http-addr".to_string(),
            format!("127.0.0.1:{http}"),
            "--lookupd-http-addr".to_string(),
            format!("127.0.0.1:{lookupd}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let broker = Broker::start(&refs);
        let nsq = NsqBroker { broker, tcp, http, lookupd };
        nsq.wait_ready();
        nsq
    }

    /// The harness waits for the Kafka port; NSQ listeners are bound before it, but wait anyway.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(Instant::now() < deadline, "nsq port not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wire(&self) -> Wire {
        Wire::connect(self.tcp)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    pub fn restart(&mut self) {
        self.broker.restart();
        self.wait_ready();
    }

    /// The channel's checkpoint as last written (`docs/format.md`), or None before the first.
    pub fn checkpoint(&self, topic: &str, channel: &str) -> Option<serde_json::Value> {
        let path = self.broker.data_dir().join("channels").join(topic).join(format!("{channel}.json"));
        // Written by rename, so a file that exists is whole.
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Waits until the channel's checkpoint on disk satisfies `holds`, so that a `kill -9`
    /// from then on keeps what it describes.
    pub fn wait_checkpoint(&self, topic: &str, channel: &str, what: &str, holds: impl Fn(&serde_json::Value) -> bool) {
        crate::common::wait_until(CHECKPOINT_TIMEOUT, what, || {
            self.checkpoint(topic, channel).is_some_and(|c| holds(&c))
        });
    }

    /// The channel as the admin API reports it (depth, in_flight, deferred, finished, clients).
    pub fn channel_stats(&self, topic: &str, channel: &str) -> serde_json::Value {
        let (status, body) = http(self.http, "GET", &format!("/api/nsq/topics/{topic}/channels/{channel}"), b"");
        assert_eq!(status, 200, "channel {topic}/{channel}: {body}");
        serde_json::from_str(&body).expect("channel JSON")
    }

    /// Waits until `count` clients are subscribed to the channel (it may not exist yet).
    pub fn wait_subscribed(&self, topic: &str, channel: &str, count: u64) {
        let path = format!("/api/nsq/topics/{topic}/channels/{channel}");
        crate::common::wait_until(Duration::from_secs(20), &format!("{count} clients on {topic}/{channel}"), || {
            let (status, body) = http(self.http, "GET", &path, b"");
            let clients = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["clients"].as_u64());
            status == 200 && clients == Some(count)
        });
    }
}

/// How long a channel checkpoint may take to reach the disk (written every 500 ms; a busy machine).
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(20);

/// A raw NSQ protocol-V2 client.
pub struct Wire {
    pub stream: TcpStream,
}

impl Wire {
    pub fn connect(port: u16) -> Wire {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect nsq");
        stream.set_read_timeout(Some(FRAME_TIMEOUT)).expect("timeout");
        stream.write_all(b"  V2").expect("magic");
        Wire { stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    pub fn with_body(&mut self, line: &str, body: &[u8]) {
        let mut out = format!("{line}\n").into_bytes();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        self.send(&out);
    }

    /// `with_body` for a body the server refuses from its size alone: it answers
    /// `E_BAD_MESSAGE` and closes without reading the body (as nsqd does), so the write may
    /// fail with a broken pipe; the error frame is read afterwards all the same.
    pub fn with_refused_body(&mut self, line: &str, body: &[u8]) {
        let mut out = format!("{line}\n").into_bytes();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        let _ = self.stream.write_all(&out);
    }

    /// Reads the next frame that is not a heartbeat; `None` on EOF or timeout.
    pub fn frame(&mut self) -> Option<(i32, Vec<u8>)> {
        loop {
            let mut head = [0u8; 8];
            self.stream.read_exact(&mut head).ok()?;
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let kind = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let mut data = vec![0u8; size.checked_sub(4)?];
            self.stream.read_exact(&mut data).ok()?;
            if kind == FRAME_RESPONSE && data == b"_heartbeat_" {
                self.line("NOP");
                continue;
            }
            return Some((kind, data));
        }
    }

    pub fn expect_ok(&mut self) {
        self.expect(FRAME_RESPONSE, b"OK");
    }

    pub fn expect(&mut self, kind: i32, data: &[u8]) {
        let got = self.frame();
        assert_eq!(
            got.as_ref().map(|(k, d)| (*k, String::from_utf8_lossy(d).to_string())),
            Some((kind, String::from_utf8_lossy(data).to_string()))
        );
    }

    pub fn publish(&mut self, topic: &str, body: &[u8]) {
        self.with_body(&format!("PUB {topic}"), body);
        self.expect_ok();
    }

    /// SUB then RDY.
    pub fn subscribe(&mut self, topic: &str, channel: &str, rdy: u32) {
        self.line(&format!("SUB {topic} {channel}"));
        self.expect_ok();
        self.line(&format!("RDY {rdy}"));
    }

    pub fn message(&mut self) -> Option<Msg> {
        let (kind, data) = self.frame()?;
        assert_eq!(kind, FRAME_MESSAGE, "expected a message, got {}", String::from_utf8_lossy(&data));
        Some(Msg::parse(&data))
    }

    /// True when the server closes the connection within the frame timeout.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub timestamp_ns: i64,
    pub attempts: u16,
    pub id: String,
    pub body: Vec<u8>,
}

impl Msg {
    pub fn parse(data: &[u8]) -> Msg {
        Msg {
            timestamp_ns: i64::from_be_bytes(data[0..8].try_into().expect("ts")),
            attempts: u16::from_be_bytes([data[8], data[9]]),
            id: String::from_utf8_lossy(&data[10..26]).to_string(),
            body: data[26..].to_vec(),
        }
    }
}

pub use crate::common::http;

/// Path of a Python client program under tests/clients/nsq/.
pub fn client_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/nsq").join(name)
}

/// Runs a Python NSQ client program with args, bounded in time; returns stdout.
pub fn run_python(name: &str, args: &[String], timeout: Duration) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg(client_script(name)).args(args);
    let out = crate::common::run_ok(&mut cmd, timeout);
    String::from_utf8_lossy(&out.stdout).to_string()
}
