//! Proves raw Fetch requests honour Kafka's wait semantics: an empty fetch is parked for max_wait_ms (not answered at once, not forever), and a parked fetch returns as soon as data is appended.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};

use common::raw::{self as raw, supported_versions, Raw, IO_TIMEOUT};
use common::{acks_all_producer, produce_one, requests_from, runtime, unique_topic, wait_until, Broker};

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    raw::fetch_request(topic, 0, offset, max_wait_ms, 1024 * 1024, 1024 * 1024)
}

fn records_of(resp: &FetchResponse) -> (i16, i64, Bytes) {
    let p = &resp.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.clone().unwrap_or_default())
}

fn fetch_version(broker: &Broker) -> i16 {
    let (_, max) = supported_versions(broker, ApiKey::Fetch);
    assert!(max >= 4, "Fetch only up to v{max}");
    max.min(11)
}

#[test]
fn empty_fetch_waits_for_max_wait_ms() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("fw-empty");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"first"), (0, 0));
    let version = fetch_version(&broker);

    let mut raw = Raw::connect(&broker);
    let started = Instant::now();
    let resp: FetchResponse = raw.request(version, &fetch_request(&topic, 1, 1000));
    let waited = started.elapsed();
    let (err, hw, records) = records_of(&resp);
    eprintln!("empty fetch with max_wait_ms=1000 answered after {waited:?}");
    assert_eq!(err, 0);
    assert_eq!(hw, 1);
    assert!(records.is_empty(), "no records past the end, got {} bytes", records.len());
    // It must actually wait (a broker answering at once makes clients spin); that it answers
    // at all is bounded by the socket's read timeout, not by a figure of this machine's speed.
    assert!(waited >= Duration::from_millis(900), "empty fetch answered after only {waited:?}");
}

#[test]
fn parked_fetch_returns_when_data_arrives() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("fw-wake");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"first"), (0, 0));
    let version = fetch_version(&broker);

    // The fetch waits far longer than the socket's read timeout (IO_TIMEOUT): only the
    // append can answer it in time, so no timing threshold is needed to prove the wake-up.
    let max_wait_ms = i32::try_from(IO_TIMEOUT.as_millis() * 6).expect("wait fits i32");
    let addr = broker.addr();
    let topic_c = topic.clone();
    let (peer_tx, peer_rx) = std::sync::mpsc::channel();
    let fetcher = std::thread::spawn(move || {
        let mut raw = Raw::connect_addr(addr);
        peer_tx.send(raw.local_addr()).expect("send peer");
        let started = Instant::now();
        let resp: FetchResponse = raw.request(version, &fetch_request(&topic_c, 1, max_wait_ms));
        (started, Instant::now(), resp)
    });
    let peer = peer_rx.recv().expect("fetcher connected");
    // The broker counts a request when it dispatches it: from then on the fetch is parked.
    wait_until(Duration::from_secs(10), "the fetch to reach the broker", || {
        requests_from(&broker, peer).is_some_and(|n| n >= 1)
    });
    let sent_at = Instant::now();
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"second"), (0, 1));
    let (started, answered_at, resp) = fetcher.join().expect("the parked fetch was answered");
    let (err, hw, records) = records_of(&resp);
    assert_eq!(err, 0);
    assert_eq!(hw, 2);
    assert!(!records.is_empty(), "the parked fetch returned no records");
    let after_produce = answered_at.saturating_duration_since(sent_at);
    eprintln!(
        "parked fetch (max_wait_ms={max_wait_ms}) answered {after_produce:?} after the produce, {:?} after it was sent",
        answered_at - started
    );
}
