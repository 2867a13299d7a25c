//! Proves `acks=1` is answered after the leader's own write and `acks=all` only after a
//! majority, while consumers see only what is committed: 3 nodes, one partition replicated 3
//! times, both followers paused (SIGSTOP). A librdkafka producer with `acks=1` gets every
//! acknowledgement; one with `acks=all` gets none within a bounded wait; a consumer of the
//! leader sees nothing new (and the high watermark stays put). The followers are resumed one
//! at a time (the leader's longer log wins any election the first may call), then every
//! acknowledged record is read back at the offset it was acknowledged at.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::Cluster;
use common::{client_config, consume_exact, plain_consumer, runtime, to_rec, unique_topic, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const REPLICATION: i32 = 3;
const PARTITION: i32 = 0;
/// Records sent with acks=1 while the followers are paused.
const ACKS_ONE_RECORDS: usize = 20;
/// Bound on the topic getting a leader and a full ISR, and on reads and commits after resuming.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the acks=1 acknowledgements while the followers are paused.
const WRITTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the acks=all send and the consumer are watched while the followers are paused:
/// several heartbeats and many commits' worth of time, none of which may happen.
const PAUSED_WATCH: Duration = Duration::from_secs(3);
/// Bound on one watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A producer to `bootstrap` with the given acks; it never retries on its own within the test
/// (long request timeout), so each record is sent once.
fn producer(bootstrap: &str, acks: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("acks", acks)
        .set("linger.ms", "0")
        .set("enable.idempotence", "false")
        .set("request.timeout.ms", "120000")
        .set("message.timeout.ms", "180000")
        .create()
        .unwrap_or_else(|e| panic!("create acks={acks} producer: {e}"))
}

/// Hands one record to the client's queue at once; the future tells its acknowledgement.
fn enqueue(producer: &FutureProducer, topic: &str, value: &str) -> DeliveryFuture {
    let record = FutureRecord::<str, str>::to(topic).partition(PARTITION).payload(value);
    producer.send_result(record).unwrap_or_else(|(e, _)| panic!("enqueue {value}: {e}"))
}

/// Waits (bounded) for a record's acknowledged offset.
fn acknowledged_offset(rt: &tokio::runtime::Runtime, delivery: DeliveryFuture, value: &str, timeout: Duration) -> i64 {
    match rt.block_on(async { tokio::time::timeout(timeout, delivery).await }) {
        Ok(Ok(Ok(delivered))) => delivered.offset,
        Ok(Ok(Err((e, _)))) => panic!("{value} refused: {e}"),
        Ok(Err(_)) => panic!("{value}: the producer dropped it"),
        Err(_) => panic!("{value} not acknowledged within {timeout:?}"),
    }
}

fn high_watermark(client: &BaseConsumer, topic: &str) -> i64 {
    client.fetch_watermarks(topic, PARTITION, REQUEST_TIMEOUT).unwrap_or_else(|e| panic!("watermarks: {e}")).1
}

#[test]
fn acks_one_is_answered_by_the_leader_alone_and_stays_invisible_until_committed() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-acks");
    create_topic(&bootstrap, &topic, 1, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, 1, REPLICATION as usize, SETTLE_TIMEOUT);
    let leader = wait_for_leader(&client, &topic, PARTITION, SETTLE_TIMEOUT, "a leader") as u64;
    let followers: Vec<u64> = (1..=NODES as u64).filter(|id| *id != leader).collect();

    // Clients of the leader alone: the paused nodes accept connections but answer nothing.
    let leader_addr = cluster.kafka_addr(leader);
    let rt = runtime();
    let acks_one = producer(&leader_addr, "1");
    let acks_all = producer(&leader_addr, "all");
    acknowledged_offset(&rt, enqueue(&acks_one, &topic, "warm-1"), "warm-1", SETTLE_TIMEOUT);
    acknowledged_offset(&rt, enqueue(&acks_all, &topic, "warm-all"), "warm-all", SETTLE_TIMEOUT);
    let watermarks = plain_consumer(&leader_addr, &[]);
    let committed_before = high_watermark(&watermarks, &topic);
    assert_eq!(committed_before, 2, "both warm-up records committed");
    let reader = plain_consumer(&leader_addr, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, PARTITION, Offset::Offset(committed_before)).expect("offset");
    reader.assign(&tpl).expect("assign");

    for id in &followers {
        cluster.node(*id).sigstop();
    }
    let mut all_pending = enqueue(&acks_all, &topic, "all-0");
    let started = Instant::now();
    let sent: Vec<(String, DeliveryFuture)> = (0..ACKS_ONE_RECORDS)
        .map(|n| format!("one-{n}"))
        .map(|v| {
            let delivery = enqueue(&acks_one, &topic, &v);
            (v, delivery)
        })
        .collect();
    let deadline = Instant::now() + WRITTEN_TIMEOUT;
    let acknowledged: Vec<(String, i64)> = sent
        .into_iter()
        .map(|(v, delivery)| {
            let offset = acknowledged_offset(&rt, delivery, &v, deadline.saturating_duration_since(Instant::now()));
            (v, offset)
        })
        .collect();
    eprintln!(
        "cluster_acks: {ACKS_ONE_RECORDS} acks=1 records acknowledged with both followers paused in {} ms, offsets {:?}",
        started.elapsed().as_millis(),
        acknowledged.iter().map(|(_, o)| *o).collect::<Vec<_>>()
    );

    // Nothing committed: no acks=all answer, nothing new for a consumer, the same watermark.
    let watch_until = Instant::now() + PAUSED_WATCH;
    while Instant::now() < watch_until {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            panic!("a consumer read an uncommitted record: {:?}", to_rec(&m));
        }
    }
    let all_answered = rt.block_on(async { tokio::time::timeout(Duration::ZERO, &mut all_pending).await });
    assert!(all_answered.is_err(), "acks=all answered with both followers paused: {all_answered:?}");
    assert_eq!(high_watermark(&watermarks, &topic), committed_before, "the high watermark moved without a majority");

    // One follower back: the leader and it are a majority, so everything commits.
    cluster.node(followers[0]).sigcont();
    let all_offset = acknowledged_offset(&rt, all_pending, "all-0 (acks=all, one follower resumed)", SETTLE_TIMEOUT);
    cluster.node(followers[1]).sigcont();
    let expected = 2 + 1 + ACKS_ONE_RECORDS;
    wait_until(SETTLE_TIMEOUT, "every acknowledged record committed", || {
        high_watermark(&watermarks, &topic) >= expected as i64
    });

    let records = consume_exact(&bootstrap, &topic, PARTITION, Offset::Beginning, expected, SETTLE_TIMEOUT);
    let value_at = |offset: i64| {
        records
            .iter()
            .find(|r| r.offset == offset)
            .and_then(|r| r.value.clone())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    for (value, offset) in acknowledged.iter().chain([("all-0".to_string(), all_offset)].iter()) {
        assert_eq!(value_at(*offset).as_deref(), Some(value.as_str()), "record acknowledged at {offset}");
    }
    assert!(cluster.node(followers[0]).is_running() && cluster.node(followers[1]).is_running());
    cluster.assert_no_panics("the end");
}
