//! Proves request-time quotas (KIP-124, `request_percentage`) with librdkafka: AlterClientQuotas
//! refuses a percentage that is not positive and sets a tiny one for one client id, which
//! DescribeClientQuotas reads back; a producer with that client id sending small messages one
//! Produce at a time is told to back off (librdkafka's statistics report the broker's
//! throttle time) and still delivers everything, while a producer with another client id in
//! the same run is never throttled; a Metadata request under the quota answers with
//! `throttle_time_ms` too.

mod common;

use common::raw::Raw;
use common::{runtime, unique_topic, wait_until, Broker, ThrottleSeen};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A thousandth of a percent of one handler thread: 100 µs of handling per 10 s window, which
/// a few requests exceed on any machine.
const TINY_PERCENTAGE: f64 = 0.001;
/// Metadata requests sent at most before one must have been throttled.
const METADATA_REQUESTS_MAX: usize = 500;
const BUSY: &str = "busy-producer";
const FREE: &str = "free-producer";
/// The Raw client's client id (common/raw.rs).
const RAW_CLIENT: &str = "sluice-raw-test";

fn set_quota(broker: &Broker, client_id: &str, value: f64) -> (i16, String) {
    let entity = EntityData::default()
        .with_entity_type(StrBytes::from_static_str("client-id"))
        .with_entity_name(Some(StrBytes::from_string(client_id.into())));
    let op = OpData::default().with_key(StrBytes::from_static_str("request_percentage")).with_value(value);
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(vec![entity]).with_ops(vec![op])]);
    let response = Raw::connect(broker).request(1, &request);
    let entry = &response.entries[0];
    (entry.error_code, entry.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

fn described(broker: &Broker, client_id: &str) -> Vec<(String, f64)> {
    let component = ComponentData::default()
        .with_entity_type(StrBytes::from_static_str("client-id"))
        .with_match_type(0)
        .with_match(Some(StrBytes::from_string(client_id.into())));
    let request = DescribeClientQuotasRequest::default().with_components(vec![component]);
    let response = Raw::connect(broker).request(1, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let entries = response.entries.unwrap_or_default();
    entries.into_iter().flat_map(|e| e.values).map(|v| (v.key.to_string(), v.value)).collect()
}

/// Sends up to `count` small messages as `client_id`, each awaited before the next (one
/// Produce each), stopping early once `settled` holds for the largest throttle librdkafka
/// reported; that throttle.
fn produce_one_by_one(broker: &Broker, topic: &str, client_id: &str, count: usize, settled: fn(i64) -> bool) -> i64 {
    let seen = ThrottleSeen::default();
    let producer: FutureProducer<ThrottleSeen> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("client.id", client_id)
        .set("statistics.interval.ms", "100")
        .set("linger.ms", "0")
        .create_with_context(seen.clone())
        .expect("producer");
    let rt = runtime();
    for i in 0..count {
        let key = format!("{client_id}-{i}");
        let send = producer.send_result(FutureRecord::to(topic).key(&key).payload("small")).expect("queued");
        let delivered = rt.block_on(send).expect("delivery report");
        delivered.unwrap_or_else(|(e, _)| panic!("send {i} as {client_id} failed: {e}"));
        if settled(seen.0.load(Ordering::Relaxed)) {
            break;
        }
    }
    // Statistics come every 100 ms: give the last responses' figures time to be reported.
    let mut rounds = 0;
    wait_until(Duration::from_secs(10), "librdkafka's statistics after the last send", || {
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
        settled(seen.0.load(Ordering::Relaxed)) || rounds >= 5
    });
    seen.0.load(Ordering::Relaxed)
}

#[test]
fn request_percentage_throttles_the_client_it_names() {
    let broker = Broker::start(&[]);
    for bad in [0.0, -1.0] {
        let (code, message) = set_quota(&broker, BUSY, bad);
        assert_eq!(code, 42, "INVALID_REQUEST for {bad}: {message}");
    }
    assert_eq!(set_quota(&broker, BUSY, TINY_PERCENTAGE), (0, String::new()));
    assert_eq!(described(&broker, BUSY), vec![("request_percentage".to_string(), TINY_PERCENTAGE)]);

    let topic = unique_topic("request-quota");
    let throttled = produce_one_by_one(&broker, &topic, BUSY, 30, |t| t > 0);
    assert!(throttled > 0, "Produce requests at {TINY_PERCENTAGE} % of a thread are throttled");
    eprintln!("busy producer throttled up to {throttled} ms");
    let free = produce_one_by_one(&broker, &topic, FREE, 20, |_| false);
    assert_eq!(free, 0, "a client id without a quota is not throttled");

    // Metadata answers carry the throttle too (the raw client's client id gets the quota).
    assert_eq!(set_quota(&broker, RAW_CLIENT, TINY_PERCENTAGE).0, 0);
    let mut raw = Raw::connect(&broker);
    let throttled = (1..=METADATA_REQUESTS_MAX).find_map(|n| {
        let throttle = raw.request(4, &MetadataRequest::default().with_topics(None)).throttle_time_ms;
        (throttle > 0).then_some((n, throttle))
    });
    let (n, throttle) = throttled.expect("a Metadata answer with throttle_time_ms");
    eprintln!("Metadata request {n} answered with throttle_time_ms {throttle}");
}
