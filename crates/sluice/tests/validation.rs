//! Proves what the broker refuses before it writes or serves anything: a second broker on a
//! locked data directory, record batches whose record count, offset range or offset deltas
//! are inconsistent (Kafka's INVALID_RECORD, nothing appended), NSQ bodies of exactly
//! `--max-msg-size` accepted and one byte more refused, and out-of-range settings refused at
//! start from a flag, the environment or the TOML file.

mod common;
mod nsq_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::raw::{one_record_batch, supported_versions, Raw};
use common::{clear_sluice_env, consume_exact, free_port, run_bounded, unique_topic, wait_timeout, Broker, SLUICE_BIN};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use nsq_common::{http, NsqBroker, FRAME_ERROR, FRAME_RESPONSE};
use rdkafka::Offset;

/// Kafka's INVALID_RECORD error code.
const INVALID_RECORD: i16 = 87;
/// Bound on a broker that must refuse to start (debug build on a busy 2-core machine).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on reading one record back with librdkafka or an NSQ channel.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// nsqd's default `--max-msg-size`, and Sluice's.
const MAX_MSG_SIZE: usize = 1_048_576;
const RECORDS_COUNT_AT: usize = 57;
const LAST_OFFSET_DELTA_AT: usize = 23;

// ---------------------------------------------------------------------------------------------
// Item 1: the data-directory lock
// ---------------------------------------------------------------------------------------------

/// Starts `sluice serve` on `data_dir` with fresh ports and waits (bounded) for it to exit.
fn second_broker_on(data_dir: &std::path::Path) -> std::process::Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--kafka-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--nsq-tcp-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--mqtt-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--mqtt-ws-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null());
    clear_sluice_env(&mut cmd);
    run_bounded(&mut cmd, REFUSAL_TIMEOUT)
}

// A second broker on a data directory in use exits at once, non-zero, with one line naming the
// holder's PID; the first keeps serving, and after it is killed -9 the directory is free again.
#[test]
fn second_broker_on_the_same_data_dir_is_refused() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("locked");
    let (code, base) = raw_produce(&broker, &topic, vec![one_record_batch(b"first").to_vec()]);
    assert_eq!((code, base), (0, 0));

    let out = second_broker_on(&broker.data_dir());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "second broker must exit 1: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    let pid = broker.pid().expect("first broker runs");
    assert!(lines[0].starts_with("sluice: "), "{stderr:?}");
    assert!(lines[0].contains(&format!("pid {pid}")), "line must name the holder's PID {pid}: {stderr:?}");

    broker.assert_running();
    let (code, base) = raw_produce(&broker, &topic, vec![one_record_batch(b"second").to_vec()]);
    assert_eq!((code, base), (0, 1), "the first broker still owns the log");

    broker.kill9();
    broker.restart();
    let got = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, 2, READ_TIMEOUT);
    let values: Vec<Vec<u8>> = got.iter().map(|r| r.value.clone().unwrap_or_default()).collect();
    assert_eq!(values, vec![b"first".to_vec(), b"second".to_vec()]);
}

// ---------------------------------------------------------------------------------------------
// Item 2: record-count validation
// ---------------------------------------------------------------------------------------------

fn produce_version(broker: &Broker) -> i16 {
    let (_, max) = supported_versions(broker, ApiKey::Produce);
    assert!(max >= 3, "broker supports Produce only up to v{max}");
    max.min(9)
}

/// One raw Produce (acks=-1) of the concatenated `batches` to partition 0: (error code, base offset).
fn raw_produce(broker: &Broker, topic: &str, batches: Vec<Vec<u8>>) -> (i16, i64) {
    let records = Bytes::from(batches.concat());
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
    ]);
    let mut raw = Raw::connect(broker);
    let resp: ProduceResponse = raw.request(produce_version(broker), &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// One v2 batch of `values` at offsets `offsets` (deltas as given, one batch), compressed with `compression`.
fn batch_with_offsets(values: &[&[u8]], offsets: &[i64], compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = values
        .iter()
        .zip(offsets)
        .map(|(v, &offset)| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // Constant `offset - sequence` keeps the encoder to one batch.
            sequence: offset as i32 - 1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::copy_from_slice(v)),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("encode batch");
    let len = i32::from_be_bytes(buf[8..12].try_into().expect("length")) as usize + 12;
    assert_eq!(len, buf.len(), "encoder made exactly one batch");
    buf.to_vec()
}

/// Rewrites the record count and last offset delta, then the CRC, so only the count is wrong.
fn with_count(mut batch: Vec<u8>, count: i32, last_offset_delta: i32) -> Vec<u8> {
    batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&last_offset_delta.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// A batch header with no records at all, count 0 (each once took an offset).
fn empty_batch() -> Vec<u8> {
    let mut b = vec![0u8; 61];
    b[8..12].copy_from_slice(&49i32.to_be_bytes());
    b[16] = 2;
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    with_count(b, 0, 0)
}

// Batches whose record count, offset range or offset deltas lie are refused with INVALID_RECORD,
// plain and compressed; the log end never moves, and the next valid produce lands at offset 0
// and is read back by librdkafka and by an NSQ channel.
#[test]
fn inconsistent_record_batches_are_refused_and_nothing_is_appended() {
    let nsq = NsqBroker::start(&[]);
    let broker = &nsq.broker;
    let topic = unique_topic("counts");
    let mut cases: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
    {
        let one = batch_with_offsets(&[b"one"], &[0], compression);
        cases.push((format!("{compression:?}: count 1000 holding 1"), vec![with_count(one.clone(), 1000, 999)]));
        cases.push((format!("{compression:?}: count 0"), vec![with_count(one.clone(), 0, 0)]));
        cases.push((format!("{compression:?}: count 1, last delta 5"), vec![with_count(one.clone(), 1, 5)]));
        let gappy = batch_with_offsets(&[b"a", b"b", b"c"], &[0, 2, 2], compression);
        cases.push((format!("{compression:?}: offset deltas 0,2,2"), vec![gappy]));
        let two = batch_with_offsets(&[b"a", b"b"], &[0, 1], compression);
        cases.push((format!("{compression:?}: count 1 holding 2"), vec![with_count(two.clone(), 1, 0)]));
        cases.push((format!("{compression:?}: valid then bad"), vec![one.clone(), with_count(two, 3, 2)]));
    }
    cases.push(("10,000 empty batches".into(), vec![empty_batch(); 10_000]));
    for (what, batches) in cases {
        let (code, base) = raw_produce(broker, &topic, batches);
        assert_eq!((code, base), (INVALID_RECORD, -1), "{what}");
    }

    let mut wire = nsq.wire();
    wire.subscribe(&topic, "reader", 10);
    let (code, base) = raw_produce(broker, &topic, vec![one_record_batch(b"valid").to_vec()]);
    assert_eq!((code, base), (0, 0), "the log end did not move: the valid batch takes offset 0");
    let got = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, 1, READ_TIMEOUT);
    assert_eq!((got[0].offset, got[0].value.as_deref()), (0, Some(&b"valid"[..])));
    let message = wire.message().expect("the NSQ channel delivers the valid record");
    assert_eq!(message.body, b"valid");
}

// As in Kafka (ReplicaManager appends each partition on its own), a bad batch for one partition
// refuses that partition only: another partition of the same request is appended.
#[test]
fn a_bad_partition_does_not_refuse_the_others() {
    let broker = Broker::start(&["--default-partitions", "2"]);
    let topic = unique_topic("per-partition");
    let bad = with_count(one_record_batch(b"bad").to_vec(), 1000, 999);
    let good = one_record_batch(b"good").to_vec();
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.clone()))).with_partition_data(
            vec![
                PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(bad))),
                PartitionProduceData::default().with_index(1).with_records(Some(Bytes::from(good))),
            ],
        ),
    ]);
    let mut raw = Raw::connect(&broker);
    let resp: ProduceResponse = raw.request(produce_version(&broker), &req);
    let codes: Vec<(i32, i16, i64)> =
        resp.responses[0].partition_responses.iter().map(|p| (p.index, p.error_code, p.base_offset)).collect();
    assert_eq!(codes, vec![(0, INVALID_RECORD, -1), (1, 0, 0)]);
    let got = consume_exact(&broker.bootstrap(), &topic, 1, Offset::Beginning, 1, READ_TIMEOUT);
    assert_eq!(got[0].value.as_deref(), Some(&b"good"[..]));
    let (code, base) = raw_produce(&broker, &topic, vec![one_record_batch(b"after").to_vec()]);
    assert_eq!((code, base), (0, 0), "partition 0's log end did not move");
}

// ---------------------------------------------------------------------------------------------
// Item 3: NSQ message size against message_max_bytes
// ---------------------------------------------------------------------------------------------

/// The MPUB body of one message.
fn mpub_body(message: &[u8]) -> Vec<u8> {
    let mut body = 1u32.to_be_bytes().to_vec();
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    body
}

// With default settings a body of exactly --max-msg-size is accepted by PUB, DPUB, MPUB and
// HTTP /pub; one byte more is E_BAD_MESSAGE (TCP) and 413 (HTTP), as nsqd answers.
#[test]
fn nsq_body_of_max_msg_size_is_accepted_by_default() {
    let nsq = NsqBroker::start(&[]);
    let topic = unique_topic("max-msg");
    let max = vec![b'm'; MAX_MSG_SIZE];
    let over = vec![b'o'; MAX_MSG_SIZE + 1];

    let mut wire = nsq.wire();
    wire.with_body(&format!("PUB {topic}"), &max);
    wire.expect(FRAME_RESPONSE, b"OK");
    wire.with_body(&format!("DPUB {topic} 1000"), &max);
    wire.expect(FRAME_RESPONSE, b"OK");
    wire.with_body(&format!("MPUB {topic}"), &mpub_body(&max));
    wire.expect(FRAME_RESPONSE, b"OK");
    let (status, body) = http(nsq.http, "POST", &format!("/pub?topic={topic}"), &max);
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, _) = http(nsq.http, "POST", &format!("/pub?topic={topic}&defer=1000"), &max);
    assert_eq!(status, 200);

    wire.with_refused_body(&format!("PUB {topic}"), &over);
    let (kind, data) = wire.frame().expect("an error frame");
    assert_eq!(kind, FRAME_ERROR);
    assert!(String::from_utf8_lossy(&data).starts_with("E_BAD_MESSAGE"), "{}", String::from_utf8_lossy(&data));
    let mut wire = nsq.wire();
    wire.with_refused_body(&format!("DPUB {topic} 1000"), &over);
    let (kind, data) = wire.frame().expect("an error frame");
    assert_eq!(kind, FRAME_ERROR);
    assert!(String::from_utf8_lossy(&data).starts_with("E_BAD_MESSAGE"), "{}", String::from_utf8_lossy(&data));
    let (status, body) = http(nsq.http, "POST", &format!("/pub?topic={topic}"), &over);
    assert_eq!(status, 413, "{body}");

    let got = consume_exact(&nsq.broker.bootstrap(), &topic, 0, Offset::Beginning, 5, READ_TIMEOUT);
    assert!(got.iter().all(|r| r.value.as_ref().map(Vec::len) == Some(MAX_MSG_SIZE)));
}

// ---------------------------------------------------------------------------------------------
// Item 4: settings out of range are refused at start
// ---------------------------------------------------------------------------------------------

/// Where a setting comes from in one attempt.
enum Source {
    Flag(&'static str, &'static str),
    Env(&'static str, &'static str),
    Toml(&'static str),
}

/// Runs `sluice serve` with one bad setting; returns (exit code, stderr).
fn serve_with(source: &Source) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--kafka-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--nsq-tcp-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--mqtt-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--mqtt-ws-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    clear_sluice_env(&mut cmd);
    match source {
        Source::Flag(flag, value) => {
            cmd.arg(flag).arg(value);
        }
        Source::Env(key, value) => {
            cmd.env(key, value);
        }
        Source::Toml(text) => {
            let path = dir.path().join("sluice.toml");
            std::fs::write(&path, text).expect("write toml");
            cmd.arg("--config").arg(path);
        }
    }
    let mut child = cmd.spawn().expect("spawn sluice");
    let status = wait_timeout(&mut child, REFUSAL_TIMEOUT);
    if status.is_none() {
        // Only the child this test spawned, by its handle.
        let _ = child.kill();
        let _ = child.wait();
        return (None, String::new());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read as _;
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.and_then(|s| s.code()), stderr)
}

// Every out-of-range setting is refused at start with exit 2 and one line naming the setting,
// the value and the range, whether it comes from a flag, the environment or the TOML file.
#[test]
fn out_of_range_settings_are_refused_at_start() {
    let cases: Vec<(Source, &str, &str)> = vec![
        (Source::Flag("--message-max-bytes", "0"), "message_max_bytes", "= 0"),
        (Source::Env("SLUICE_MESSAGE_MAX_BYTES", "0"), "message_max_bytes", "= 0"),
        (Source::Toml("message_max_bytes = 0\n"), "message_max_bytes", "= 0"),
        (Source::Flag("--retention-ms", "-5"), "retention_ms", "= -5"),
        (Source::Env("SLUICE_RETENTION_MS", "-5"), "retention_ms", "= -5"),
        (Source::Toml("retention_ms = -5\n"), "retention_ms", "= -5"),
        (Source::Flag("--retention-bytes", "-2"), "retention_bytes", "= -2"),
        (Source::Toml("segment_bytes = 10\n"), "segment_bytes", "= 10"),
        (Source::Flag("--segment-bytes", "4294967296"), "segment_bytes", "= 4294967296"),
        (Source::Env("SLUICE_OFFSETS_RETENTION_MS", "0"), "offsets_retention_ms", "= 0"),
        (Source::Flag("--offsets-topic-partitions", "0"), "offsets_topic_partitions", "= 0"),
        (Source::Env("SLUICE_OFFSETS_TOPIC_PARTITIONS", "1001"), "offsets_topic_partitions", "= 1001"),
        (Source::Flag("--default-partitions", "0"), "default_partitions", "= 0"),
        (Source::Flag("--max-msg-size", "0"), "max_msg_size", "= 0"),
        (Source::Toml("max_body_size = 0\n"), "max_body_size", "= 0"),
        (Source::Flag("--max-rdy-count", "0"), "max_rdy_count", "= 0"),
        (Source::Flag("--msg-timeout", "0ms"), "msg_timeout", "= 0ms"),
        (Source::Flag("--log-level", "sluice=loudest"), "log_level", "sluice=loudest"),
        (Source::Flag("--log-format", "xml"), "log_format", "= xml"),
        (Source::Flag("--flush", "interval:0"), "flush", "interval:0"),
        (Source::Env("SLUICE_CONNECTIONS_MAX_IDLE_MS", "0"), "connections_max_idle_ms", "= 0"),
        (Source::Flag("--socket-request-max-bytes", "10"), "socket_request_max_bytes", "= 10"),
        // NSQ TLS and AUTH (nsqd's flags): TLS required needs certificates; an auth server is
        // reached over http or https only.
        (Source::Flag("--tls-required", "true"), "tls_required", "= true"),
        (Source::Toml("tls_min_version = \"ssl3.0\"\n"), "tls_min_version", "ssl3.0"),
        (Source::Env("SLUICE_AUTH_HTTP_ADDRESS", "ftp://auth/x"), "auth_http_addresses", "ftp://auth/x"),
        // A max-size NSQ message (PUB, DPUB, one-body MPUB) must fit into message_max_bytes.
        (Source::Flag("--message-max-bytes", "1048588"), "max_msg_size", "1048588"),
        (
            Source::Toml("max_msg_size = 2000000\nmax_body_size = 5000000\nmessage_max_bytes = 2000000\n"),
            "max_msg_size",
            "2000000",
        ),
    ];
    for (source, key, value) in &cases {
        let (code, stderr) = serve_with(source);
        let what = match source {
            Source::Flag(f, v) => format!("{f} {v}"),
            Source::Env(k, v) => format!("{k}={v}"),
            Source::Toml(t) => format!("toml {t:?}"),
        };
        assert_eq!(code, Some(2), "{what}: must be refused at start with exit 2, stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line expected: {stderr:?}");
        assert!(lines[0].starts_with("sluice: "), "{what}: {stderr:?}");
        assert!(lines[0].contains(key) && lines[0].contains(value), "{what}: must name {key} and {value}: {stderr:?}");
        assert!(
            lines[0].contains("must be") || lines[0].contains("too small"),
            "{what}: must give the range: {stderr:?}"
        );
    }
}

// Kafka's conventions still start: -1 means unlimited retention, 0 retention bytes keeps only
// the active segment, and a message_max_bytes that fits the NSQ limit is kept as given.
#[test]
fn boundary_settings_start() {
    let started = Instant::now();
    let mut broker = Broker::start(&[
        "--retention-ms",
        "-1",
        "--retention-bytes",
        "-1",
        "--message-max-bytes",
        "1048689",
        "--segment-bytes",
        "1024",
    ]);
    broker.assert_running();
    let (code, base) = raw_produce(&broker, &unique_topic("bounds"), vec![one_record_batch(b"x").to_vec()]);
    assert_eq!((code, base), (0, 0), "started after {:?}", started.elapsed());
}
