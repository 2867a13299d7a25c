//! Proves ListGroups v4/v5 (KIP-518 states filter, KIP-848 types filter) as Kafka answers
//! them: over the raw protocol (every group "classic", both filters ignore case, both must
//! match, an unknown type matches none), and through librdkafka's ListConsumerGroups with a
//! type and state filter, called through the rdkafka crate's bindings (librdkafka reports the
//! type only from a v5 answer: with v4 advertised it said UNKNOWN, and this test failed).

mod common;

use std::ffi::CStr;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;

use common::raw::{supported_versions, Raw};
use common::{unique_topic, Broker};

const NONE: i16 = 0;
const MEMBER_ID_REQUIRED: i16 = 79;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create_topic(raw: &mut Raw, topic: &str) {
    let mut t = CreatableTopic::default();
    t.name = TopicName(s(topic));
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    assert_eq!(raw.request(2, &req).topics[0].error_code, NONE, "create {topic}");
}

/// A group with committed offsets and no members: Empty.
fn empty_group(raw: &mut Raw, group: &str, topic: &str) {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 0;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    let resp = raw.request(2, &req);
    assert_eq!(resp.topics[0].partitions[0].error_code, NONE, "standalone commit");
}

/// A group with one member that joined and synced: Stable.
fn stable_group(raw: &mut Raw, group: &str) {
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.session_timeout_ms = 30_000;
    req.rebalance_timeout_ms = 30_000;
    req.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0]);
    req.protocols = vec![p];
    let first = raw.request(5, &req);
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    req.member_id = first.member_id;
    let joined = raw.request(5, &req);
    assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s(group));
    sync.generation_id = 1;
    sync.member_id = joined.member_id.clone();
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = joined.member_id;
    sync.assignments = vec![a];
    assert_eq!(raw.request(3, &sync).error_code, NONE);
}

/// (group id, state, type) of every listed group among `ours`, sorted.
fn list(raw: &mut Raw, version: i16, states: &[&str], types: &[&str], ours: &[&str]) -> Vec<(String, String, String)> {
    let mut req = ListGroupsRequest::default();
    req.states_filter = states.iter().map(|v| s(v)).collect();
    req.types_filter = types.iter().map(|v| s(v)).collect();
    let resp = raw.request(version, &req);
    assert_eq!(resp.error_code, NONE);
    let mut out: Vec<(String, String, String)> = resp
        .groups
        .into_iter()
        .filter(|g| ours.contains(&g.group_id.0.as_str()))
        .map(|g| (g.group_id.0.to_string(), g.group_state.to_string(), g.group_type.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn list_groups_v5_filters_by_state_and_type_and_reports_classic() {
    let broker = Broker::start(&[]);
    assert_eq!(supported_versions(&broker, ApiKey::ListGroups), (0, 5));
    let topic = unique_topic("lg");
    let (empty, stable) = (unique_topic("g-empty"), unique_topic("g-stable"));
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic);
    empty_group(&mut raw, &empty, &topic);
    let mut member = Raw::connect(&broker);
    stable_group(&mut member, &stable);
    let ours = [empty.as_str(), stable.as_str()];
    let row = |g: &str, state: &str, kind: &str| (g.to_string(), state.to_string(), kind.to_string());
    let both = vec![row(&empty, "Empty", "classic"), row(&stable, "Stable", "classic")];

    assert_eq!(list(&mut raw, 5, &[], &[], &ours), both);
    assert_eq!(list(&mut raw, 5, &[], &["Classic"], &ours), both, "types ignore case");
    assert_eq!(list(&mut raw, 5, &[], &["consumer"], &ours), vec![], "no KIP-848 groups here");
    assert_eq!(list(&mut raw, 5, &[], &["no-such-type"], &ours), vec![], "an unknown type matches none");
    assert_eq!(list(&mut raw, 5, &[], &["consumer", "classic"], &ours), both, "any listed type");
    assert_eq!(list(&mut raw, 5, &["empty"], &["classic"], &ours), vec![both[0].clone()], "both filters apply");
    assert_eq!(list(&mut raw, 4, &["STABLE"], &[], &ours), vec![row(&stable, "Stable", "")], "v4: no type field");
    assert_eq!(list(&mut raw, 4, &["Empty", "stable"], &[], &ours).len(), 2);
    assert_eq!(list(&mut raw, 3, &[], &[], &ours), vec![row(&empty, "", ""), row(&stable, "", "")]);

    let classic_stable =
        librdkafka_list(&broker, rd::rd_kafka_consumer_group_state_t::RD_KAFKA_CONSUMER_GROUP_STATE_STABLE);
    let mine: Vec<_> = classic_stable.iter().filter(|(g, _)| ours.contains(&g.as_str())).collect();
    assert_eq!(mine, vec![&(stable.clone(), rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC)]);
}

/// librdkafka's ListConsumerGroups filtered to classic groups in `state`: (group id, type).
/// The rdkafka crate does not wrap it, so this calls the C API of the librdkafka it links.
fn librdkafka_list(
    broker: &Broker,
    state: rd::rd_kafka_consumer_group_state_t,
) -> Vec<(String, rd::rd_kafka_consumer_group_type_t)> {
    let admin: AdminClient<DefaultClientContext> = common::client_config(&broker.bootstrap()).create().expect("admin");
    let rk = admin.inner().native_ptr();
    let types = [rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC];
    let states = [state];
    // SAFETY: every pointer comes from librdkafka for this client and is destroyed once, below;
    // the listing strings are copied before the event that owns them is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
        for error in [
            rd::rd_kafka_AdminOptions_set_match_consumer_group_types(options, types.as_ptr(), types.len()),
            rd::rd_kafka_AdminOptions_set_match_consumer_group_states(options, states.as_ptr(), states.len()),
        ] {
            assert!(error.is_null(), "option refused: {:?}", CStr::from_ptr(rd::rd_kafka_error_string(error)));
        }
        rd::rd_kafka_ListConsumerGroups(rk, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, 30_000);
        assert!(!event.is_null(), "ListConsumerGroups answered within 30 s");
        assert_eq!(
            rd::rd_kafka_event_error(event),
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
            "{:?}",
            CStr::from_ptr(rd::rd_kafka_event_error_string(event))
        );
        let result = rd::rd_kafka_event_ListConsumerGroups_result(event);
        let mut errors = 0usize;
        rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut errors);
        assert_eq!(errors, 0, "no per-broker errors");
        let mut count = 0usize;
        let listings = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut count);
        let out = (0..count)
            .map(|i| {
                let listing = *listings.add(i);
                let id = CStr::from_ptr(rd::rd_kafka_ConsumerGroupListing_group_id(listing));
                (id.to_string_lossy().into_owned(), rd::rd_kafka_ConsumerGroupListing_type(listing))
            })
            .collect();
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        out
    }
}
