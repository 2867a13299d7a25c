//! `/metrics` against the real binary: a known Kafka and NSQ workload gives exact counter
//! values (messages and bytes in and out, offsets, group lag, channel counts, request
//! counts), the scrape passes `promtool check metrics`, and recovery truncation shows.

mod common;
mod nsq_common;

use common::{acks_all_producer, client_config, produce_one, run_bounded, runtime, Broker};
use nsq_common::{http, Wire, FRAME_ERROR};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kafka records produced, one request (and so one batch) each.
const KAFKA_MESSAGES: usize = 25;
const KAFKA_VALUE_BYTES: usize = 100;
/// Offset the consumer group commits: lag is `KAFKA_MESSAGES - COMMITTED`.
const COMMITTED: i64 = 10;
/// NSQ message bodies published, each with its own PUB.
const NSQ_BODIES: [&[u8]; 4] = [b"one", b"two-two", b"three-three-three", b"four"];
/// Bound on consuming what was produced.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(30);

/// A scrape as `series -> value`, the series exactly as written (`name{a="x",b="y"}`).
struct Scrape {
    text: String,
    values: HashMap<String, f64>,
}

impl Scrape {
    fn take(broker: &Broker) -> Scrape {
        let port: u16 = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
        let (status, text) = http(port, "GET", "/metrics", b"");
        assert_eq!(status, 200, "GET /metrics: {text}");
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(series, value)| (series.to_string(), value.parse::<f64>().expect("sample value")))
            .collect();
        Scrape { text, values }
    }

    /// The value of `series`; fails the test, listing what is there, when absent.
    fn get(&self, series: &str) -> f64 {
        match self.values.get(series) {
            Some(v) => *v,
            None => {
                let name = series.split('{').next().unwrap_or(series);
                let similar: Vec<&String> = self.values.keys().filter(|k| k.starts_with(name)).collect();
                panic!("no series {series} in the scrape; with that name: {similar:?}")
            }
        }
    }
}

fn partition_series(name: &str, topic: &str) -> String {
    format!("{name}{{topic=\"{topic}\",partition=\"0\"}}")
}

fn requests(protocol: &str, request: &str) -> String {
    format!("sluice_request_duration_seconds_count{{protocol=\"{protocol}\",request=\"{request}\"}}")
}

fn segment_file(broker: &Broker, topic: &str) -> PathBuf {
    broker.data_dir().join("topics").join(topic).join("0").join("00000000000000000000.log")
}

fn file_len(path: &Path) -> f64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len() as f64
}

/// Runs `promtool check metrics` on the scrape; fails, saying what is missing, without promtool.
fn promtool_check(text: &str) {
    let present = Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        present.is_ok(),
        "promtool check cannot run: promtool is not installed or not on PATH ({present:?}); \
         scripts/install-ops-test-deps.sh installs it"
    );
    let scratch = tempfile::tempdir().expect("scratch dir");
    let path = scratch.path().join("scrape.prom");
    std::fs::write(&path, text).expect("write scrape");
    let input = std::fs::File::open(&path).expect("open scrape");
    let output = run_bounded(Command::new("promtool").args(["check", "metrics"]).stdin(input), Duration::from_secs(30));
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Consumes `count` records of `topic` in group `group` (subscribed, so it has a member and
/// a generation), then commits `COMMITTED` for partition 0. Returns the still-joined consumer.
fn consume_in_group(broker: &Broker, topic: &str, group: &str, count: usize) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(&broker.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create group consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut seen = 0;
    while seen < count {
        assert!(Instant::now() < deadline, "consumed only {seen} of {count} records in {CONSUME_TIMEOUT:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => eprintln!("consumer error (continuing): {e}"),
            None => {}
        }
    }
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, 0, Offset::Offset(COMMITTED)).expect("commit offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    consumer
}

/// Publishes every body, then a subscriber takes them all, requeues the first once and
/// finishes everything. Returns both connections, still open.
fn nsq_workload(broker: &Broker, topic: &str) -> (Wire, Wire) {
    let port: u16 = broker.nsq_tcp_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("nsq port");
    let mut publisher = Wire::connect(port);
    for body in NSQ_BODIES {
        publisher.publish(topic, body);
    }
    let mut subscriber = Wire::connect(port);
    subscriber.subscribe(topic, "ch", 10);
    let mut received = Vec::new();
    for _ in NSQ_BODIES {
        received.push(subscriber.message().expect("a published message"));
    }
    subscriber.line(&format!("REQ {} 0", received[0].id));
    let again = subscriber.message().expect("the requeued message again");
    assert_eq!(again.body, received[0].body);
    assert_eq!(again.attempts, 2);
    for msg in &received {
        subscriber.line(&format!("FIN {}", msg.id));
    }
    // FIN has no reply. TOUCH of a finished message answers with an error frame (keeping the
    // connection), so once it is read every FIN before it has been applied.
    subscriber.line(&format!("TOUCH {}", received[0].id));
    let (kind, text) = subscriber.frame().expect("TOUCH answer");
    assert_eq!(kind, FRAME_ERROR, "{}", String::from_utf8_lossy(&text));
    (publisher, subscriber)
}

#[test]
fn known_workload_gives_exact_metrics_and_promtool_accepts_them() {
    let broker = Broker::start(&["--default-partitions", "1"]);
    let kafka_topic = "metrics-kafka";
    let nsq_topic = "metrics-nsq";
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let value = vec![b'v'; KAFKA_VALUE_BYTES];
    for i in 0..KAFKA_MESSAGES {
        let (_, offset) = produce_one(&rt, &producer, kafka_topic, 0, format!("k{i}").as_bytes(), &value);
        assert_eq!(offset, i as i64);
    }
    let group = consume_in_group(&broker, kafka_topic, "metrics-group", KAFKA_MESSAGES);
    let (_publisher, _subscriber) = nsq_workload(&broker, nsq_topic);

    let scrape = Scrape::take(&broker);
    let kafka = |name: &str| scrape.get(&partition_series(name, kafka_topic));
    let kafka_log_bytes = file_len(&segment_file(&broker, kafka_topic));
    assert_eq!(kafka("sluice_partition_messages_in_total"), KAFKA_MESSAGES as f64);
    assert_eq!(kafka("sluice_partition_bytes_in_total"), kafka_log_bytes, "bytes in = the batches on disk");
    assert_eq!(kafka("sluice_partition_messages_out_total"), KAFKA_MESSAGES as f64);
    assert_eq!(kafka("sluice_partition_bytes_out_total"), kafka_log_bytes, "one full read of the log, verbatim");
    assert_eq!(kafka("sluice_partition_log_start_offset"), 0.0);
    assert_eq!(kafka("sluice_partition_log_end_offset"), KAFKA_MESSAGES as f64);
    assert_eq!(kafka("sluice_partition_size_bytes"), kafka_log_bytes);
    assert_eq!(kafka("sluice_partition_segments"), 1.0);
    assert_eq!(kafka("sluice_log_recovery_truncated_bytes_total"), 0.0);
    let group_series =
        |name: &str| format!("{name}{{group=\"metrics-group\",topic=\"{kafka_topic}\",partition=\"0\"}}");
    assert_eq!(scrape.get(&group_series("sluice_group_committed_offset")), COMMITTED as f64);
    assert_eq!(scrape.get(&group_series("sluice_group_lag")), (KAFKA_MESSAGES as i64 - COMMITTED) as f64);
    assert_eq!(scrape.get("sluice_group_members{group=\"metrics-group\"}"), 1.0);
    assert!(scrape.get("sluice_group_generation{group=\"metrics-group\"}") >= 1.0);
    assert_eq!(scrape.get(&requests("kafka", "Produce")), KAFKA_MESSAGES as f64);

    let nsq = |name: &str| scrape.get(&partition_series(name, nsq_topic));
    let body_bytes: usize = NSQ_BODIES.iter().map(|b| b.len()).sum();
    assert_eq!(nsq("sluice_partition_messages_in_total"), NSQ_BODIES.len() as f64);
    assert_eq!(nsq("sluice_partition_bytes_in_total"), file_len(&segment_file(&broker, nsq_topic)));
    // Every delivery is served traffic: the requeued message went out twice.
    assert_eq!(nsq("sluice_partition_messages_out_total"), (NSQ_BODIES.len() + 1) as f64);
    assert_eq!(nsq("sluice_partition_bytes_out_total"), (body_bytes + NSQ_BODIES[0].len()) as f64);
    let channel = |name: &str| scrape.get(&format!("{name}{{topic=\"{nsq_topic}\",channel=\"ch\"}}"));
    assert_eq!(channel("sluice_nsq_channel_depth"), 0.0);
    assert_eq!(channel("sluice_nsq_channel_in_flight"), 0.0);
    assert_eq!(channel("sluice_nsq_channel_deferred"), 0.0);
    assert_eq!(channel("sluice_nsq_channel_messages_total"), NSQ_BODIES.len() as f64);
    assert_eq!(channel("sluice_nsq_channel_requeued_total"), 1.0);
    assert_eq!(channel("sluice_nsq_channel_timed_out_total"), 0.0);
    assert_eq!(channel("sluice_nsq_channel_finished_total"), NSQ_BODIES.len() as f64);
    assert_eq!(channel("sluice_nsq_channel_clients"), 1.0);
    assert_eq!(scrape.get(&requests("nsq", "PUB")), NSQ_BODIES.len() as f64);
    assert_eq!(scrape.get(&requests("nsq", "TOUCH")), 1.0);
    assert_eq!(scrape.get(&requests("nsq", "FIN")), NSQ_BODIES.len() as f64);
    assert_eq!(scrape.get(&requests("nsq", "REQ")), 1.0);
    assert_eq!(scrape.get(&requests("nsq", "SUB")), 1.0);

    // Only this test's two NSQ connections ever reached the NSQ listener.
    assert_eq!(scrape.get("sluice_connections_accepted_total{protocol=\"nsq\"}"), 2.0);
    assert_eq!(scrape.get("sluice_connections_open{protocol=\"nsq\"}"), 2.0);
    assert_eq!(scrape.get("sluice_connections_refused_total{protocol=\"kafka\"}"), 0.0);
    assert!(scrape.get("sluice_connections_open{protocol=\"kafka\"}") >= 2.0, "producer and consumer");
    // acks=all under the default flush policy `always`: every produce waited for an fsync.
    assert!(scrape.get("sluice_log_fsync_duration_seconds_count") >= 1.0);
    assert!(scrape.get("process_resident_memory_bytes") > 0.0);
    assert!(scrape.get("process_open_fds") > 0.0);
    promtool_check(&scrape.text);

    let log = broker.log_contents();
    for line in ["nsq client connected", "kafka client connected", "topic created", "group rebalanced"] {
        assert!(log.contains(line), "no '{line}' in the broker log");
    }
    drop(group);
}

/// Bytes that recovery cuts from a torn tail at start-up are counted per partition.
#[test]
fn recovery_truncation_is_counted_and_logged() {
    let mut broker = Broker::start(&["--default-partitions", "1"]);
    let topic = "metrics-torn";
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for i in 0..3 {
        produce_one(&rt, &producer, topic, 0, b"k", format!("value {i}").as_bytes());
    }
    drop(producer);
    let port: u16 = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
    let (status, _) = http(port, "POST", &format!("/channel/create?topic={topic}&channel=audit"), b"");
    assert_eq!(status, 200, "channel create");
    let checkpoint = broker.data_dir().join("channels").join(topic).join("audit.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !checkpoint.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.kill9();
    // Damage the other state files too: a half-written checkpoint and a torn offsets log tail.
    std::fs::write(&checkpoint, b"{\"floor\": 1").expect("garble the channel checkpoint");
    let offsets_garbage = [0x5Au8; 19];
    std::fs::OpenOptions::new()
        .append(true)
        .open(broker.data_dir().join("groups").join("offsets.log"))
        .and_then(|mut f| f.write_all(&offsets_garbage))
        .expect("append a torn tail to the offsets log");
    let garbage = [0xA5u8; 37];
    let segment = segment_file(&broker, topic);
    let good_len = file_len(&segment);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| f.write_all(&garbage))
        .expect("append a torn tail");
    broker.restart();

    let scrape = Scrape::take(&broker);
    assert_eq!(scrape.get(&partition_series("sluice_log_recovery_truncated_bytes_total", topic)), garbage.len() as f64);
    assert_eq!(scrape.get(&partition_series("sluice_partition_log_end_offset", topic)), 3.0);
    assert_eq!(scrape.get(&partition_series("sluice_partition_size_bytes", topic)), good_len);
    // Counters start again with the process.
    assert_eq!(scrape.get(&partition_series("sluice_partition_messages_in_total", topic)), 0.0);
    assert_eq!(scrape.get("sluice_offsets_recovery_truncated_bytes_total"), offsets_garbage.len() as f64);
    assert_eq!(scrape.get("sluice_nsq_checkpoints_damaged_total"), 1.0);
    assert_eq!(scrape.get("sluice_storage_failing"), 0.0);
    assert_eq!(scrape.get("sluice_storage_write_failures_total"), 0.0);
    let log = broker.log_contents();
    assert!(
        log.contains("recovery truncated a torn or corrupt log tail") && log.contains(topic),
        "no truncation line naming the topic in the broker log"
    );
    promtool_check(&scrape.text);
}
