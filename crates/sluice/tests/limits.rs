//! Proves each resource limit answers with the protocol's own error and leaves the broker
//! serving everyone else: connections per IP (Kafka and NSQ together), idle Kafka
//! connections, oversized requests (Kafka closes; NSQ E_BAD_BODY / E_BAD_MESSAGE), Kafka
//! clients that never read their replies (dropped, memory bounded), topics per broker
//! (POLICY_VIOLATION, E_PUB_FAILED) and partitions per topic (INVALID_PARTITIONS).

mod common;
mod limits_support;
mod nsq_common;

use common::raw::{Raw, Reply};
use common::{unique_topic, Broker};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, FetchRequest, MetadataRequest,
    MetadataResponse,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request};
use limits_support::{create_topic, produce, rss_kib, topic_name, INVALID_PARTITIONS, POLICY_VIOLATION};
use nsq_common::{Wire, FRAME_ERROR};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bound on waiting for an asynchronous release (a closed connection leaving the registry).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// Opens a Kafka connection and checks it is served (ApiVersions answered); None if the
/// broker closed it (refused by a connection limit).
fn kafka_served(broker: &Broker) -> Option<Raw> {
    let mut raw = Raw::connect(broker);
    let mut body = bytes::BytesMut::new();
    ApiVersionsRequest::default().encode(&mut body, 0).expect("encode");
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(ApiVersionsRequest::KEY)
        .with_request_api_version(0)
        .with_correlation_id(1);
    raw.send_request_bytes(&header, 1, &body);
    match raw.read_reply() {
        Reply::Frame(_) => Some(raw),
        Reply::Closed => None,
    }
}

/// A served Kafka connection, retrying while connections that just closed leave the registry.
fn kafka_served_eventually(broker: &Broker) -> Raw {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Some(raw) = kafka_served(broker) {
            return raw;
        }
        assert!(Instant::now() < deadline, "no Kafka connection admitted within {SETTLE_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether an NSQ connection is served: an unknown command is answered (E_INVALID), while
/// a refused connection is closed without an answer. Write errors mean "closed" too.
fn nsq_served(broker: &Broker) -> bool {
    let Ok(mut stream) = TcpStream::connect(broker.nsq_tcp_addr()) else { return false };
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = std::io::Write::write_all(&mut stream, b"  V2NOT_A_COMMAND\n");
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok()
}

#[test]
fn connections_per_ip_are_limited_across_kafka_and_nsq() {
    let broker = Broker::start(&["--max-connections-per-ip", "3"]);
    let held: Vec<Raw> = (0..3).map(|_| kafka_served_eventually(&broker)).collect();
    assert!(kafka_served(&broker).is_none(), "a 4th Kafka connection from 127.0.0.1 is refused");
    assert!(!nsq_served(&broker), "an NSQ connection from the same IP counts against the same limit");
    drop(held);
    // Once the held connections leave the registry, new ones are admitted again.
    let _again = kafka_served_eventually(&broker);
    assert!(broker.log_contents().contains("too many connections from 127.0.0.1"), "the refusal is logged");
}

#[test]
fn idle_kafka_connections_are_closed_and_active_ones_kept() {
    const IDLE_MS: u64 = 2000;
    let broker = Broker::start(&["--connections-max-idle-ms", &IDLE_MS.to_string()]);
    let mut idle = kafka_served_eventually(&broker);
    let mut active = kafka_served_eventually(&broker);
    // The active one sends a request every 50 ms, 40 times more often than the idle limit.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(IDLE_MS * 2) {
        let _: kafka_protocol::messages::ApiVersionsResponse = active.request(0, &ApiVersionsRequest::default());
        std::thread::sleep(Duration::from_millis(50));
    }
    idle.expect_closed("a connection idle past connections.max.idle.ms");
    let _: kafka_protocol::messages::ApiVersionsResponse = active.request(0, &ApiVersionsRequest::default());
    assert!(broker.log_contents().contains("connections.max.idle.ms"), "the idle close is logged with its reason");
}

#[test]
fn oversized_requests_are_refused_by_both_protocols() {
    let broker =
        Broker::start(&["--socket-request-max-bytes", "4096", "--max-msg-size", "1024", "--max-body-size", "2048"]);
    let mut raw = kafka_served_eventually(&broker);
    raw.send_frame(&vec![0u8; 8192]);
    raw.expect_closed("a Kafka request above socket.request.max.bytes");
    let mut raw = kafka_served_eventually(&broker);
    let (code, _) = produce(&mut raw, &unique_topic("small"), &[7u8; 1000]);
    assert_eq!(code, 0, "a request within the limit is served");

    let nsq_port = port_of(&broker.nsq_tcp_addr());
    let mut wire = Wire::connect(nsq_port);
    wire.with_body("PUB big", &[1u8; 1500]);
    let (kind, body) = wire.frame().expect("an answer to an oversized PUB");
    assert_eq!(kind, FRAME_ERROR);
    assert!(body.starts_with(b"E_BAD_MESSAGE"), "{}", String::from_utf8_lossy(&body));
    let mut wire = Wire::connect(nsq_port);
    // Three messages within --max-msg-size whose body exceeds --max-body-size.
    let mut mpub = 3u32.to_be_bytes().to_vec();
    for _ in 0..3 {
        mpub.extend_from_slice(&1000u32.to_be_bytes());
        mpub.extend_from_slice(&[2u8; 1000]);
    }
    wire.with_body("MPUB big", &mpub);
    let (kind, body) = wire.frame().expect("an answer to an oversized MPUB");
    assert_eq!(kind, FRAME_ERROR);
    assert!(body.starts_with(b"E_BAD_BODY"), "{}", String::from_utf8_lossy(&body));
}

fn fetch_all(topic: &str, bytes_max: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(bytes_max)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(bytes_max),
        ])])
}

#[test]
fn a_kafka_client_that_never_reads_is_dropped_with_bounded_memory() {
    const RECORDS: usize = 64;
    const VALUE_BYTES: usize = 64 * 1024;
    const FETCHES: usize = 64;
    const FETCH_BYTES: i32 = 4 << 20;
    let broker = Broker::start(&["--socket-write-timeout-ms", "1000"]);
    let pid = broker.pid().expect("broker pid");
    let topic = unique_topic("slow-reader");
    let mut producer = kafka_served_eventually(&broker);
    for _ in 0..RECORDS {
        assert_eq!(produce(&mut producer, &topic, &[5u8; VALUE_BYTES]).0, 0);
    }
    let rss_before = rss_kib(pid);

    // 64 pipelined fetches of 4 MiB each: 256 MiB of replies, far beyond socket buffers.
    let mut stalled = TcpStream::connect(broker.addr()).expect("connect");
    let mut frames = Vec::new();
    for i in 0..FETCHES {
        let request = fetch_all(&topic, FETCH_BYTES);
        let header = kafka_protocol::messages::RequestHeader::default()
            .with_request_api_key(FetchRequest::KEY)
            .with_request_api_version(11)
            .with_correlation_id(i as i32);
        let mut buf = bytes::BytesMut::new();
        header.encode(&mut buf, FetchRequest::header_version(11)).expect("header");
        request.encode(&mut buf, 11).expect("body");
        frames.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        frames.extend_from_slice(&buf);
    }
    stalled.set_write_timeout(Some(Duration::from_secs(10))).expect("timeout");
    // The broker stops reading once its in-flight bound is reached; a partial write is fine.
    let _ = std::io::Write::write_all(&mut stalled, &frames);

    // The broker gives up on the stalled writer; reading now drains what the socket buffers
    // held and then sees the close, well short of every reply.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut peak_rss = 0;
    while !broker.log_contents().contains("client read nothing for") {
        assert!(Instant::now() < deadline, "the stalled Kafka connection was not dropped");
        peak_rss = peak_rss.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    stalled.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the dropped connection neither closed nor reset: {e}"),
        }
    }
    let all_replies = FETCHES * RECORDS * VALUE_BYTES;
    eprintln!("rss before {rss_before} KiB, peak {peak_rss} KiB; received {received} of {all_replies} reply bytes");
    assert!(received < all_replies, "the connection was cut before every reply was delivered");
    // Generous bound: the 32 queued replies of 4 MiB are the most one connection can pin.
    assert!(peak_rss < rss_before + 512 * 1024, "broker memory grew from {rss_before} KiB to {peak_rss} KiB");
    let mut fresh = kafka_served_eventually(&broker);
    assert_eq!(produce(&mut fresh, &topic, b"still served").0, 0, "other clients are served");
}

#[test]
fn topics_per_broker_are_limited_with_each_protocols_error() {
    let broker = Broker::start(&["--max-topics", "3"]);
    let mut raw = kafka_served_eventually(&broker);
    for name in ["limit-a", "limit-b", "limit-c"] {
        assert_eq!(create_topic(&mut raw, name, 1), 0, "topic {name} within the limit");
    }
    assert_eq!(create_topic(&mut raw, "limit-d", 1), POLICY_VIOLATION, "CreateTopics beyond the limit");
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name("limit-auto")))]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = raw.request(9, &metadata);
    assert_eq!(response.topics[0].error_code, POLICY_VIOLATION, "auto-creation beyond the limit");
    let mut wire = Wire::connect(port_of(&broker.nsq_tcp_addr()));
    wire.with_body("PUB limit_nsq", b"x");
    let (kind, body) = wire.frame().expect("an answer to PUB");
    assert_eq!(kind, FRAME_ERROR);
    assert!(body.starts_with(b"E_PUB_FAILED"), "{}", String::from_utf8_lossy(&body));
    assert_eq!(produce(&mut raw, "limit-a", b"existing topics still work").0, 0);
}

#[test]
fn partitions_per_topic_are_limited() {
    let broker = Broker::start(&["--max-partitions-per-topic", "4"]);
    let mut raw = kafka_served_eventually(&broker);
    assert_eq!(create_topic(&mut raw, "parts-too-many", 5), INVALID_PARTITIONS);
    assert_eq!(create_topic(&mut raw, "parts-ok", 4), 0);
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default().with_name(topic_name("parts-ok")).with_count(5)]);
    let response: CreatePartitionsResponse = raw.request(1, &grow);
    assert_eq!(response.results[0].error_code, INVALID_PARTITIONS, "CreatePartitions beyond the limit");
}
