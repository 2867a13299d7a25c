//! Proves client quotas (KIP-13/KIP-546) with librdkafka: AlterClientQuotas sets a
//! `producer_byte_rate` and a `consumer_byte_rate` per client id (refusing an unknown key),
//! DescribeClientQuotas reads them back, also after a restart; a producer and a consumer
//! over their quota are told to back off (librdkafka's own statistics report the broker's
//! throttle time) and still deliver and read everything; a client without a quota is never
//! throttled.

mod common;

use common::raw::Raw;
use common::{runtime, unique_topic, wait_until, Broker, ThrottleSeen};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use std::sync::atomic::Ordering;
use std::time::Duration;

const PRODUCE_QUOTA: f64 = 50_000.0;
const CONSUME_QUOTA: f64 = 100_000.0;
const MESSAGES: usize = 60;
const MESSAGE_BYTES: usize = 10_000;
const THROTTLED_PRODUCER: &str = "throttled-producer";
const THROTTLED_CONSUMER: &str = "throttled-consumer";
const TIMEOUT: Duration = Duration::from_secs(60);

fn config(broker: &Broker, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("client.id", client_id)
        .set("statistics.interval.ms", "100");
    config
}

fn set_quota(broker: &Broker, client_id: &str, key: &str, value: f64) -> (i16, String) {
    let entity = EntityData::default()
        .with_entity_type(StrBytes::from_static_str("client-id"))
        .with_entity_name(Some(StrBytes::from_string(client_id.into())));
    let op = OpData::default().with_key(StrBytes::from_string(key.into())).with_value(value);
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(vec![entity]).with_ops(vec![op])]);
    let response = Raw::connect(broker).request(1, &request);
    let entry = &response.entries[0];
    (entry.error_code, entry.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// Every client-id quota: (client id, key, value), sorted.
fn client_quotas(broker: &Broker) -> Vec<(String, String, f64)> {
    let component =
        ComponentData::default().with_entity_type(StrBytes::from_static_str("client-id")).with_match_type(2);
    let request = DescribeClientQuotasRequest::default().with_components(vec![component]);
    let response = Raw::connect(broker).request(1, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let mut out: Vec<(String, String, f64)> = response
        .entries
        .unwrap_or_default()
        .into_iter()
        .flat_map(|entry| {
            let client = entry.entity[0].entity_name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            entry.values.into_iter().map(move |v| (client.clone(), v.key.to_string(), v.value))
        })
        .collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Produces `MESSAGES` values of `MESSAGE_BYTES` as `client_id`; the largest throttle seen.
fn produce_all(broker: &Broker, topic: &str, client_id: &str) -> i64 {
    let seen = ThrottleSeen::default();
    let producer: FutureProducer<ThrottleSeen> =
        config(broker, client_id).set("acks", "all").create_with_context(seen.clone()).expect("producer");
    let rt = runtime();
    let value = vec![b'x'; MESSAGE_BYTES];
    let sends: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let key = format!("{client_id}-{i}");
            producer.send_result(FutureRecord::to(topic).key(&key).payload(&value)).expect("queued")
        })
        .collect();
    for send in sends {
        let delivered = rt.block_on(send).expect("delivery report");
        delivered.unwrap_or_else(|(e, _)| panic!("a send failed: {e}"));
    }
    // Let the statistics after the last response arrive.
    std::thread::sleep(Duration::from_millis(300));
    seen.0.load(Ordering::Relaxed)
}

#[test]
fn quotas_throttle_the_clients_they_name_and_lose_nothing() {
    let mut broker = Broker::start(&[]);
    let (code, message) = set_quota(&broker, "x", "bogus_rate", 1.0);
    assert_eq!(code, 42, "INVALID_REQUEST: {message}");
    assert_eq!(set_quota(&broker, THROTTLED_PRODUCER, "producer_byte_rate", PRODUCE_QUOTA).0, 0);
    assert_eq!(set_quota(&broker, THROTTLED_CONSUMER, "consumer_byte_rate", CONSUME_QUOTA).0, 0);
    let expected = vec![
        (THROTTLED_CONSUMER.to_string(), "consumer_byte_rate".to_string(), CONSUME_QUOTA),
        (THROTTLED_PRODUCER.to_string(), "producer_byte_rate".to_string(), PRODUCE_QUOTA),
    ];
    assert_eq!(client_quotas(&broker), expected);
    broker.restart();
    assert_eq!(client_quotas(&broker), expected, "kept across a restart");

    let topic = unique_topic("quotas");
    let free = produce_all(&broker, &topic, "free-producer");
    assert_eq!(free, 0, "a client without a quota is not throttled");
    let throttled = produce_all(&broker, &topic, THROTTLED_PRODUCER);
    assert!(throttled > 0, "600 KB at a 50 KB/s quota is throttled (largest throttle {throttled} ms)");
    eprintln!("producer throttled up to {throttled} ms");

    // The consumer reads both producers' messages, throttled, and every one of them.
    let seen = ThrottleSeen::default();
    let consumer: BaseConsumer<ThrottleSeen> = config(&broker, THROTTLED_CONSUMER)
        .set("group.id", format!("{topic}-g"))
        .set("auto.offset.reset", "earliest")
        .create_with_context(seen.clone())
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut read = 0;
    wait_until(TIMEOUT, "every message read by the throttled consumer", || {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            assert_eq!(message.payload().map(<[u8]>::len), Some(MESSAGE_BYTES));
            read += 1;
        }
        read == 2 * MESSAGES
    });
    // 1.2 MB at 100 KB/s: past the first fetch (at most the quota's window, 1 MB) it is throttled.
    wait_until(Duration::from_secs(5), "librdkafka to report the consumer throttled", || {
        seen.0.load(Ordering::Relaxed) > 0
    });
    eprintln!("consumer throttled up to {} ms", seen.0.load(Ordering::Relaxed));
}
