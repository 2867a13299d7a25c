//! Kafka workers: an `acks=all` producer (idempotent or not) recording acknowledged ids, and
//! a group consumer committing what it consumed and recording every acknowledged commit.

use super::Stop;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends awaiting their acknowledgement at once per producer.
const IN_FLIGHT_MAX: usize = 200;
/// Each producer pauses `PACE_PAUSE` after every `PACE_EVERY` sends (about 5,000 messages a
/// second at most), so a long run stays a size the final read-back handles quickly.
const PACE_EVERY: u64 = 100;
const PACE_PAUSE: Duration = Duration::from_millis(20);
/// Upper bound on messages one producer sends in a run.
pub const SENT_MAX: u64 = 2_000_000;
/// How often the group consumer commits.
const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// What a producer learned: ids the broker acknowledged, and how many sends failed.
#[derive(Default)]
pub struct Produced {
    pub acked: BTreeSet<u64>,
    /// Where the broker said each acknowledged id is stored: (partition, offset).
    pub at: BTreeMap<u64, (i32, i64)>,
    pub failed: u64,
}

/// The value carrying `id`: `<tag>-<id>`, unique across the run.
pub fn value(tag: &str, id: u64) -> String {
    format!("{tag}-{id}")
}

fn producer(bootstrap: &str, idempotent: bool) -> FutureProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("enable.idempotence", if idempotent { "true" } else { "false" })
        // Long enough to ride out every restart; sends still pending at the end are not acked.
        .set("message.timeout.ms", "60000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    cfg.create().expect("create producer")
}

/// Produces `<tag>-<n>` to `topic` (partition chosen by key) until `stop`, then waits for the
/// sends in flight. An idempotent producer that hits a fatal error is replaced by a new one
/// (a new producer id); what the old one had in flight counts as not acknowledged.
pub fn produce(bootstrap: String, topic: String, tag: &'static str, idempotent: bool, stop: Stop) -> Produced {
    let rt = crate::common::runtime();
    let mut out = Produced::default();
    let mut producer = producer(&bootstrap, idempotent);
    let mut in_flight = VecDeque::new();
    let mut next = 0u64;
    let mut since_pause = 0u64;
    rt.block_on(async {
        while !stop.is_set() && next < SENT_MAX {
            let key = next.to_string();
            let payload = value(tag, next);
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push_back((next, delivery));
                    next += 1;
                    since_pause += 1;
                    if since_pause == PACE_EVERY {
                        since_pause = 0;
                        tokio::time::sleep(PACE_PAUSE).await;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            while in_flight.len() >= IN_FLIGHT_MAX {
                let (id, delivery) = in_flight.pop_front().expect("non-empty");
                settle(&mut out, id, delivery.await);
            }
            if idempotent && producer.client().fatal_error().is_some() {
                for (id, delivery) in in_flight.drain(..) {
                    settle(&mut out, id, delivery.await);
                }
                producer = self::producer(&bootstrap, idempotent);
            }
        }
        for (id, delivery) in in_flight.drain(..) {
            settle(&mut out, id, delivery.await);
        }
    });
    out
}

fn settle<E, C>(
    out: &mut Produced,
    id: u64,
    result: Result<Result<rdkafka::producer::future_producer::Delivery, E>, C>,
) {
    match result {
        Ok(Ok(delivery)) => {
            out.acked.insert(id);
            out.at.insert(id, (delivery.partition, delivery.offset));
        }
        _ => out.failed += 1,
    }
}

/// Commits a group consumer's broker acknowledged: partition → highest offset committed.
pub type AckedCommits = Arc<Mutex<BTreeMap<i32, i64>>>;

/// What the group consumer saw.
#[derive(Default)]
pub struct Consumed {
    pub messages: u64,
    pub commits_acked: u64,
    pub commits_failed: u64,
}

pub fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500");
    cfg.create().expect("create group consumer")
}

/// Consumes `topic` in `group` until `stop`, committing the next offset per partition every
/// `COMMIT_EVERY` (synchronously) and recording each commit the broker acknowledged. Offsets
/// committed only grow from the client's side, so any step back seen later is the broker's.
pub fn consume_and_commit(
    bootstrap: String,
    topic: String,
    group: String,
    acked: AckedCommits,
    stop: Stop,
) -> Consumed {
    let consumer = group_consumer(&bootstrap, &group);
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut out = Consumed::default();
    let mut last_commit = Instant::now();
    let mut dirty = false;
    while !stop.is_set() {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.messages += 1;
            let n = next.entry(m.partition()).or_insert(0);
            *n = (*n).max(m.offset() + 1);
            dirty = true;
        }
        if dirty && last_commit.elapsed() >= COMMIT_EVERY {
            commit(&consumer, &topic, &next, &acked, &mut out);
            last_commit = Instant::now();
            dirty = false;
        }
    }
    commit(&consumer, &topic, &next, &acked, &mut out);
    out
}

fn commit(consumer: &BaseConsumer, topic: &str, next: &BTreeMap<i32, i64>, acked: &AckedCommits, out: &mut Consumed) {
    if next.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset)).expect("add partition");
    }
    match consumer.commit(&list, CommitMode::Sync) {
        Ok(()) => {
            out.commits_acked += 1;
            let mut acked = acked.lock().expect("acked commits");
            for (&partition, &offset) in next {
                let best = acked.entry(partition).or_insert(offset);
                *best = (*best).max(offset);
            }
        }
        Err(_) => out.commits_failed += 1,
    }
}

/// The group's committed offsets as the broker reports them now (`None` while unreachable).
pub fn committed_offsets(bootstrap: &str, topic: &str, group: &str, partitions: i32) -> Option<BTreeMap<i32, i64>> {
    let consumer = group_consumer(bootstrap, group);
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(list, Duration::from_secs(5)).ok()?;
    let mut out = BTreeMap::new();
    for e in got.elements() {
        if let Offset::Offset(o) = e.offset() {
            out.insert(e.partition(), o);
        }
    }
    Some(out)
}
