//! Proves a deleted topic leaves nothing behind for its readers: Kafka groups lose the
//! topic's committed offsets (durably, across a restart), NSQ channels lose their
//! checkpoints, and NSQ subscribers of a deleted topic or channel are disconnected so they
//! reconnect and read the re-created topic from its start.

mod common;
mod group_support;
mod nsq_common;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde_json::Value;

use common::{acks_all_producer, client_config, produce_one, runtime, topic_names, unique_topic, Broker};
use group_support::{committed, Line, Streaming};
use nsq_common::{http, Wire};

/// Bound on a group joining and reading what it expects on a loaded 2-core machine.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

fn http_port(broker: &Broker) -> u16 {
    broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port")
}

fn nsq_port(broker: &Broker) -> u16 {
    broker.nsq_tcp_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("nsq port")
}

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    client_config(&broker.bootstrap()).create().expect("admin client")
}

fn create_topic(rt: &tokio::runtime::Runtime, broker: &Broker, topic: &str) {
    let results = rt
        .block_on(
            admin(broker).create_topics(&[NewTopic::new(topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new()),
        )
        .expect("create_topics");
    assert!(results.iter().all(Result::is_ok), "create {topic}: {results:?}");
}

fn delete_topic(rt: &tokio::runtime::Runtime, broker: &Broker, topic: &str) {
    send_delete_topic(rt, broker, topic);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while topic_names(&broker.bootstrap()).iter().any(|t| t == topic) {
        assert!(Instant::now() < deadline, "{topic} still listed after DeleteTopics");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send_delete_topic(rt: &tokio::runtime::Runtime, broker: &Broker, topic: &str) {
    let results = rt.block_on(admin(broker).delete_topics(&[topic], &AdminOptions::new())).expect("delete_topics");
    assert!(results.iter().all(Result::is_ok), "delete {topic}: {results:?}");
}

fn group_member(broker: &Broker, group: &str, topic: &str) -> BaseConsumer {
    let mut cfg = client_config(&broker.bootstrap());
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Reads `count` values with the group, bounded by `SETTLE_TIMEOUT`.
fn read_values(consumer: &BaseConsumer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut values = Vec::new();
    while values.len() < count {
        assert!(Instant::now() < deadline, "read only {values:?} of {count}");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    values
}

/// The admin API's committed offsets of `group` on `topic`: (committed, lag) per partition.
fn admin_offsets(broker: &Broker, group: &str, topic: &str) -> Vec<(i64, Value)> {
    let (status, body) = http(http_port(broker), "GET", &format!("/api/groups/{group}"), b"");
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "GET /api/groups/{group}: {body}");
    let detail: Value = serde_json::from_str(&body).expect("group json");
    detail["offsets"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|o| o["topic"] == topic)
                .map(|o| (o["committed_offset"].as_i64().unwrap_or(i64::MIN), o["lag"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn group_reads_all_of_a_recreated_topic_and_offsets_stay_gone_after_restart() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("deleted");
    let group = unique_topic("g");
    create_topic(&rt, &broker, &topic);
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for i in 0..10 {
        produce_one(&rt, &producer, &topic, 0, b"k", format!("old-{i}").as_bytes());
    }
    {
        let consumer = group_member(&broker, &group, &topic);
        assert_eq!(read_values(&consumer, 10).len(), 10);
        consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
        consumer.unsubscribe();
    }
    assert_eq!(committed(&broker, &group, &topic, 1), vec![10]);

    delete_topic(&rt, &broker, &topic);
    assert_eq!(committed(&broker, &group, &topic, 1), vec![-1], "offsets kept after DeleteTopics");
    create_topic(&rt, &broker, &topic);
    for i in 0..15 {
        produce_one(&rt, &producer, &topic, 0, b"k", format!("new-{i}").as_bytes());
    }
    assert_eq!(admin_offsets(&broker, &group, &topic), Vec::new(), "admin API shows offsets of a deleted topic");

    broker.restart();
    assert_eq!(committed(&broker, &group, &topic, 1), vec![-1], "offsets came back after a restart");
    assert_eq!(admin_offsets(&broker, &group, &topic), Vec::new());

    let consumer = group_member(&broker, &group, &topic);
    let values = read_values(&consumer, 15);
    let expected: Vec<String> = (0..15).map(|i| format!("new-{i}")).collect();
    assert_eq!(values, expected);
    consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
    let lag = admin_offsets(&broker, &group, &topic);
    assert_eq!(lag, vec![(15, Value::from(0))]);
}

/// Waits until the raw client's connection is closed by the server (bounded).
fn wait_closed(wire: &mut Wire, what: &str) {
    wire.stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if wire.closed() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: subscriber still connected");
    }
}

#[test]
fn nsq_subscriber_is_closed_on_kafka_topic_delete_and_recreated_channel_starts_fresh() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("nsqdel").replace('-', "_");
    let port = nsq_port(&broker);
    let mut publisher = Wire::connect(port);
    for i in 0..3 {
        publisher.publish(&topic, format!("old-{i}").as_bytes());
    }
    let mut sub = Wire::connect(port);
    sub.subscribe(&topic, "c", 10);
    for i in 0..3 {
        let m = sub.message().expect("message");
        assert_eq!(m.body, format!("old-{i}").as_bytes());
        sub.line(&format!("FIN {}", m.id));
    }
    // Let the checkpoint record the finished messages (floor 3).
    let checkpoint = broker.data_dir().join("channels").join(&topic).join("c.json");
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !std::fs::read_to_string(&checkpoint).unwrap_or_default().contains("\"floor\":3") {
        assert!(Instant::now() < deadline, "checkpoint never reached floor 3");
        std::thread::sleep(Duration::from_millis(50));
    }

    delete_topic(&rt, &broker, &topic);
    wait_closed(&mut sub, "after Kafka DeleteTopics");
    assert!(!checkpoint.exists(), "channel checkpoint kept after topic delete");

    let mut publisher = Wire::connect(port);
    for i in 0..2 {
        publisher.publish(&topic, format!("new-{i}").as_bytes());
    }
    broker.restart();
    let port = nsq_port(&broker);
    let mut sub = Wire::connect(port);
    sub.subscribe(&topic, "c", 10);
    for i in 0..2 {
        let m = sub.message().expect("message from the re-created topic");
        assert_eq!(m.body, format!("new-{i}").as_bytes());
    }
}

#[test]
fn nsq_subscriber_is_closed_on_channel_delete_but_not_on_empty() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("chdel").replace('-', "_");
    let port = nsq_port(&broker);
    let mut publisher = Wire::connect(port);
    publisher.publish(&topic, b"one");
    let mut sub = Wire::connect(port);
    sub.subscribe(&topic, "c", 10);
    assert_eq!(sub.message().expect("message").body, b"one");

    // nsqd's channel empty clears messages but keeps the clients.
    let (status, body) = http(http_port(&broker), "POST", &format!("/channel/empty?topic={topic}&channel=c"), b"");
    assert_eq!(status, 200, "{body}");
    publisher.publish(&topic, b"two");
    assert_eq!(sub.message().expect("message after empty").body, b"two");

    let (status, body) = http(http_port(&broker), "POST", &format!("/channel/delete?topic={topic}&channel=c"), b"");
    assert_eq!(status, 200, "{body}");
    wait_closed(&mut sub, "after channel delete");
    // The re-created channel is the topic's only one, so it reads from the log start.
    let mut again = Wire::connect(port);
    again.subscribe(&topic, "c", 10);
    publisher.publish(&topic, b"three");
    let bodies: Vec<Vec<u8>> = (0..3).map(|_| again.message().expect("message on the new channel").body).collect();
    assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[test]
fn pynsq_reader_reconnects_after_kafka_topic_delete() {
    let broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("pydel").replace('-', "_");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(nsq_common::client_script("pynsq_topic_delete.py")).args([
        broker.nsq_tcp_addr(),
        broker.http_addr(),
        topic.clone(),
    ]);
    let mut reader = Streaming::spawn(&mut cmd);
    reader.wait_for(SETTLE_TIMEOUT, "READY", |l| *l == Line::Out("READY".into()));
    // The reader re-creates the topic as soon as it sees its connection closed.
    send_delete_topic(&rt, &broker, &topic);
    let done = reader.wait_for(
        Duration::from_secs(90),
        "a result",
        |l| matches!(l, Line::Out(s) if s.starts_with("OK") || s.starts_with("FAIL")),
    );
    assert!(matches!(&done, Line::Out(s) if s.starts_with("OK")), "{done:?}\n{:?}", reader.seen);
}
