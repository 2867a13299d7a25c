//! Proves Sluice answers as Kafka where admin tools look closely: ListOffsets with
//! MAX_TIMESTAMP (KIP-734) names the first record holding the largest timestamp, and the
//! authorized-operations fields (KIP-430) of Metadata, DescribeCluster and DescribeGroups
//! carry Kafka's full sets when asked (no authorizer), Kafka's "not asked" value otherwise.

mod common;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;

use common::raw::{batch_attributes, fetch_raw_records, Raw};
use common::{acks_all_producer, runtime, unique_topic, Broker, CLIENT_TIMEOUT};

/// ListOffsets' MAX_TIMESTAMP query (KIP-734).
const MAX_TIMESTAMP: i64 = -3;
/// Kafka's value for authorized operations nobody asked for.
const NOT_ASKED: i32 = i32::MIN;
/// What a Kafka 3.x broker without an authorizer reports: every operation on the resource.
const TOPIC_OPERATIONS: i32 = 3576;
const GROUP_OPERATIONS: i32 = 328;
const CLUSTER_OPERATIONS: i32 = 8096;

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

/// Metadata (v8, with the cluster's field, and v12), DescribeCluster and DescribeGroups
/// report the full sets when asked and Kafka's "not asked" value otherwise.
#[test]
fn authorized_operations_are_the_full_sets_when_asked() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("kip430");
    let mut raw = Raw::connect(&broker);
    for (version, asked) in [(8, true), (8, false), (12, true), (12, false)] {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(name(&topic))))]))
            .with_allow_auto_topic_creation(true)
            .with_include_cluster_authorized_operations(asked && version <= 10)
            .with_include_topic_authorized_operations(asked);
        let response: MetadataResponse = raw.request(version, &request);
        let t = &response.topics[0];
        assert_eq!(t.error_code, 0, "v{version}: topic error");
        assert_eq!(t.topic_authorized_operations, if asked { TOPIC_OPERATIONS } else { NOT_ASKED }, "v{version}");
        if version <= 10 {
            let cluster = if asked { CLUSTER_OPERATIONS } else { NOT_ASKED };
            assert_eq!(response.cluster_authorized_operations, cluster, "v{version}");
        }
    }
    for asked in [true, false] {
        let request = DescribeClusterRequest::default().with_include_cluster_authorized_operations(asked);
        let response: DescribeClusterResponse = raw.request(0, &request);
        assert_eq!(response.cluster_authorized_operations, if asked { CLUSTER_OPERATIONS } else { NOT_ASKED });

        // An unknown group is described (Dead, no error), so its operations are reported too.
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(name("kip430-group"))])
            .with_include_authorized_operations(asked);
        let response: DescribeGroupsResponse = raw.request(5, &request);
        let group = &response.groups[0];
        assert_eq!(group.error_code, 0);
        assert_eq!(group.authorized_operations, if asked { GROUP_OPERATIONS } else { NOT_ASKED });
    }
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

/// librdkafka's DescribeCluster with `include_authorized_operations` lists the cluster's
/// seven operations, as against Kafka without an authorizer.
#[test]
fn librdkafka_describe_cluster_shows_the_authorized_operations() {
    let broker = Broker::start(&[]);
    let mut operations = librdkafka_admin::cluster_authorized_operations(&broker.bootstrap());
    operations.sort_unstable();
    // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
    assert_eq!(operations, vec![5, 7, 8, 9, 10, 11, 12]);
    assert_eq!(operations.iter().fold(0, |bits, op| bits | 1 << op), CLUSTER_OPERATIONS);
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

    /// The cluster's authorized operations (AclOperation codes) DescribeCluster reports.
    pub fn cluster_authorized_operations(bootstrap: &str) -> Vec<u32> {
        let consumer = plain_consumer(bootstrap, &[]);
        admin_call(
            &consumer,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
            // SAFETY: `options` is valid (see `admin_call`); the returned error, if any, is ours.
            |options| unsafe {
                let error = rd::rd_kafka_AdminOptions_set_include_authorized_operations(options, 1);
                assert!(error.is_null(), "include_authorized_operations refused");
            },
            |rk, options, queue| unsafe { rd::rd_kafka_DescribeCluster(rk, options, queue) },
            |event| unsafe {
                let result = rd::rd_kafka_event_DescribeCluster_result(event);
                let mut count = 0usize;
                let operations = rd::rd_kafka_DescribeCluster_result_authorized_operations(result, &mut count);
                // Read as plain codes: an enum read of an unexpected value would be undefined.
                let codes = operations.cast::<u32>();
                (0..count).map(|i| *codes.add(i)).collect()
            },
        )
    }
}

/// librdkafka's AdminClient creates a topic with Kafka topic configs Sluice does not act on
/// (and `cleanup.policy=compact`), describes every Kafka 3.x topic config with its source
/// and sensitivity, alters one, and still gets INVALID_CONFIG for an unknown name.
#[test]
fn admin_client_sets_and_describes_kafka_topic_configs() {
    use rdkafka::admin::{
        AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
    };
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let broker = Broker::start(&[]);
    let rt = runtime();
    let admin: AdminClient<DefaultClientContext> = common::client_config(&broker.bootstrap()).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(CLIENT_TIMEOUT));
    let topic = unique_topic("kafka-configs");
    let set = [
        ("cleanup.policy", "compact"),
        ("compression.type", "zstd"),
        ("min.insync.replicas", "2"),
        ("message.format.version", "2.8"),
        ("delete.retention.ms", "1000"),
    ];
    let mut new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1));
    for (k, v) in set {
        new = new.set(k, v);
    }
    let created = rt.block_on(admin.create_topics(&[new], &options)).expect("create_topics");
    assert_eq!(created, vec![Ok(topic.clone())]);

    let altered = AlterConfig::new(ResourceSpecifier::Topic(&topic))
        .set("cleanup.policy", "compact")
        .set("compression.type", "zstd")
        .set("min.insync.replicas", "2")
        .set("message.format.version", "2.8")
        .set("delete.retention.ms", "5000");
    let result = rt.block_on(admin.alter_configs(&[altered], &options)).expect("alter_configs");
    assert!(result[0].is_ok(), "alter_configs: {result:?}");

    let described = rt.block_on(admin.describe_configs(&[ResourceSpecifier::Topic(&topic)], &options));
    let described = described.expect("describe_configs");
    let resource = described[0].as_ref().expect("described");
    let entry = |name: &str| resource.get(name).unwrap_or_else(|| panic!("{name} not described"));
    for (name, value) in set.iter().filter(|(k, _)| *k != "delete.retention.ms") {
        let e = entry(name);
        assert_eq!((e.value.as_deref(), &e.source), (Some(*value), &ConfigSource::DynamicTopic), "{name}");
    }
    assert_eq!(entry("delete.retention.ms").value.as_deref(), Some("5000"));
    let jitter = entry("segment.jitter.ms");
    assert_eq!((jitter.value.as_deref(), &jitter.source), (Some("0"), &ConfigSource::Default));
    assert!(resource.entries.iter().all(|e| !e.is_sensitive), "no topic config is sensitive");
    for name in ["unclean.leader.election.enable", "preallocate", "max.compaction.lag.ms", "retention.ms"] {
        entry(name);
    }

    // (The rdkafka crate's alter_configs drops per-resource errors, so CreateTopics shows it.)
    let other = unique_topic("kafka-configs-unknown");
    let unknown = NewTopic::new(&other, 1, TopicReplication::Fixed(1)).set("no.such.config", "1");
    let result = rt.block_on(admin.create_topics(&[unknown], &options)).expect("create_topics");
    assert_eq!(result, vec![Err((other, RDKafkaErrorCode::InvalidConfig))], "unknown name");
}

/// On a topic created with `message.timestamp.type=LogAppendTime` the broker stamps each
/// batch with its own time, as Kafka does: librdkafka's delivery report and consumer see a
/// LogAppendTime timestamp taken at append, not the producer's, and the stored batch carries
/// the attribute bit.
#[test]
fn log_append_time_topic_stamps_the_broker_time() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::{Message, Offset, Timestamp};

    let broker = Broker::start(&[]);
    let rt = runtime();
    let admin: AdminClient<DefaultClientContext> = common::client_config(&broker.bootstrap()).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(CLIENT_TIMEOUT));
    let topic = unique_topic("log-append-time");
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime");
    assert_eq!(rt.block_on(admin.create_topics(&[new], &options)).expect("create_topics"), vec![Ok(topic.clone())]);

    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let before_ms = now_ms();
    let record = FutureRecord::to(&topic).partition(0).key("k").payload("v").timestamp(1000);
    let delivery = rt.block_on(producer.send(record, CLIENT_TIMEOUT)).expect("produced");
    let after_ms = now_ms();
    let stamped = |ts: Timestamp| match ts {
        Timestamp::LogAppendTime(ms) => (before_ms..=after_ms).contains(&ms),
        _ => false,
    };
    assert!(stamped(delivery.timestamp), "delivery report: {:?}", delivery.timestamp);

    let consumer = common::plain_consumer(&broker.bootstrap(), &[]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning).expect("tpl");
    rdkafka::consumer::Consumer::assign(&consumer, &tpl).expect("assign");
    let message = (0..100).find_map(|_| consumer.poll(std::time::Duration::from_millis(200))).expect("a message");
    let message = message.expect("no consumer error");
    assert!(stamped(message.timestamp()), "consumed: {:?}", message.timestamp());
    let attributes = batch_attributes(&fetch_raw_records(&broker, &topic, 0, 0));
    assert_eq!(attributes.iter().map(|a| a & 0x08).collect::<Vec<_>>(), vec![0x08], "the LogAppendTime bit");
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

/// IncrementalAlterConfigs appends to and subtracts from a list config as Kafka does
/// (append starts from the value in force, Kafka's default included) and refuses both on a
/// config that is not a list with INVALID_CONFIG.
#[test]
fn incremental_alter_configs_appends_and_subtracts_lists() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{
        DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse,
    };
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    const TOPIC_RESOURCE: i8 = 2;
    const INVALID_CONFIG: i16 = 40;

    let broker = Broker::start(&[]);
    let topic = unique_topic("incremental");
    let mut raw = Raw::connect(&broker);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(name(&topic))))]))
        .with_allow_auto_topic_creation(true);
    let created: MetadataResponse = raw.request(4, &request);
    assert_eq!(created.topics[0].error_code, 0);
    let alter = |raw: &mut Raw, op: i8, key: &str, value: &str| -> i16 {
        let change =
            AlterableConfig::default().with_name(name(key)).with_config_operation(op).with_value(Some(name(value)));
        let resource = AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(name(&topic))
            .with_configs(vec![change]);
        let response: IncrementalAlterConfigsResponse =
            raw.request(0, &IncrementalAlterConfigsRequest::default().with_resources(vec![resource]));
        response.responses[0].error_code
    };
    let policy = |raw: &mut Raw| -> String {
        let resource = DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(name(&topic))
            .with_configuration_keys(Some(vec![name("cleanup.policy")]));
        let response: DescribeConfigsResponse =
            raw.request(1, &DescribeConfigsRequest::default().with_resources(vec![resource]));
        response.results[0].configs[0].value.as_ref().map(|v| v.to_string()).unwrap_or_default()
    };
    assert_eq!(alter(&mut raw, APPEND, "cleanup.policy", "compact"), 0);
    assert_eq!(policy(&mut raw), "delete,compact");
    assert_eq!(alter(&mut raw, SUBTRACT, "cleanup.policy", "delete"), 0);
    assert_eq!(policy(&mut raw), "compact");
    assert_eq!(alter(&mut raw, APPEND, "retention.ms", "1"), INVALID_CONFIG);
    assert_eq!(alter(&mut raw, SUBTRACT, "compression.type", "zstd"), INVALID_CONFIG);
}
