//! Proves the rdkafka crate (librdkafka) works unchanged: idempotent acks=all produce with exact delivery offsets, group-less consume with seek to beginning/end/timestamp, long-poll fetch woken by an append, and the admin API.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use common::{
    client_config, consume_exact, partition_count, plain_consumer, runtime, to_rec, topic_names, unique_topic,
    watermarks, Broker,
};

/// Messages sent by the idempotent producer test.
const IDEMPOTENT_COUNT: usize = 2_000;
/// Bound on consuming a test topic back.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("create idempotent producer")
}

fn payload(i: usize) -> Vec<u8> {
    let mut v = format!("payload-{i:05}-").into_bytes();
    v.extend((0..(i % 200)).map(|j| (i * 31 + j) as u8));
    v
}

/// Sends `count` messages concurrently and returns each delivery's (partition, offset) in send order.
async fn send_all(producer: &FutureProducer, topic: &str, count: usize, start: usize) -> Vec<(i32, i64)> {
    let mut futures = Vec::with_capacity(count);
    for i in start..start + count {
        let key = format!("key-{i}");
        let value = payload(i);
        let headers = OwnedHeaders::new().insert(Header { key: "seq", value: Some(i.to_string().as_bytes()) });
        let record = FutureRecord::to(topic).partition(0).key(&key).payload(&value).headers(headers);
        let fut = producer.send_result(record).unwrap_or_else(|(e, _)| panic!("enqueue message {i}: {e}"));
        futures.push(fut);
    }
    let mut out = Vec::with_capacity(count);
    for (n, fut) in futures.into_iter().enumerate() {
        let delivery = fut
            .await
            .expect("delivery future not cancelled")
            .unwrap_or_else(|(e, _)| panic!("delivery of message {} failed: {e}", start + n));
        out.push((delivery.partition, delivery.offset));
    }
    out
}

#[test]
fn idempotent_producer_offsets_and_exact_consume() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("rdk-idem");
    let rt = runtime();
    let producer = idempotent_producer(&broker.bootstrap());

    let deliveries = rt.block_on(send_all(&producer, &topic, IDEMPOTENT_COUNT, 0));
    for (i, (partition, offset)) in deliveries.iter().enumerate() {
        assert_eq!(*partition, 0, "message {i} partition");
        assert_eq!(*offset, i as i64, "message {i} delivery offset");
    }

    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, IDEMPOTENT_COUNT, CONSUME_TIMEOUT);
    for (i, rec) in recs.iter().enumerate() {
        assert_eq!(rec.offset, i as i64, "consumed offset at position {i}");
        assert_eq!(rec.key.as_deref(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(rec.value.as_deref(), Some(&payload(i)[..]), "payload {i}");
        assert_eq!(rec.headers, vec![("seq".to_string(), Some(i.to_string().into_bytes()))], "headers of {i}");
    }
    assert_eq!(watermarks(&broker.bootstrap(), &topic, 0), (0, IDEMPOTENT_COUNT as i64));
}

#[test]
fn seek_to_end_and_to_timestamp() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("rdk-seek");
    let rt = runtime();
    let producer = idempotent_producer(&broker.bootstrap());

    // Ten messages with explicit, increasing create-timestamps one second apart.
    let base_ts: i64 = 1_700_000_000_000;
    rt.block_on(async {
        for i in 0..10i64 {
            let value = format!("ts-{i}");
            let delivery = producer
                .send(
                    FutureRecord::<(), _>::to(&topic).partition(0).payload(&value).timestamp(base_ts + i * 1000),
                    Timeout::After(Duration::from_secs(30)),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("deliver ts-{i}: {e}"));
            assert_eq!(delivery.offset, i, "offset of ts-{i}");
        }
    });

    // offsets_for_times: the first offset whose timestamp >= base+4500 is offset 5.
    let consumer = plain_consumer(&broker.bootstrap(), &[]);
    let mut query = TopicPartitionList::new();
    query.add_partition_offset(&topic, 0, Offset::Offset(base_ts + 4_500)).unwrap();
    let found = consumer.offsets_for_times(query, Duration::from_secs(10)).expect("offsets_for_times");
    let elem = found.find_partition(&topic, 0).expect("partition in result");
    assert_eq!(elem.offset(), Offset::Offset(5), "offset for timestamp");

    // A timestamp after the last message resolves to the end (Kafka: -1 / end of log).
    let mut late = TopicPartitionList::new();
    late.add_partition_offset(&topic, 0, Offset::Offset(base_ts + 60_000)).unwrap();
    let found = consumer.offsets_for_times(late, Duration::from_secs(10)).expect("offsets_for_times (late)");
    let off = found.find_partition(&topic, 0).unwrap().offset();
    assert!(
        matches!(off, Offset::End | Offset::Offset(10)),
        "timestamp past the log should resolve to end, got {off:?}"
    );

    // Consuming from the timestamp-resolved offset yields exactly ts-5..ts-9 with their timestamps.
    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Offset(5), 5, CONSUME_TIMEOUT);
    for (n, rec) in recs.iter().enumerate() {
        let i = n as i64 + 5;
        assert_eq!(rec.offset, i);
        assert_eq!(rec.value.as_deref(), Some(format!("ts-{i}").as_bytes()));
        assert_eq!(rec.timestamp_ms, Some(base_ts + i * 1000), "timestamp of ts-{i}");
    }

    // Assign at End, then produce one more: only that one arrives, at offset 10.
    let end_consumer = plain_consumer(&broker.bootstrap(), &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::End).unwrap();
    end_consumer.assign(&tpl).unwrap();
    // Let the consumer resolve End (to offset 10) before the new message exists; otherwise End
    // could resolve after it and legitimately skip it. (librdkafka exposes no "resolved" signal:
    // position() stays invalid until a message arrives, so this is a generous settle time.)
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        if let Some(Ok(m)) = end_consumer.poll(Duration::from_millis(100)) {
            panic!("consumer at End received an old message: {:?}", to_rec(&m));
        }
    }
    rt.block_on(async {
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).partition(0).payload("after-end"),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("deliver after-end: {e}"));
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let rec = loop {
        assert!(Instant::now() < deadline, "message after End never arrived");
        if let Some(Ok(m)) = end_consumer.poll(Duration::from_millis(200)) {
            break to_rec(&m);
        }
    };
    assert_eq!(rec.offset, 10);
    assert_eq!(rec.value.as_deref(), Some(&b"after-end"[..]));

    // And seek() on an assigned consumer moves back to the beginning.
    end_consumer.seek(&topic, 0, Offset::Beginning, Duration::from_secs(10)).expect("seek to beginning");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rec = loop {
        assert!(Instant::now() < deadline, "nothing after seek to beginning");
        if let Some(Ok(m)) = end_consumer.poll(Duration::from_millis(200)) {
            break to_rec(&m);
        }
    };
    assert_eq!(rec.offset, 0, "first record after seek(Beginning)");
    assert_eq!(rec.value.as_deref(), Some(&b"ts-0"[..]));
}

/// How long the consumer's fetch may be parked, and half of it: how long the test waits for
/// the message produced meanwhile.
const LONG_POLL_MS: &str = "120000";
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn long_poll_fetch_is_woken_by_append() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("rdk-longpoll");
    let rt = runtime();
    let producer = idempotent_producer(&broker.bootstrap());
    // Create the topic and warm up the producer's connection.
    rt.block_on(send_all(&producer, &topic, 1, 0));

    let bootstrap = broker.bootstrap();
    let topic_c = topic.clone();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (got_tx, got_rx) = mpsc::channel::<(Instant, common::Rec)>();
    let consumer_thread = std::thread::spawn(move || {
        let consumer = plain_consumer(&bootstrap, &[("fetch.wait.max.ms", LONG_POLL_MS), ("fetch.min.bytes", "1")]);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic_c, 0, Offset::Offset(1)).unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + RECEIVE_TIMEOUT;
        let mut signalled = false;
        let started = Instant::now();
        while Instant::now() < deadline {
            // After 1.5 s of polling the first (empty) fetch is parked on the broker.
            if !signalled && started.elapsed() > Duration::from_millis(1500) {
                ready_tx.send(()).unwrap();
                signalled = true;
            }
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                got_tx.send((Instant::now(), to_rec(&m))).unwrap();
                return;
            }
        }
    });

    ready_rx.recv_timeout(Duration::from_secs(30)).expect("consumer thread ready");
    let sent_at = Instant::now();
    rt.block_on(async {
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).partition(0).payload("wake-up"),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("deliver wake-up: {e}"));
    });
    // The parked fetch waits twice as long as we wait for the message: only the append's
    // wake-up can deliver it in time, so no timing threshold is needed.
    let (received_at, rec) = got_rx
        .recv_timeout(RECEIVE_TIMEOUT)
        .expect("long-polling consumer never received the message: the append did not wake the fetch");
    consumer_thread.join().unwrap();
    let latency = received_at.duration_since(sent_at);
    eprintln!("long-poll: message produced after the fetch was parked arrived in {latency:?} (fetch.wait.max.ms={LONG_POLL_MS})");
    assert_eq!(rec.offset, 1);
    assert_eq!(rec.value.as_deref(), Some(&b"wake-up"[..]));
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("create admin client")
}

fn admin_opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(15)))
}

#[test]
fn admin_create_delete_partitions_configs() {
    let broker = Broker::start(&[]);
    let rt = runtime();
    let admin = admin(&broker.bootstrap());
    let a = unique_topic("rdk-admin-a");
    let b = unique_topic("rdk-admin-b");
    let c = unique_topic("rdk-admin-c");

    let created = rt
        .block_on(admin.create_topics(
            &[
                NewTopic::new(&a, 3, TopicReplication::Fixed(1)),
                NewTopic::new(&b, 1, TopicReplication::Fixed(1)),
                NewTopic::new(&c, 2, TopicReplication::Fixed(1)),
            ],
            &admin_opts(),
        ))
        .expect("create_topics request");
    for r in &created {
        assert!(r.is_ok(), "create_topics result: {r:?}");
    }
    assert_eq!(partition_count(&broker.bootstrap(), &a), Some(3));
    assert_eq!(partition_count(&broker.bootstrap(), &b), Some(1));
    assert_eq!(partition_count(&broker.bootstrap(), &c), Some(2));

    // Creating an existing topic fails with TOPIC_ALREADY_EXISTS.
    let again = rt
        .block_on(admin.create_topics(&[NewTopic::new(&a, 3, TopicReplication::Fixed(1))], &admin_opts()))
        .expect("create_topics request (duplicate)");
    assert_eq!(again, vec![Err((a.clone(), RDKafkaErrorCode::TopicAlreadyExists))]);

    // Delete exactly `b`; `a` and `c` remain.
    let deleted = rt.block_on(admin.delete_topics(&[&b], &admin_opts())).expect("delete_topics request");
    assert_eq!(deleted, vec![Ok(b.clone())]);
    let names = topic_names(&broker.bootstrap());
    assert!(!names.contains(&b), "deleted topic {b} still listed: {names:?}");
    assert!(names.contains(&a), "topic {a} vanished: {names:?}");
    assert!(names.contains(&c), "topic {c} vanished: {names:?}");

    // Grow `a` from 3 to 5 partitions, then produce to the new last partition.
    let grown = rt
        .block_on(admin.create_partitions(&[NewPartitions::new(&a, 5)], &admin_opts()))
        .expect("create_partitions request");
    assert_eq!(grown, vec![Ok(a.clone())]);
    assert_eq!(partition_count(&broker.bootstrap(), &a), Some(5));
    let producer = idempotent_producer(&broker.bootstrap());
    let delivery = rt
        .block_on(
            producer.send(
                FutureRecord::<(), _>::to(&a).partition(4).payload("p4"),
                Timeout::After(Duration::from_secs(30)),
            ),
        )
        .unwrap_or_else(|(e, _)| panic!("produce to new partition 4: {e}"));
    assert_eq!((delivery.partition, delivery.offset), (4, 0));
    let recs = consume_exact(&broker.bootstrap(), &a, 4, Offset::Beginning, 1, CONSUME_TIMEOUT);
    assert_eq!(recs[0].value.as_deref(), Some(&b"p4"[..]));

    // Shrinking is refused (INVALID_PARTITIONS in Kafka).
    let shrink = rt
        .block_on(admin.create_partitions(&[NewPartitions::new(&a, 2)], &admin_opts()))
        .expect("create_partitions request (shrink)");
    assert!(matches!(&shrink[..], [Err((name, _))] if name == &a), "shrinking partitions should fail: {shrink:?}");
    assert_eq!(partition_count(&broker.bootstrap(), &a), Some(5));

    // describe_configs answers for an existing topic with at least one entry.
    let configs = rt
        .block_on(admin.describe_configs(&[ResourceSpecifier::Topic(&c)], &admin_opts()))
        .expect("describe_configs request");
    assert_eq!(configs.len(), 1);
    let resource = configs[0].as_ref().unwrap_or_else(|e| panic!("describe_configs({c}) failed: {e:?}"));
    assert!(!resource.entries.is_empty(), "describe_configs({c}) returned no entries");
    eprintln!(
        "describe_configs({c}): {:?}",
        resource.entries.iter().map(|e| (e.name.as_str(), e.value.as_deref())).collect::<Vec<_>>()
    );
}

#[test]
fn produce_to_unknown_partition_fails() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("rdk-nopart");
    let rt = runtime();
    let producer: FutureProducer =
        client_config(&broker.bootstrap()).set("acks", "all").set("message.timeout.ms", "5000").create().unwrap();
    // Auto-create with 1 partition, then address partition 7.
    rt.block_on(send_all(&producer, &topic, 1, 0));
    let res = rt.block_on(
        producer
            .send(FutureRecord::<(), _>::to(&topic).partition(7).payload("x"), Timeout::After(Duration::from_secs(15))),
    );
    match res {
        Err((KafkaError::MessageProduction(code), _)) => assert!(
            matches!(code, RDKafkaErrorCode::UnknownPartition | RDKafkaErrorCode::UnknownTopicOrPartition),
            "unexpected error code {code:?}"
        ),
        other => panic!("producing to a nonexistent partition should fail, got {other:?}"),
    }
    assert_eq!(watermarks(&broker.bootstrap(), &topic, 0), (0, 1));
}

/// Producers writing one partition at the same time in the concurrency test.
const CONCURRENT_PRODUCERS: usize = 4;
/// Messages each of them sends.
const PER_PRODUCER: usize = 2_000;

#[test]
fn concurrent_producers_on_one_partition_each_get_distinct_offsets() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("rdk-concurrent");
    // Create the topic first so no producer races the auto-creation.
    let rt = runtime();
    rt.block_on(send_all(&idempotent_producer(&broker.bootstrap()), &topic, 1, 0));

    let threads: Vec<_> = (0..CONCURRENT_PRODUCERS)
        .map(|p| {
            let bootstrap = broker.bootstrap();
            let topic = topic.clone();
            std::thread::spawn(move || {
                let rt = runtime();
                let producer = idempotent_producer(&bootstrap);
                rt.block_on(async {
                    let mut futs = Vec::with_capacity(PER_PRODUCER);
                    for i in 0..PER_PRODUCER {
                        let v = format!("producer-{p}-msg-{i:05}");
                        futs.push(
                            producer
                                .send_result(FutureRecord::<(), _>::to(&topic).partition(0).payload(&v))
                                .unwrap_or_else(|(e, _)| panic!("enqueue {p}/{i}: {e}")),
                        );
                    }
                    let mut offsets = Vec::with_capacity(PER_PRODUCER);
                    for (i, f) in futs.into_iter().enumerate() {
                        let d = f.await.unwrap().unwrap_or_else(|(e, _)| panic!("delivery {p}/{i}: {e}"));
                        offsets.push(d.offset);
                    }
                    offsets
                })
            })
        })
        .collect();
    let per_producer: Vec<Vec<i64>> = threads.into_iter().map(|t| t.join().expect("producer thread")).collect();

    let total = 1 + CONCURRENT_PRODUCERS * PER_PRODUCER;
    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, total, CONSUME_TIMEOUT);
    let mut all = std::collections::HashSet::new();
    for (p, offsets) in per_producer.iter().enumerate() {
        // An idempotent producer's messages keep their send order in the partition.
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "producer {p}'s offsets are not increasing");
        for (i, off) in offsets.iter().enumerate() {
            assert!(all.insert(*off), "offset {off} acknowledged to two messages");
            let want = format!("producer-{p}-msg-{i:05}");
            assert_eq!(recs[*off as usize].value.as_deref(), Some(want.as_bytes()), "offset {off}");
        }
    }
    assert_eq!(all.len(), CONCURRENT_PRODUCERS * PER_PRODUCER);
    assert!(!all.contains(&0), "offset 0 belongs to the topic-creating message");
}
