//! Proves Fetch honours Kafka's size limits (KIP-74): only the first batch of the first
//! partition with data may go past the request's `max_bytes` and the partition's
//! `partition_max_bytes`, so no response is larger than a consumer asked for, and librdkafka
//! with small `fetch.max.bytes` / `max.partition.fetch.bytes` reads partitions whose batches
//! are larger than both, all of them, without stalling.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use common::raw::{supported_versions, Raw};
use common::{acks_all_producer, plain_consumer, produce_one, runtime, to_rec, unique_topic, Broker, Rng};

const PARTITIONS: i32 = 4;
/// Each record is produced alone, so it is one batch: a big one is larger than the
/// consumer's partition limit and smaller than its response limit.
const BIG_RECORD_BYTES: usize = 100 * 1024;
const SMALL_RECORD_BYTES: usize = 2 * 1024;
/// Per partition, in order: big records interleaved with small ones.
const RECORD_SIZES: [usize; 6] =
    [BIG_RECORD_BYTES, SMALL_RECORD_BYTES, SMALL_RECORD_BYTES, BIG_RECORD_BYTES, SMALL_RECORD_BYTES, BIG_RECORD_BYTES];
/// The consumer's response limit: two big batches do not fit, so a broker that serves
/// every partition's first batch whole overflows it.
const FETCH_MAX_BYTES: usize = 256 * 1024;
const PARTITION_FETCH_MAX_BYTES: usize = 64 * 1024;
/// librdkafka's own minimum room for framing above `fetch.max.bytes`.
const FRAMING_BYTES: usize = 512;
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a broker and fills every partition of a new topic with `RECORD_SIZES`.
fn filled_topic() -> (Broker, String) {
    let broker = Broker::start(&["--default-partitions", &PARTITIONS.to_string()]);
    let topic = unique_topic("fetch-limits");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let mut rng = Rng::new(74);
    for partition in 0..PARTITIONS {
        for (i, &size) in RECORD_SIZES.iter().enumerate() {
            let (p, offset) = produce_one(&rt, &producer, &topic, partition, b"k", &rng.bytes(size));
            assert_eq!((p, offset), (partition, i as i64));
        }
    }
    (broker, topic)
}

/// A consumer's Fetch of every partition of `topic` from `offset`.
fn fetch_all(topic: &str, offset: i64, max_bytes: usize, partition_max_bytes: usize) -> FetchRequest {
    let partitions = (0..PARTITIONS)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(partition_max_bytes as i32)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes as i32)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(partitions)])
}

/// Lengths of the whole batches in `records`.
fn batch_lengths(records: &[u8]) -> Vec<usize> {
    let mut lengths = Vec::new();
    let mut at = 0;
    while records.len() - at >= 12 {
        let len = 12 + i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        assert!(at + len <= records.len(), "a partial batch at byte {at}");
        lengths.push(len);
        at += len;
    }
    assert_eq!(at, records.len(), "trailing bytes after the batches");
    lengths
}

/// Checks a response against KIP-74 and returns each partition's batch lengths.
fn check_limits(resp: &FetchResponse, max_bytes: usize, partition_max_bytes: usize) -> Vec<Vec<usize>> {
    let served: Vec<Vec<usize>> = resp.responses[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0, "partition {} error", p.partition_index);
            batch_lengths(&p.records.clone().unwrap_or_default())
        })
        .collect();
    let mut total = 0;
    for (i, batches) in served.iter().enumerate() {
        let bytes: usize = batches.iter().sum();
        let first_with_data = total == 0;
        // The one exception: the first partition with data may take its first batch whole.
        let allowed = match (first_with_data, batches.first()) {
            (true, Some(&first)) => partition_max_bytes.min(max_bytes).max(first),
            _ => partition_max_bytes.min(max_bytes.saturating_sub(total)),
        };
        assert!(bytes <= allowed, "partition {i} served {bytes} bytes ({batches:?}), limit {allowed}: {served:?}");
        total += bytes;
    }
    served
}

/// Raw Fetches of partitions whose first batch is larger than the partition limit: only the
/// first partition gets a batch, later ones get none (not one past the limits), and once the
/// first partition is read past, the next one takes its turn.
#[test]
fn raw_fetch_responses_stay_within_the_limits() {
    let (broker, topic) = filled_topic();
    let (_, max) = supported_versions(&broker, ApiKey::Fetch);
    let version = max.min(12);
    assert!(version >= 4, "Fetch only up to v{max}");
    let mut raw = Raw::connect(&broker);

    let resp: FetchResponse = raw.request(version, &fetch_all(&topic, 0, FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES));
    let served = check_limits(&resp, FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES);
    assert_eq!(served[0].len(), 1, "the first partition's big first batch is served whole: {served:?}");
    assert!(served[0][0] > BIG_RECORD_BYTES);
    assert!(served[1..].iter().all(Vec::is_empty), "no later partition's big batch goes past the limits: {served:?}");

    // From offset 1 the first batches are small: every partition gets what fits.
    let resp: FetchResponse = raw.request(version, &fetch_all(&topic, 1, FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES));
    let served = check_limits(&resp, FETCH_MAX_BYTES, PARTITION_FETCH_MAX_BYTES);
    assert!(served.iter().all(|b| b.len() == 2), "two small batches per partition: {served:?}");

    // A response limit below one batch: the first partition's first batch alone.
    let resp: FetchResponse = raw.request(version, &fetch_all(&topic, 1, 1, PARTITION_FETCH_MAX_BYTES));
    let served = check_limits(&resp, 1, PARTITION_FETCH_MAX_BYTES);
    assert_eq!(served.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 0, 0, 0]);

    // Room for the big batches: each partition within its limit, the total within the response's.
    let (max_bytes, partition_max) = (300 * 1024, 150 * 1024);
    let resp: FetchResponse = raw.request(version, &fetch_all(&topic, 0, max_bytes, partition_max));
    let served = check_limits(&resp, max_bytes, partition_max);
    assert!(served[0].len() >= 2 && !served[1].is_empty(), "two partitions share the response: {served:?}");
}

/// librdkafka with limits smaller than two big batches (and `receive.message.max.bytes` at
/// its minimum, so an oversized response is an error) reads every record of every
/// partition, with no error.
#[test]
fn rdkafka_reads_everything_with_small_fetch_limits() {
    let (broker, topic) = filled_topic();
    let fetch_max = FETCH_MAX_BYTES.to_string();
    let receive_max = (FETCH_MAX_BYTES + FRAMING_BYTES).to_string();
    let partition_max = PARTITION_FETCH_MAX_BYTES.to_string();
    let consumer = plain_consumer(
        &broker.bootstrap(),
        &[
            ("fetch.max.bytes", &fetch_max),
            ("message.max.bytes", &fetch_max),
            ("receive.message.max.bytes", &receive_max),
            ("max.partition.fetch.bytes", &partition_max),
        ],
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, Offset::Beginning).expect("tpl offset");
    }
    consumer.assign(&tpl).expect("assign");
    let expected = PARTITIONS as usize * RECORD_SIZES.len();
    let mut read: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    let mut errors = Vec::new();
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while read.values().map(Vec::len).sum::<usize>() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let rec = to_rec(&m);
                read.entry(rec.partition).or_default().push((rec.offset, rec.value.map_or(0, |v| v.len())));
            }
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    assert!(errors.is_empty(), "consumer errors: {errors:?}");
    let want: Vec<(i64, usize)> = RECORD_SIZES.iter().enumerate().map(|(i, &s)| (i as i64, s)).collect();
    for p in 0..PARTITIONS {
        assert_eq!(read.get(&p), Some(&want), "partition {p}: (offset, value size) read within {CONSUME_TIMEOUT:?}");
    }
}
