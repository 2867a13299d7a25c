//! Proves the HTTP listener is bounded: idle and half-header connections are closed after
//! `--http-idle-timeout-ms`; at `--http-max-connections` the oldest idle connection makes
//! room and a full house of busy ones refuses the next; `/pub` and `/mpub` bodies, chunked
//! ones too, are answered 413 as nsqd does once past the limit, without reading the rest;
//! under a low descriptor limit idle HTTP connections and a connection flood neither stop a
//! Kafka client nor `/ping`; and the memory of a burst of 2,000 connections is given back.

mod common;
mod limits_support;
mod nsq_common;

use common::{acks_all_producer, produce_one, runtime, unique_topic, Broker};
use limits_support::{raise_nofile, rss_kib};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bound on any wait for the broker to answer or to close a connection.
const WAIT_MAX: Duration = Duration::from_secs(15);

fn http_port(broker: &Broker) -> u16 {
    broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    stream.set_read_timeout(Some(WAIT_MAX)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT_MAX)).expect("write timeout");
    stream
}

/// Waits (bounded by the socket's read timeout) for the broker to close `stream`; bytes the
/// broker sends before closing (a response) are skipped. Returns whether it closed.
fn closed_by_broker(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Sends one keep-alive GET and reads its (Content-Length) response; returns the status.
fn keep_alive_get(stream: &mut TcpStream, path: &str) -> u16 {
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("write request");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed before a response to {path}");
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
    }
}

fn ping(port: u16) -> u16 {
    nsq_common::http(port, "GET", "/ping", b"").0
}

#[test]
fn idle_and_half_header_connections_are_closed_after_the_idle_timeout() {
    let broker = Broker::start(&["--http-idle-timeout-ms", "300"]);
    let port = http_port(&broker);
    let mut silent = connect(port);
    let mut half_header = connect(port);
    half_header.write_all(b"GET /ping HTTP/1.1\r\nHost: 12").expect("write half a header");
    let mut kept_alive = connect(port);
    assert_eq!(keep_alive_get(&mut kept_alive, "/ping"), 200);
    assert!(closed_by_broker(&mut silent), "a silent connection stayed open");
    assert!(closed_by_broker(&mut half_header), "a connection with half a header stayed open");
    assert!(closed_by_broker(&mut kept_alive), "an idle keep-alive connection stayed open");
    assert_eq!(ping(port), 200, "the listener still serves new connections");
}

#[test]
fn at_the_connection_limit_idle_connections_make_room_and_busy_ones_refuse() {
    let broker = Broker::start(&["--http-max-connections", "4"]);
    let port = http_port(&broker);
    let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    for stream in &mut idle {
        assert_eq!(keep_alive_get(stream, "/ping"), 200);
    }
    // A fifth connection is served: the oldest idle one is closed for it.
    assert_eq!(ping(port), 200, "/ping at the limit with only idle connections open");
    assert!(closed_by_broker(&mut idle[0]), "the oldest idle connection was not closed to make room");

    // Four publishes waiting for their bodies hold every slot; `100 Continue` says the
    // handler is running (the connection is busy).
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(port);
        let head =
            "POST /pub?topic=busy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";
        stream.write_all(head.as_bytes()).expect("write head");
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).expect("read 100 Continue");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"), "expected 100 Continue");
        busy.push(stream);
    }
    let mut refused = connect(port);
    let _ = refused.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut buf = [0u8; 256];
    match refused.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut => {}
        other => panic!("a connection over the limit of busy ones was not refused: {other:?}"),
    }
    // Finishing a busy request frees its slot.
    busy[0].write_all(b"0123456789").expect("write body");
    let mut response = [0u8; 256];
    let n = busy[0].read(&mut response).expect("read pub response");
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 200"), "pub answered");
    assert_eq!(ping(port), 200);
}

/// Sends a chunked body to `path` in 64 KiB chunks, never the final chunk, up to
/// `bytes_max`, and returns the response the broker sent meanwhile ("" if none).
fn chunked_response(port: u16, path: &str, bytes_max: usize) -> String {
    let mut stream = connect(port);
    let head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < bytes_max {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).is_err() {
                break; // the broker answered and closed
            }
            sent += chunk.len();
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&response).contains("}") {
                    break;
                }
            }
        }
    }
    drop(stream);
    let _ = sender.join();
    String::from_utf8_lossy(&response).to_string()
}

#[test]
fn oversized_bodies_are_refused_413_without_reading_them_whole() {
    let broker = Broker::start(&["--max-msg-size", "1024", "--max-body-size", "4096"]);
    let port = http_port(&broker);
    // 64 MiB never ends: only a broker that stops at the limit answers before the timeout.
    let bytes_max = 64 << 20;
    let response = chunked_response(port, "/pub?topic=big", bytes_max);
    assert!(response.starts_with("HTTP/1.1 413"), "chunked /pub over the limit: {response:?}");
    assert!(response.contains("MSG_TOO_BIG"), "{response:?}");
    let response = chunked_response(port, "/mpub?topic=big", bytes_max);
    assert!(response.starts_with("HTTP/1.1 413"), "chunked /mpub over the limit: {response:?}");
    assert!(response.contains("BODY_TOO_BIG"), "{response:?}");
    let (status, body) = nsq_common::http(port, "POST", "/pub?topic=big", &[b'x'; 1025]);
    assert_eq!((status, body.contains("MSG_TOO_BIG")), (413, true), "{body}");
    let (status, _) = nsq_common::http(port, "POST", "/pub?topic=big", &[b'x'; 1024]);
    assert_eq!(status, 200, "a body at the limit is published");
}

/// The broker's open-file limit is lowered to this after it starts (util-linux `prlimit`).
const BROKER_NOFILE: u64 = 256;

fn lower_nofile(pid: u32, limit: u64) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:{limit}")])
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed: {status}");
}

#[test]
fn idle_http_connections_under_a_low_fd_limit_stop_neither_kafka_nor_ping() {
    assert!(raise_nofile(4096) >= 2048, "this test needs 2048 open files for its own connections");
    let broker = Broker::start(&["--http-max-connections", "100"]);
    lower_nofile(broker.pid().expect("pid"), BROKER_NOFILE);
    let port = http_port(&broker);
    // Far more idle connections than the broker has descriptors.
    let idle: Vec<TcpStream> = (0..2 * BROKER_NOFILE).map(|_| connect(port)).collect();
    assert_eq!(ping(port), 200, "/ping while idle connections crowd the listener");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let topic = unique_topic("fd-starved");
    let (_, offset) = produce_one(&rt, &producer, &topic, 0, b"k", b"served");
    assert_eq!(offset, 0);
    drop(idle);
}

#[test]
fn out_of_descriptors_pending_connections_are_closed_and_the_listeners_recover() {
    assert!(raise_nofile(4096) >= 2048, "this test needs 2048 open files for its own connections");
    let broker = Broker::start(&[]);
    lower_nofile(broker.pid().expect("pid"), BROKER_NOFILE);
    // Held Kafka connections use up the broker's descriptors.
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..BROKER_NOFILE {
        let stream = TcpStream::connect(broker.addr()).expect("connect kafka");
        stream.set_read_timeout(Some(WAIT_MAX)).expect("timeout");
        held.push(stream);
    }
    // One more, on each listener: closed by the broker instead of waiting in the backlog.
    let nsq_port: u16 = broker.nsq_tcp_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    for port in [broker.port(), nsq_port, http_port(&broker)] {
        let mut extra = connect(port);
        // Bytes every listener refuses and then closes (a huge Kafka frame size, NSQ's RDY
        // before SUB, a bad HTTP request line): a connection a listener did serve, because a
        // descriptor came free for a moment (another listener's spare being cycled), closes
        // too; only one left waiting in the backlog would hang.
        let _ = extra.write_all(b"  V2RDY x\n");
        assert!(closed_by_broker(&mut extra), "a connection to port {port} hung while descriptors ran out");
    }
    drop(held);
    // Descriptors back: every listener serves again.
    let served = Instant::now() + WAIT_MAX;
    while ping_once(http_port(&broker)) != Some(200) {
        assert!(Instant::now() < served, "/ping not served after descriptors came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let (_, offset) = produce_one(&rt, &producer, &unique_topic("fd-back"), 0, b"k", b"v");
    assert_eq!(offset, 0);
}

fn ping_once(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(WAIT_MAX)).ok()?;
    stream.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// Concurrent connections per burst, and bursts.
const BURST_CONNECTIONS: usize = 2_000;
const BURSTS: usize = 3;
/// RSS above the pre-burst baseline tolerated once a burst is over: glibc keeps a burst's
/// freed buffers (30-40 MiB here) unless trimmed; trimmed, about 10 MiB stays.
const RSS_RETAINED_MAX_KIB: u64 = 24 * 1024;

/// Opens `BURST_CONNECTIONS` connections, then sends a request on each, then reads each
/// response: every connection is open at once.
fn burst(port: u16) {
    let mut streams: Vec<TcpStream> = (0..BURST_CONNECTIONS).map(|_| connect(port)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let request = if i % 2 == 0 {
            "GET /stats?format=json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_string()
        } else {
            let body = "x".repeat(1024);
            format!("POST /pub?topic=burst HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n{body}")
        };
        stream.write_all(request.as_bytes()).expect("write request");
    }
    for stream in &mut streams {
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        assert!(response.starts_with(b"HTTP/1.1 200"), "burst request failed");
    }
}

#[test]
fn the_memory_of_connection_bursts_is_given_back() {
    assert!(raise_nofile(8192) >= 4096, "this test needs 4096 open files for its own connections");
    let broker = Broker::start(&["--http-max-connections", "4000"]);
    let pid = broker.pid().expect("pid");
    let port = http_port(&broker);
    assert_eq!(ping(port), 200);
    let baseline_kib = rss_kib(pid);
    let mut peak_kib = 0;
    for _ in 0..BURSTS {
        burst(port);
        peak_kib = peak_kib.max(rss_kib(pid));
    }
    let deadline = Instant::now() + WAIT_MAX;
    let mut after_kib = rss_kib(pid);
    while after_kib > baseline_kib + RSS_RETAINED_MAX_KIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after_kib = rss_kib(pid);
    }
    eprintln!("rss: baseline {baseline_kib} KiB, after bursts {peak_kib} KiB, settled {after_kib} KiB");
    assert!(
        after_kib <= baseline_kib + RSS_RETAINED_MAX_KIB,
        "RSS stayed at {after_kib} KiB after the bursts (baseline {baseline_kib} KiB)"
    );
}
