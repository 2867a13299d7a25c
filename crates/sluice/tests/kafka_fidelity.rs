//! Proves Sluice answers as Kafka where admin tools look closely: ListOffsets with
//! MAX_TIMESTAMP (KIP-734) names the first record holding the largest timestamp.

mod common;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

use common::raw::{batch_attributes, fetch_raw_records, Raw};
use common::{acks_all_producer, runtime, unique_topic, Broker, CLIENT_TIMEOUT};

/// ListOffsets' MAX_TIMESTAMP query (KIP-734).
const MAX_TIMESTAMP: i64 = -3;

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Produces `(value, timestamp)` records to partition 0 as one batch (sent together
/// within the producer's linger), and waits for them.
fn produce_batch(
    rt: &tokio::runtime::Runtime,
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    records: &[(&str, i64)],
) {
    let deliveries: Vec<_> = records
        .iter()
        .map(|(value, ts)| {
            let record = FutureRecord::to(topic).partition(0).key("k").payload(*value).timestamp(*ts);
            producer.send_result(record).unwrap_or_else(|(e, _)| panic!("enqueue {value}: {e}"))
        })
        .collect();
    for delivery in deliveries {
        let outcome = rt.block_on(async { tokio::time::timeout(CLIENT_TIMEOUT * 3, delivery).await });
        outcome.expect("delivered in time").expect("delivery not cancelled").expect("produced");
    }
}

fn list_offsets(raw: &mut Raw, topic: &str, partition: i32, timestamp: i64) -> (i16, i64, i64) {
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(name(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = raw.request(7, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

/// Three gzip batches whose largest timestamp (9000) is held first by the middle record of
/// the first batch and again by a later batch: MAX_TIMESTAMP answers that first record, and
/// an empty partition answers -1 with no error, as Kafka does.
#[test]
fn list_offsets_max_timestamp_finds_the_first_record_with_the_largest_timestamp() {
    let broker = Broker::start(&["--default-partitions", "2"]);
    let topic = unique_topic("max-ts");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[("linger.ms", "200"), ("compression.type", "gzip")]);
    produce_batch(&rt, &producer, &topic, &[("a", 1000), ("b", 9000), ("c", 4000)]);
    produce_batch(&rt, &producer, &topic, &[("d", 9000)]);
    produce_batch(&rt, &producer, &topic, &[("e", 2000)]);
    let batches = batch_attributes(&fetch_raw_records(&broker, &topic, 0, 0));
    assert_eq!(batches.len(), 3, "one batch per produce_batch: {batches:?}");

    let mut raw = Raw::connect(&broker);
    assert_eq!(list_offsets(&mut raw, &topic, 0, MAX_TIMESTAMP), (0, 1, 9000));
    assert_eq!(list_offsets(&mut raw, &topic, 1, MAX_TIMESTAMP), (0, -1, -1));
    // The other queries are unchanged.
    assert_eq!(list_offsets(&mut raw, &topic, 0, 4000), (0, 1, 9000));
    assert_eq!(list_offsets(&mut raw, &topic, 0, -1).1, 5);
}

/// librdkafka's admin API reads MAX_TIMESTAMP the way applications do (its ListOffsets with
/// `RD_KAFKA_OFFSET_SPEC_MAX_TIMESTAMP`).
#[test]
fn librdkafka_list_offsets_max_timestamp() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("max-ts-rdkafka");
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for ts in [3000, 7000, 5000] {
        produce_batch(&rt, &producer, &topic, &[("v", ts)]);
    }
    assert_eq!(librdkafka_admin::list_offsets(&broker.bootstrap(), &topic, 0, MAX_TIMESTAMP), (0, 1, 7000));
}

/// The librdkafka admin calls the rdkafka crate does not wrap, through its C API.
mod librdkafka_admin {
    use std::ffi::CString;

    use rdkafka::bindings as rd;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::TopicPartitionList;

    use super::common::plain_consumer;

    /// Bound on waiting for one admin result.
    const RESULT_TIMEOUT_MS: i32 = 20_000;

    /// Runs one admin call on a fresh queue and hands its result event to `read`.
    fn admin_call<T>(
        consumer: &BaseConsumer,
        op: rd::rd_kafka_admin_op_t,
        configure: impl FnOnce(*mut rd::rd_kafka_AdminOptions_t),
        call: impl FnOnce(*mut rd::rd_kafka_t, *mut rd::rd_kafka_AdminOptions_t, *mut rd::rd_kafka_queue_t),
        read: impl FnOnce(*mut rd::rd_kafka_event_t) -> T,
    ) -> T {
        let rk = consumer.client().native_ptr();
        // SAFETY: `rk` lives as long as `consumer`; every object created here is destroyed
        // here, after the result event (which owns what `read` looks at) is read.
        unsafe {
            let queue = rd::rd_kafka_queue_new(rk);
            let options = rd::rd_kafka_AdminOptions_new(rk, op);
            configure(options);
            call(rk, options, queue);
            let event = rd::rd_kafka_queue_poll(queue, RESULT_TIMEOUT_MS);
            assert!(!event.is_null(), "no admin result within {RESULT_TIMEOUT_MS} ms");
            let error = rd::rd_kafka_event_error(event);
            assert_eq!(error, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR, "admin call failed");
            let out = read(event);
            rd::rd_kafka_event_destroy(event);
            rd::rd_kafka_AdminOptions_destroy(options);
            rd::rd_kafka_queue_destroy(queue);
            out
        }
    }

    /// (error code, offset, timestamp) of ListOffsets for one partition and offset spec.
    pub fn list_offsets(bootstrap: &str, topic: &str, partition: i32, spec: i64) -> (i32, i64, i64) {
        let consumer = plain_consumer(bootstrap, &[]);
        let tpl = TopicPartitionList::new();
        let name = CString::new(topic).expect("topic name");
        // SAFETY: `tpl` owns the list; the added element lives in it.
        unsafe { (*rd::rd_kafka_topic_partition_list_add(tpl.ptr(), name.as_ptr(), partition)).offset = spec };
        admin_call(
            &consumer,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
            |_| {},
            // SAFETY: librdkafka copies the list; handles are valid (see `admin_call`).
            |rk, options, queue| unsafe { rd::rd_kafka_ListOffsets(rk, tpl.ptr(), options, queue) },
            |event| unsafe {
                let result = rd::rd_kafka_event_ListOffsets_result(event);
                let mut count = 0usize;
                let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut count);
                assert_eq!(count, 1, "one partition's result");
                let info = *infos;
                let tp = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(info);
                ((*tp).err as i32, (*tp).offset, rd::rd_kafka_ListOffsetsResultInfo_timestamp(info))
            },
        )
    }
}
