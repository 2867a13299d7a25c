//! Proves DeleteRecords (KIP-107) with librdkafka's AdminClient (the rdkafka crate): the
//! answer is the new low watermark, ListOffsets EARLIEST and a consumer from the beginning
//! start there, a raw Fetch below it gets OFFSET_OUT_OF_RANGE, segments wholly below it are
//! gone, -1 means the high watermark, an offset past it is OFFSET_OUT_OF_RANGE, and the new
//! start survives a restart. (In a cluster: `cluster_delete_records.rs`.)

mod common;

use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FetchResponse};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use common::raw::{fetch_request, supported_versions, Raw};
use common::{runtime, unique_topic, Broker};

const RECORDS: i64 = 120;
const DELETE_BELOW: i64 = 100;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const TIMEOUT: Duration = Duration::from_secs(30);

fn produce(broker: &Broker, topic: &str) {
    let producer: BaseProducer =
        common::client_config(&broker.bootstrap()).set("acks", "all").set("linger.ms", "0").create().expect("producer");
    for i in 0..RECORDS {
        let value = format!("value-{i:04}-{}", "x".repeat(40));
        for partition in [0, 1] {
            let mut record = BaseRecord::<(), _>::to(topic).partition(partition).payload(&value);
            // Bounded: the local queue drains as the broker acknowledges.
            for _ in 0..1000 {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        // One batch per record, so the small segments roll often.
        producer.flush(TIMEOUT).expect("flush");
    }
}

/// Base offsets of the partition's segment files, ascending.
fn segment_bases(data_dir: &Path, topic: &str, partition: i32) -> Vec<i64> {
    let dir = data_dir.join("topics").join(topic).join(partition.to_string());
    let mut bases: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

fn delete_records(broker: &Broker, topic: &str, offsets: &[(i32, Offset)]) -> TopicPartitionList {
    let admin: AdminClient<DefaultClientContext> =
        common::client_config(&broker.bootstrap()).create().expect("admin client");
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in offsets {
        tpl.add_partition_offset(topic, *partition, *offset).expect("add partition");
    }
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    runtime().block_on(admin.delete_records(&tpl, &options)).expect("DeleteRecords request")
}

fn watermarks(broker: &Broker, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = common::client_config(&broker.bootstrap()).create().expect("consumer");
    consumer.fetch_watermarks(topic, partition, TIMEOUT).expect("ListOffsets")
}

/// The first offset a consumer reads from the beginning of `partition`.
fn first_offset_from_beginning(broker: &Broker, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer =
        common::client_config(&broker.bootstrap()).set("group.id", "delrec-reader").create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning).expect("add partition");
    consumer.assign(&tpl).expect("assign");
    for _ in 0..300 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => return m.offset(),
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    panic!("no record read from the beginning of {topic}-{partition}");
}

fn raw_fetch_error(broker: &Broker, topic: &str, partition: i32, offset: i64) -> i16 {
    let (_, max) = supported_versions(broker, ApiKey::Fetch);
    let mut raw = Raw::connect(broker);
    let resp: FetchResponse = raw.request(max.min(11), &fetch_request(topic, partition, offset, 0, 1 << 20, 1 << 20));
    resp.responses[0].partitions[0].error_code
}

#[test]
fn delete_records_moves_the_log_start_for_readers_and_across_a_restart() {
    let mut broker = Broker::start(&["--default-partitions", "2", "--segment-bytes", "1024"]);
    let (min, max) = supported_versions(&broker, ApiKey::DeleteRecords);
    assert_eq!((min, max), (0, 2), "DeleteRecords advertised");
    let topic = unique_topic("delrec");
    produce(&broker, &topic);
    let before = segment_bases(&broker.data_dir(), &topic, 0);
    assert!(before.len() >= 5, "small segments rolled: {before:?}");

    let result =
        delete_records(&broker, &topic, &[(0, Offset::Offset(DELETE_BELOW)), (1, Offset::End), (7, Offset::Offset(1))]);
    let by_partition = |p: i32| result.elements().into_iter().find(|e| e.partition() == p).expect("answered");
    let p0 = by_partition(0);
    assert!(p0.error().is_ok(), "partition 0: {:?}", p0.error());
    assert_eq!(p0.offset(), Offset::Offset(DELETE_BELOW), "low watermark of partition 0");
    let p1 = by_partition(1);
    assert_eq!(p1.offset(), Offset::Offset(RECORDS), "-1 deletes up to the high watermark: {:?}", p1.error());
    assert!(by_partition(7).error().is_err(), "an unknown partition is refused");

    assert_eq!(watermarks(&broker, &topic, 0), (DELETE_BELOW, RECORDS), "ListOffsets earliest and latest");
    assert_eq!(watermarks(&broker, &topic, 1), (RECORDS, RECORDS));
    assert_eq!(first_offset_from_beginning(&broker, &topic, 0), DELETE_BELOW);
    assert_eq!(raw_fetch_error(&broker, &topic, 0, DELETE_BELOW - 1), OFFSET_OUT_OF_RANGE);
    assert_eq!(raw_fetch_error(&broker, &topic, 0, DELETE_BELOW), 0);
    let after = segment_bases(&broker.data_dir(), &topic, 0);
    eprintln!("segments of partition 0: {} before, {} after (bases {:?})", before.len(), after.len(), after);
    assert!(after[0] > 0 && after[0] <= DELETE_BELOW, "only segments wholly below {DELETE_BELOW} deleted: {after:?}");
    let kept_below = before.iter().filter(|b| **b <= DELETE_BELOW).max().copied();
    assert_eq!(Some(after[0]), kept_below, "the segment holding the new start is kept");

    // Past the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    let refused = delete_records(&broker, &topic, &[(0, Offset::Offset(RECORDS + 1))]);
    let refused = refused.elements()[0].error();
    assert_eq!(refused, Err(rdkafka::error::KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetOutOfRange)));
    // Below the start: nothing changes, the answer is the current start.
    let lower = delete_records(&broker, &topic, &[(0, Offset::Offset(10))]);
    assert_eq!(lower.elements()[0].offset(), Offset::Offset(DELETE_BELOW));

    broker.restart();
    assert_eq!(watermarks(&broker, &topic, 0), (DELETE_BELOW, RECORDS), "the log start survives a restart");
    assert_eq!(raw_fetch_error(&broker, &topic, 0, DELETE_BELOW - 1), OFFSET_OUT_OF_RANGE);
    assert_eq!(first_offset_from_beginning(&broker, &topic, 0), DELETE_BELOW);
}
