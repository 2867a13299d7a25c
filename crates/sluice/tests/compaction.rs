//! Proves log compaction with real clients: an idempotent rdkafka producer writes many values
//! for a few keys (gzip) plus tombstones to a `cleanup.policy=compact` topic with small
//! segments; the background compactor leaves the latest value per key at its original offset
//! (offsets strictly increasing, the log end unchanged), as rdkafka, kcat and kafka-python read
//! it, across a kill -9 and restart (after which the same producer goes on), and drops
//! tombstones after `delete.retention.ms`. A keyless record is refused with INVALID_RECORD and
//! per-record errors; an NSQ PUB into the topic with E_PUB_FAILED. `max.compaction.lag.ms` gets a
//! quiet topic compacted without further writes.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use common::raw::{one_record_batch, Raw};
use common::{acks_all_producer, client_config, plain_consumer, run_ok, runtime, to_rec, unique_topic, Broker, Rec};

/// Keys written many times; the last two end with a tombstone.
const KEYS: [&str; 5] = ["k0", "k1", "k2", "k3", "k4"];
const TOMBSTONED: [&str; 2] = ["k3", "k4"];
const ROUNDS: usize = 200;
/// Bound on waiting for the compactor (it checks every second; each wait also rolls segments).
const COMPACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on reading the topic back once.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Kafka's INVALID_RECORD.
const INVALID_RECORD: i16 = 87;

fn create_compacted(rt: &tokio::runtime::Runtime, bootstrap: &str, topic: &str, delete_retention_ms: &str) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().expect("admin client");
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("segment.ms", "100")
        .set("min.compaction.lag.ms", "0")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", delete_retention_ms);
    let created = rt
        .block_on(admin.create_topics(&[new], &AdminOptions::new().request_timeout(Some(Duration::from_secs(15)))))
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

/// Sends one record and returns its offset.
fn send(rt: &tokio::runtime::Runtime, producer: &FutureProducer, topic: &str, key: &str, value: Option<&str>) -> i64 {
    let mut record = FutureRecord::<str, str>::to(topic).partition(0).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    rt.block_on(producer.send(record, Duration::from_secs(30)))
        .unwrap_or_else(|(e, _)| panic!("produce {key} to {topic}: {e}"))
        .offset
}

/// Every record from the log start to the high watermark, with rdkafka.
fn read_all(bootstrap: &str, topic: &str) -> Vec<Rec> {
    let consumer = plain_consumer(bootstrap, &[]);
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut out: Vec<Rec> = Vec::new();
    while out.last().is_none_or(|r| r.offset < high - 1) {
        assert!(Instant::now() < deadline, "read only up to {:?} of {high} in {topic}", out.last().map(|r| r.offset));
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(to_rec(&m));
        }
    }
    out
}

fn key_of(r: &Rec) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

/// Polls (bounded) until `done` holds for the records read back; each round first writes a
/// filler record, so the active segment ages past `segment.ms` and rolls.
fn wait_for(
    rt: &tokio::runtime::Runtime,
    producer: &FutureProducer,
    bootstrap: &str,
    topic: &str,
    what: &str,
    done: impl Fn(&[Rec]) -> bool,
) -> Vec<Rec> {
    let deadline = Instant::now() + COMPACTION_TIMEOUT;
    loop {
        send(rt, producer, topic, "filler", Some("f"));
        let records = read_all(bootstrap, topic);
        if done(&records) {
            return records;
        }
        assert!(Instant::now() < deadline, "{what} not seen within {COMPACTION_TIMEOUT:?}: {} records", records.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The written keys' records only (not the fillers).
fn keyed(records: &[Rec]) -> Vec<&Rec> {
    records.iter().filter(|r| KEYS.contains(&key_of(r).as_str())).collect()
}

/// Every record of partition 0 as kafka-python reads it: `[offset, key, value]`.
fn python_read_all(bootstrap: &str, topic: &str) -> Vec<serde_json::Value> {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/read_all.py");
    let out = common::run_bounded(
        Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--bootstrap", bootstrap, "--topic", topic, "--timeout", "30"])
            .stdin(Stdio::null()),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON from read_all.py ({e}): {stdout} {}", common::tail(&out.stderr, 4000)));
    assert_eq!(summary["ok"], true, "{summary}");
    summary["records"].as_array().cloned().unwrap_or_default()
}

#[test]
fn compaction_keeps_latest_value_per_key() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("compacted");
    create_compacted(&rt, &broker.bootstrap(), &topic, "3000");
    // Idempotent: its producer state must survive compaction and the restart below (the
    // fillers it sends afterwards continue its sequence).
    let producer = acks_all_producer(
        &broker.bootstrap(),
        &[("compression.type", "gzip"), ("linger.ms", "5"), ("enable.idempotence", "true")],
    );
    // Many values per key, pipelined in batches, then tombstones; `latest` is what Kafka keeps.
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let deliveries: Vec<_> = KEYS
            .iter()
            .map(|key| {
                let value = format!("{key}-{round:04}-{}", "x".repeat(20));
                let record = FutureRecord::to(&topic).partition(0).key(*key).payload(&value);
                (key.to_string(), value.clone(), producer.send_result(record).expect("enqueue"))
            })
            .collect();
        for (key, value, delivery) in deliveries {
            let offset = rt.block_on(delivery).expect("delivery").unwrap_or_else(|(e, _)| panic!("{e}")).offset;
            latest.insert(key, (offset, Some(value)));
        }
    }
    for key in TOMBSTONED {
        latest.insert(key.to_string(), (send(&rt, &producer, &topic, key, None), None));
    }
    // The compactor may already be at work: what was written shows in the log end.
    let end = common::watermarks(&broker.bootstrap(), &topic, 0).1;
    assert_eq!(end, (KEYS.len() * ROUNDS + TOMBSTONED.len()) as i64);
    let matches_latest = |records: &[Rec]| {
        let keyed = keyed(records);
        keyed.len() == KEYS.len()
            && keyed.iter().all(|r| {
                let value = r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
                latest[&key_of(r)] == (r.offset, value)
            })
    };
    let compacted = wait_for(&rt, &producer, &broker.bootstrap(), &topic, "latest value per key", matches_latest);
    assert!(compacted.windows(2).all(|w| w[0].offset < w[1].offset), "offsets strictly increase");
    eprintln!("{end} records written, {} left after compaction (fillers included)", compacted.len());

    // kcat reads the same records (tombstones as NULL).
    let kcat = run_ok(
        Command::new("kcat")
            .args(["-C", "-b", &broker.bootstrap(), "-t", &topic, "-p", "0", "-o", "beginning", "-e", "-q", "-Z"])
            .args(["-X", "broker.address.family=v4", "-f", "%o %k %s\\n"])
            .stdin(Stdio::null()),
        READ_TIMEOUT,
    );
    let kcat_keyed: Vec<String> = String::from_utf8_lossy(&kcat.stdout)
        .lines()
        .filter(|l| KEYS.iter().any(|k| l.split(' ').nth(1) == Some(k)))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = keyed(&compacted)
        .iter()
        .map(|r| {
            let value = r.value.as_ref().map_or("NULL".into(), |v| String::from_utf8_lossy(v).into_owned());
            format!("{} {} {value}", r.offset, key_of(r))
        })
        .collect();
    assert_eq!(kcat_keyed, expected, "kcat sees what rdkafka sees");
    // kafka-python too: its position passes emptied batches and gaps up to the end offset.
    let python = python_read_all(&broker.bootstrap(), &topic);
    let python_keyed: Vec<String> = python
        .iter()
        .filter(|r| KEYS.iter().any(|k| r[1].as_str() == Some(k)))
        .map(|r| format!("{} {} {}", r[0], r[1].as_str().unwrap_or_default(), r[2].as_str().unwrap_or("NULL")))
        .collect();
    assert_eq!(python_keyed, expected, "kafka-python sees what rdkafka sees");

    // A crash (kill -9) and restart keeps the compacted log as it was.
    broker.kill9();
    broker.restart();
    let restarted = read_all(&broker.bootstrap(), &topic);
    assert!(matches_latest(&restarted), "after restart: {:?}", keyed(&restarted));

    // Past delete.retention.ms the tombstones go; the other keys stay.
    let without_tombstones = |records: &[Rec]| {
        let keyed = keyed(records);
        keyed.len() == KEYS.len() - TOMBSTONED.len() && keyed.iter().all(|r| latest[&key_of(r)].0 == r.offset)
    };
    wait_for(&rt, &producer, &broker.bootstrap(), &topic, "tombstones dropped", without_tombstones);
    let http_port = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
    let metrics = common::http(http_port, "GET", "/metrics", b"").1;
    let removed = metrics
        .lines()
        .find(|l| l.starts_with("sluice_log_compaction_records_removed_total") && l.contains(&topic))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("compaction metric");
    assert!(removed > 0.0, "{removed}");
    assert!(!broker.log_contents().contains("compaction failed"), "{}", broker.log_contents());
}

#[test]
fn keyless_records_are_refused() {
    let broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("compacted-keyless");
    create_compacted(&rt, &broker.bootstrap(), &topic, "86400000");

    // rdkafka: the delivery fails with INVALID_RECORD.
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let record = FutureRecord::<(), str>::to(&topic).partition(0).payload("no key");
    let (error, _) =
        rt.block_on(producer.send(record, Duration::from_secs(30))).expect_err("a keyless record is refused");
    assert!(error.to_string().contains("InvalidRecord"), "{error}");

    // Raw Produce v8: the partition error and one record error naming record 0.
    let mut raw = Raw::connect(&broker);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.clone()))).with_partition_data(
            vec![PartitionProduceData::default().with_index(0).with_records(Some(one_record_batch(b"v")))],
        ),
    ]);
    let response = raw.request(8, &request);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, INVALID_RECORD);
    assert_eq!(partition.record_errors.len(), 1);
    assert_eq!(partition.record_errors[0].batch_index, 0);
    let message = partition.record_errors[0].batch_index_error_message.as_ref().map(|m| m.to_string());
    assert!(message.is_some_and(|m| m.contains("without key")));
    assert_eq!(common::watermarks(&broker.bootstrap(), &topic, 0).1, 0, "nothing was written");

    // NSQ PUB: nsqd's E_PUB_FAILED, then the connection closes.
    let mut nsq = std::net::TcpStream::connect(broker.nsq_tcp_addr()).expect("nsq connect");
    nsq.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut pub_command = format!("  V2PUB {topic}\n").into_bytes();
    pub_command.extend_from_slice(&5u32.to_be_bytes());
    pub_command.extend_from_slice(b"hello");
    nsq.write_all(&pub_command).unwrap();
    let mut frame = Vec::new();
    let _ = nsq.read_to_end(&mut frame);
    let text = String::from_utf8_lossy(&frame);
    assert!(text.contains("E_PUB_FAILED") && text.contains("compact"), "{text}");
}

/// `max.compaction.lag.ms` (KIP-354): with Kafka's week-long `segment.ms` nothing would ever
/// be compacted on a quiet topic, since only closed segments are; with a two-second maximum
/// lag the active segment rolls at that age and the overdue records are compacted, with no
/// further write, down to the latest value per key.
#[test]
fn max_compaction_lag_compacts_a_quiet_topic() {
    const LAG_ROUNDS: usize = 40;
    let broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("compacted-lag");
    let admin: AdminClient<DefaultClientContext> = client_config(&broker.bootstrap()).create().expect("admin client");
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("max.compaction.lag.ms", "2000");
    let created = rt
        .block_on(admin.create_topics(&[new], &AdminOptions::new().request_timeout(Some(Duration::from_secs(15)))))
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let mut last = 0;
    for round in 0..LAG_ROUNDS {
        for key in KEYS {
            last = send(&rt, &producer, &topic, key, Some(&format!("{key}-{round}")));
        }
    }
    let deadline = Instant::now() + COMPACTION_TIMEOUT;
    let records = loop {
        let records = read_all(&broker.bootstrap(), &topic);
        if records.len() == KEYS.len() {
            break records;
        }
        assert!(Instant::now() < deadline, "not compacted within {COMPACTION_TIMEOUT:?}: {} records", records.len());
        std::thread::sleep(Duration::from_millis(300));
    };
    let latest: Vec<(String, String)> = records
        .iter()
        .map(|r| (key_of(r), String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()))
        .collect();
    let expected: Vec<(String, String)> =
        KEYS.iter().map(|k| (k.to_string(), format!("{k}-{}", LAG_ROUNDS - 1))).collect();
    assert_eq!(latest, expected);
    assert_eq!(records.last().map(|r| r.offset), Some(last), "the latest records keep their offsets");
}
