//! Proves malformed or hostile Kafka input (absurd frame lengths, unknown API keys, unsupported versions, corrupt CRCs, oversized messages) is rejected the way Kafka does, without harming the broker or stored data.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

use common::raw::{supported_versions, Raw, Reply};
use common::{acks_all_producer, consume_exact, produce_one, runtime, unique_topic, watermarks, Broker};

/// Messages stored before any bad input, checked intact afterwards.
const SEED_COUNT: usize = 50;

const UNSUPPORTED_VERSION: i16 = 35;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;

/// The broker still answers a fresh client: ApiVersions v0 on a new connection succeeds.
fn assert_broker_healthy(broker: &mut Broker) {
    broker.assert_running();
    let (min, max) = supported_versions(broker, ApiKey::ApiVersions);
    assert!(min == 0 && max >= 0, "ApiVersions range {min}..{max}");
}

fn seed_value(i: usize) -> Vec<u8> {
    format!("seed-{i:03}-{}", "x".repeat(i)).into_bytes()
}

/// Stores `SEED_COUNT` messages with a real client before any bad input.
fn seed(broker: &Broker, topic: &str) {
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for i in 0..SEED_COUNT {
        let got = produce_one(&rt, &producer, topic, 0, b"seed", &seed_value(i));
        assert_eq!(got, (0, i as i64));
    }
}

/// After the bad input: the seeded messages are intact and nothing else was stored
/// unless `extra` says so.
fn assert_seed_intact(broker: &Broker, topic: &str, total: usize) {
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (0, total as i64));
    let recs = consume_exact(&broker.bootstrap(), topic, 0, Offset::Beginning, total, Duration::from_secs(60));
    for (i, r) in recs.iter().take(SEED_COUNT).enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&seed_value(i)[..]), "seed {i}");
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A valid v2 RecordBatch with one record per value.
fn batch(values: &[Vec<u8>]) -> Vec<u8> {
    let ts = now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: ts,
            key: Some(Bytes::from_static(b"raw")),
            value: Some(Bytes::from(v.clone())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .expect("encode record batch");
    buf.to_vec()
}

/// Produce version to use: the broker's highest, capped at 9 (what this client encodes well),
/// and at least 3 (RecordBatch v2).
fn produce_version(broker: &Broker) -> i16 {
    let (_, max) = supported_versions(broker, ApiKey::Produce);
    assert!(max >= 3, "broker supports Produce only up to v{max}");
    max.min(9)
}

/// Sends one raw Produce (acks=-1) of `records` to partition 0; returns (error_code, base_offset).
fn raw_produce(broker: &Broker, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let version = produce_version(broker);
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.to_string()))).with_partition_data(
            vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records)))],
        ),
    ]);
    let mut raw = Raw::connect(broker);
    let resp: ProduceResponse = raw.request(version, &req);
    assert_eq!(resp.responses.len(), 1, "one topic in produce response");
    let t = &resp.responses[0];
    assert_eq!(t.name.0.as_str(), topic);
    assert_eq!(t.partition_responses.len(), 1);
    let p = &t.partition_responses[0];
    assert_eq!(p.index, 0);
    (p.error_code, p.base_offset)
}

#[test]
fn absurd_frame_lengths_close_the_connection() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("bad-len");
    seed(&broker, &topic);

    for (what, prefix) in [
        ("length 0x7fffffff", 0x7fff_ffffi32),
        ("length -1", -1),
        ("length i32::MIN", i32::MIN),
        ("length 256 MiB", 256 * 1024 * 1024),
    ] {
        let mut raw = Raw::connect(&broker);
        let mut bytes = prefix.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        raw.write_raw(&bytes);
        raw.expect_closed(what);
        assert_broker_healthy(&mut broker);
    }

    // A frame too short to hold a request header.
    let mut raw = Raw::connect(&broker);
    raw.send_frame(&[0, 18, 0]);
    raw.expect_closed("3-byte frame");
    assert_broker_healthy(&mut broker);

    assert_seed_intact(&broker, &topic, SEED_COUNT);
}

#[test]
fn unknown_api_key_is_rejected() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("bad-key");
    seed(&broker, &topic);

    let mut raw = Raw::connect(&broker);
    let header = RequestHeader::default()
        .with_request_api_key(9999)
        .with_request_api_version(0)
        .with_correlation_id(77)
        .with_client_id(Some(StrBytes::from_static_str("sluice-raw-test")));
    raw.send_request_bytes(&header, 1, &[1, 2, 3, 4]);
    match raw.read_reply() {
        Reply::Closed => {}
        Reply::Frame(frame) => {
            // An error response is acceptable too, if it is addressed to our request.
            assert!(frame.len() >= 4, "short response frame");
            let correlation = i32::from_be_bytes(frame[0..4].try_into().unwrap());
            assert_eq!(correlation, 77, "response to unknown API key has wrong correlation id");
        }
    }
    assert_broker_healthy(&mut broker);
    assert_seed_intact(&broker, &topic, SEED_COUNT);
}

#[test]
fn unsupported_api_versions_version_gets_error_35() {
    let mut broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(4242)
        .with_client_id(Some(StrBytes::from_static_str("sluice-raw-test")));
    // Body shaped like the newest version we know (v3, flexible); the broker must not need it.
    let mut body = BytesMut::new();
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-raw-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
        .encode(&mut body, 3)
        .unwrap();
    raw.send_request_bytes(&header, 2, &body);
    let frame = match raw.read_reply() {
        Reply::Frame(f) => f,
        Reply::Closed => {
            panic!("broker closed the connection instead of answering UNSUPPORTED_VERSION")
        }
    };
    // Kafka answers an unsupported ApiVersions version with a v0 response (header v0).
    let mut buf = Bytes::from(frame);
    let rh = ResponseHeader::decode(&mut buf, 0).unwrap();
    assert_eq!(rh.correlation_id, 4242);
    let resp = ApiVersionsResponse::decode(&mut buf, 0).expect("v0 ApiVersions response body");
    assert_eq!(resp.error_code, UNSUPPORTED_VERSION, "error code");
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("the error response still lists ApiVersions' own range so clients can retry");
    assert_eq!(av.min_version, 0);
    assert!(av.max_version >= 0 && av.max_version < 99);
    assert_broker_healthy(&mut broker);
}

#[test]
fn corrupt_crc_is_rejected_and_not_stored() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("bad-crc");
    seed(&broker, &topic);

    // Positive control: a valid raw batch is accepted at the next offset.
    let (err, base) = raw_produce(&broker, &topic, batch(&[b"raw-ok".to_vec()]));
    assert_eq!((err, base), (0, SEED_COUNT as i64), "valid raw produce");

    // Flip one bit in the last record byte: the CRC-32C no longer matches.
    let mut bad = batch(&[b"raw-corrupt-1".to_vec(), b"raw-corrupt-2".to_vec()]);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let (err, _) = raw_produce(&broker, &topic, bad);
    assert_eq!(err, CORRUPT_MESSAGE, "corrupted batch error code");

    // A batch whose length field disagrees with the bytes sent.
    let mut short = batch(&[b"raw-short".to_vec()]);
    short.truncate(short.len() - 5);
    let (err, _) = raw_produce(&broker, &topic, short);
    assert_ne!(err, 0, "truncated batch must be rejected");

    assert_broker_healthy(&mut broker);
    assert_seed_intact(&broker, &topic, SEED_COUNT + 1);
    let recs =
        consume_exact(&broker.bootstrap(), &topic, 0, Offset::Offset(SEED_COUNT as i64), 1, Duration::from_secs(30));
    assert_eq!(recs[0].value.as_deref(), Some(&b"raw-ok"[..]));
}

#[test]
fn message_larger_than_limit_gets_error_10() {
    let mut broker = Broker::start(&["--message-max-bytes", "10000"]);
    let topic = unique_topic("bad-size");
    seed(&broker, &topic);

    // Raw: a 20,000-byte record in one batch is refused; a 5,000-byte one is accepted.
    let (err, _) = raw_produce(&broker, &topic, batch(&[vec![b'L'; 20_000]]));
    assert_eq!(err, MESSAGE_TOO_LARGE, "oversized batch error code");
    let (err, base) = raw_produce(&broker, &topic, batch(&[vec![b'S'; 5_000]]));
    assert_eq!((err, base), (0, SEED_COUNT as i64), "batch under the limit");

    // rdkafka with a raised client-side limit: the broker's refusal surfaces as MSG_SIZE_TOO_LARGE.
    let rt = runtime();
    let producer = acks_all_producer(
        &broker.bootstrap(),
        &[("message.max.bytes", "1000000"), ("message.send.max.retries", "0"), ("message.timeout.ms", "10000")],
    );
    let big = vec![b'R'; 20_000];
    let res = rt.block_on(producer.send(
        rdkafka::producer::FutureRecord::<(), _>::to(&topic).partition(0).payload(&big),
        rdkafka::util::Timeout::After(Duration::from_secs(20)),
    ));
    match res {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {}
        other => panic!("expected MessageSizeTooLarge from the broker, got {other:?}"),
    }

    assert_broker_healthy(&mut broker);
    assert_seed_intact(&broker, &topic, SEED_COUNT + 1);
}

#[test]
fn everything_bad_in_sequence_leaves_data_intact() {
    let mut broker = Broker::start(&["--message-max-bytes", "10000"]);
    let topic = unique_topic("bad-all");
    seed(&broker, &topic);

    let mut raw = Raw::connect(&broker);
    raw.write_raw(&0x7fff_ffffi32.to_be_bytes());
    raw.expect_closed("huge length");

    let mut raw = Raw::connect(&broker);
    let header = RequestHeader::default()
        .with_request_api_key(9999)
        .with_request_api_version(0)
        .with_correlation_id(1)
        .with_client_id(None);
    raw.send_request_bytes(&header, 1, &[]);
    let _ = raw.read_reply();

    let mut bad = batch(&[b"corrupt".to_vec()]);
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    assert_eq!(raw_produce(&broker, &topic, bad).0, CORRUPT_MESSAGE);
    assert_eq!(raw_produce(&broker, &topic, batch(&[vec![0u8; 30_000]])).0, MESSAGE_TOO_LARGE);

    // Garbage bytes that are not even a frame header, then hang up.
    let mut raw = Raw::connect(&broker);
    raw.write_raw(&common::Rng::new(7).bytes(3000));
    drop(raw);

    assert_broker_healthy(&mut broker);
    assert_seed_intact(&broker, &topic, SEED_COUNT);
    // And a real client can still append.
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"after", b"after-bad-input"), (0, SEED_COUNT as i64));
}
