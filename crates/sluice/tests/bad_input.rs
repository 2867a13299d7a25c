//! Proves malformed or hostile Kafka input (absurd frame lengths, unknown API keys, unsupported versions, corrupt CRCs, oversized messages) is rejected the way Kafka does, without harming the broker or stored data.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
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
/// The broker's exit status if the last request killed it. A process that exits closes its
/// listener before the client sees its connection close, so a new connection that is
/// accepted proves it alive; a refused one means it is gone, and its status is collected.
fn died(broker: &mut Broker) -> Option<std::process::ExitStatus> {
    if std::net::TcpStream::connect(broker.addr()).is_ok() {
        return None;
    }
    let deadline = std::time::Instant::now() + common::STOP_TIMEOUT;
    loop {
        if let Some(status) = broker.try_exit_status() {
            return Some(status);
        }
        assert!(std::time::Instant::now() < deadline, "the broker refuses connections but has not exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    let mut broker = Broker::start(&["--message-max-bytes", "10000", "--max-msg-size", "9000"]);
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
    let mut broker = Broker::start(&["--message-max-bytes", "10000", "--max-msg-size", "9000"]);
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

const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// Metadata version for raw requests: at least 4 (allow_auto_topic_creation), at most 9.
fn metadata_version(broker: &Broker) -> i16 {
    let (_, max) = supported_versions(broker, ApiKey::Metadata);
    assert!(max >= 4, "broker supports Metadata only up to v{max}");
    max.min(9)
}

#[test]
fn invalid_topic_names_are_refused_and_never_touch_the_filesystem() {
    let mut broker = Broker::start(&[]);
    let version = metadata_version(&broker);
    let long_name = "x".repeat(250);
    let names =
        [".", "..", "../escape", "../../escape2", "a/b", "/abs", "bad name", "tab\tname", "ünïcode", &long_name];
    for name in names {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            ]))
            .with_allow_auto_topic_creation(true);
        let mut raw = Raw::connect(&broker);
        let resp: MetadataResponse = raw.request(version, &req);
        assert_eq!(resp.topics.len(), 1, "{name:?}: one topic in response");
        assert_eq!(resp.topics[0].error_code, INVALID_TOPIC_EXCEPTION, "auto-creating topic {name:?}");
    }
    // The empty name too (Kafka: INVALID_TOPIC_EXCEPTION).
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(""))))
        ]))
        .with_allow_auto_topic_creation(true);
    let resp: MetadataResponse = Raw::connect(&broker).request(version, &req);
    assert_eq!(resp.topics[0].error_code, INVALID_TOPIC_EXCEPTION, "empty topic name");

    // Nothing escaped the data dir and no topic was made of any of those names.
    let mut outside: Vec<String> = std::fs::read_dir(broker.temp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, vec!["broker.log".to_string(), "data".to_string()], "files next to the data dir");
    assert!(!broker.temp_dir().parent().unwrap().join("escape").exists());
    let listed = common::topic_names(&broker.bootstrap());
    for name in names {
        assert!(!listed.iter().any(|t| t == name), "invalid topic {name:?} was created: {listed:?}");
    }
    assert_broker_healthy(&mut broker);
}

/// Requests in the robustness sweep (bounded; each is answered or closed within IO_TIMEOUT).
const SWEEP_REQUESTS: usize = 400;
/// APIs left out of random bodies: ones that may legitimately park (Produce acks=0 has no
/// reply, Fetch/JoinGroup/SyncGroup wait) or change state we check afterwards (topic and
/// config admin, record deletion).
const SWEEP_SKIP_KEYS: [i16; 10] = [0, 1, 11, 14, 19, 20, 21, 33, 37, 44];

#[test]
fn random_and_mutated_requests_never_harm_the_broker() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("bad-sweep");
    seed(&broker, &topic);

    let mut versions = Raw::connect(&broker);
    let api: ApiVersionsResponse = versions.request(0, &ApiVersionsRequest::default());
    let keys: Vec<(i16, i16, i16)> = api
        .api_keys
        .iter()
        .filter(|k| !SWEEP_SKIP_KEYS.contains(&k.api_key))
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert!(!keys.is_empty());
    let md_version = metadata_version(&broker);
    let valid_metadata = {
        let mut body = BytesMut::new();
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.clone()))))
            ]))
            .with_allow_auto_topic_creation(false)
            .encode(&mut body, md_version)
            .unwrap();
        body.to_vec()
    };

    let mut rng = common::Rng::new(0x5EED);
    let mut raw = Raw::connect(&broker);
    let (mut answered, mut closed) = (0usize, 0usize);
    let mut killers = Vec::new();
    for n in 0..SWEEP_REQUESTS {
        let correlation_id = 10_000 + n as i32;
        let (key, version, body) = if n % 2 == 0 {
            // A random body under a valid header of a random API and version.
            let (key, min, max) = keys[rng.below(keys.len() as u64) as usize];
            let version = min + rng.below((max - min + 1) as u64) as i16;
            let len = rng.below(200) as usize;
            (key, version, rng.bytes(len))
        } else {
            // A valid Metadata body, mutated: flipped bytes, truncated, or extended.
            let mut body = valid_metadata.clone();
            match rng.below(3) {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(body.len() as u64) as usize;
                        body[at] ^= 1 << rng.below(8);
                    }
                }
                1 => body.truncate(rng.below(body.len() as u64) as usize),
                _ => {
                    let extra = 1 + rng.below(64) as usize;
                    body.extend(rng.bytes(extra));
                }
            }
            (ApiKey::Metadata as i16, md_version, body)
        };
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-sweep")));
        let header_version = ApiKey::try_from(key).map(|k| k.request_header_version(version)).unwrap_or(1);
        raw.send_request_bytes(&header, header_version, &body);
        match raw.read_reply() {
            Reply::Frame(frame) => {
                answered += 1;
                assert!(frame.len() >= 4, "request {n} (key {key} v{version}): short response");
                let got = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                assert_eq!(got, correlation_id, "request {n} (key {key} v{version}): response to someone else");
            }
            Reply::Closed => {
                closed += 1;
                if let Some(status) = died(&mut broker) {
                    let head: Vec<String> = body.iter().take(24).map(|b| format!("{b:02x}")).collect();
                    killers.push(format!(
                        "request {n}: key {key} v{version}, {}-byte body {}…: broker died with {status}",
                        body.len(),
                        head.join("")
                    ));
                    broker.restart();
                }
                raw = Raw::connect(&broker);
            }
        }
        if n % 50 == 49 {
            broker.assert_running();
        }
    }
    eprintln!("robustness sweep: {SWEEP_REQUESTS} requests, {answered} answered, {closed} closed the connection");
    assert!(killers.is_empty(), "{} request(s) killed the broker:\n{}", killers.len(), killers.join("\n"));
    assert_broker_healthy(&mut broker);
    assert_seed_intact(&broker, &topic, SEED_COUNT);
}

#[test]
fn huge_array_counts_in_tiny_requests_are_refused_without_allocating() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("bad-count");
    seed(&broker, &topic);

    // Each body is a few bytes whose first array claims ~2^31 (or, as a compact array, ~2^32)
    // elements. A decoder that reserves capacity from the count before reading elements asks
    // for hundreds of GB and aborts the whole process.
    let huge_i32 = 0x7fff_ffffi32.to_be_bytes();
    let huge_uvarint = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut cases: Vec<(&str, ApiKey, i16, Vec<u8>)> = Vec::new();
    // Metadata v1: topics: [Int32 count] ...
    cases.push(("Metadata v1 topics", ApiKey::Metadata, 1, huge_i32.to_vec()));
    // ListOffsets v1: replica_id Int32, topics: [Int32 count]
    let mut lo = (-1i32).to_be_bytes().to_vec();
    lo.extend_from_slice(&huge_i32);
    cases.push(("ListOffsets v1 topics", ApiKey::ListOffsets, 1, lo));
    // ListOffsets v6 (flexible): replica_id Int32, isolation_level Int8, topics: compact array
    let mut lo6 = (-1i32).to_be_bytes().to_vec();
    lo6.push(0);
    lo6.extend_from_slice(&huge_uvarint);
    cases.push(("ListOffsets v6 topics (compact)", ApiKey::ListOffsets, 6, lo6));
    // Produce v3: transactional_id null, acks -1, timeout, topic_data: [Int32 count]
    let mut pr = (-1i16).to_be_bytes().to_vec();
    pr.extend_from_slice(&(-1i16).to_be_bytes());
    pr.extend_from_slice(&10_000i32.to_be_bytes());
    pr.extend_from_slice(&huge_i32);
    cases.push(("Produce v3 topic_data", ApiKey::Produce, 3, pr));

    let mut killers = Vec::new();
    for (n, (what, key, version, body)) in cases.into_iter().enumerate() {
        let (min, max) = supported_versions(&broker, key);
        if version < min || version > max {
            panic!("{what}: broker does not support {key:?} v{version} ({min}..{max}); pick another case");
        }
        let mut raw = Raw::connect(&broker);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(500 + n as i32)
            .with_client_id(Some(StrBytes::from_static_str("sluice-raw-test")));
        raw.send_request_bytes(&header, key.request_header_version(version), &body);
        // Closing the connection or answering with an error are both fine; dying is not.
        let _ = raw.read_reply();
        if let Some(status) = died(&mut broker) {
            // Note it, bring the broker back and try the remaining cases, so one run reports all.
            killers.push(format!("{what} ({}-byte body): broker died with {status}", body.len()));
            broker.restart();
            continue;
        }
        assert_broker_healthy(&mut broker);
    }
    assert!(killers.is_empty(), "requests with huge array counts killed the broker:\n{}", killers.join("\n"));
    assert_seed_intact(&broker, &topic, SEED_COUNT);
}
