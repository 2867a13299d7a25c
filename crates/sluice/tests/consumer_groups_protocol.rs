//! Proves, over raw Kafka requests, that committed offsets survive a clean restart, a
//! kill -9 and a torn offsets-log tail, and that bad group input (wrong generation, unknown
//! member, no common protocol, absurd session timeouts, fenced static instance, commits to
//! missing partitions) gets Kafka's error codes without corrupting the group.

mod common;
mod group_support;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::raw::Raw;
use common::{unique_topic, Broker};
use group_support::committed;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create_topic(raw: &mut Raw, topic: &str, partitions: i32) {
    let mut t = CreatableTopic::default();
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    t.name = TopicName(s(topic));
    req.topics.push(t);
    req.timeout_ms = 10_000;
    let resp = raw.request(2, &req);
    assert!(resp.topics.iter().all(|t| t.error_code == NONE), "create topic {topic}");
}

fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = offsets
        .iter()
        .map(|(p, o)| {
            let mut part = OffsetCommitRequestPartition::default();
            part.partition_index = *p;
            part.committed_offset = *o;
            part.committed_metadata = Some(s(&format!("meta-{p}-{o}")));
            part
        })
        .collect();
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = generation;
    req.member_id = s(member);
    req.topics = vec![t];
    req
}

/// Commits at `version` and returns every partition's error code.
fn commit(raw: &mut Raw, version: i16, req: &OffsetCommitRequest) -> Vec<i16> {
    let resp = raw.request(version, req);
    resp.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
}

fn join(
    raw: &mut Raw,
    version: i16,
    group: &str,
    member: &str,
    instance: Option<&str>,
    session_ms: i32,
    protocols: &[&str],
) -> JoinGroupResponse {
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.session_timeout_ms = session_ms;
    req.rebalance_timeout_ms = 10_000;
    req.member_id = s(member);
    req.group_instance_id = instance.map(s);
    req.protocol_type = s("consumer");
    req.protocols = protocols
        .iter()
        .map(|p| {
            let mut proto = JoinGroupRequestProtocol::default();
            proto.name = s(p);
            proto.metadata = Bytes::from(format!("metadata-of-{p}"));
            proto
        })
        .collect();
    raw.request(version, &req)
}

fn sync(raw: &mut Raw, group: &str, generation: i32, member: &str, assignment: &[u8]) -> SyncGroupResponse {
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id = generation;
    req.member_id = s(member);
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(member);
    a.assignment = Bytes::copy_from_slice(assignment);
    req.assignments = vec![a];
    raw.request(0, &req)
}

fn heartbeat(raw: &mut Raw, version: i16, group: &str, generation: i32, member: &str, instance: Option<&str>) -> i16 {
    let mut req = HeartbeatRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id = generation;
    req.member_id = s(member);
    req.group_instance_id = instance.map(s);
    raw.request(version, &req).error_code
}

fn describe(raw: &mut Raw, group: &str) -> describe_groups_response::DescribedGroup {
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(s(group))];
    raw.request(0, &req).groups.remove(0)
}

#[test]
fn commits_survive_clean_restart_in_every_commit_version() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("offsets-restart");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic, 3);
    // v0 (no generation), v1 and v2 as sarama/kafka-python send them, v8 flexible.
    for (version, group, base) in [(0i16, "g-v0", 10i64), (1, "g-v1", 20), (2, "g-v2", 30), (8, "g-v8", 40)] {
        let req = commit_request(group, -1, "", &topic, &[(0, base), (1, base + 1), (2, base + 2)]);
        assert_eq!(commit(&mut raw, version, &req), vec![NONE; 3], "commit v{version}");
    }
    drop(raw);
    broker.restart();
    for (group, base) in [("g-v0", 10i64), ("g-v1", 20), ("g-v2", 30), ("g-v8", 40)] {
        assert_eq!(committed(&broker, group, &topic, 3), vec![base, base + 1, base + 2], "{group} after restart");
    }
    // Multi-group OffsetFetch (v8) and metadata kept with the offset.
    let mut raw = Raw::connect(&broker);
    let mut req = OffsetFetchRequest::default();
    for g in ["g-v1", "g-v8", "never-committed"] {
        let mut group = OffsetFetchRequestGroup::default();
        group.group_id = GroupId(s(g));
        let mut t = OffsetFetchRequestTopics::default();
        t.name = TopicName(s(&topic));
        t.partition_indexes = vec![0, 2];
        group.topics = Some(vec![t]);
        req.groups.push(group);
    }
    let resp = raw.request(8, &req);
    let got: Vec<(String, Vec<(i64, String)>)> = resp
        .groups
        .iter()
        .map(|g| {
            let parts = g.topics.iter().flat_map(|t| t.partitions.iter());
            let parts = parts.map(|p| (p.committed_offset, p.metadata.as_deref().unwrap_or("").to_string()));
            (g.group_id.0.to_string(), parts.collect())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("g-v1".to_string(), vec![(20, "meta-0-20".to_string()), (22, "meta-2-22".to_string())]),
            ("g-v8".to_string(), vec![(40, "meta-0-40".to_string()), (42, "meta-2-42".to_string())]),
            ("never-committed".to_string(), vec![(-1, String::new()), (-1, String::new())]),
        ]
    );
}

#[test]
fn commits_survive_kill9_and_a_torn_offsets_log_tail() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("offsets-kill9");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic, 2);
    for i in 0..500i64 {
        let req = commit_request("g-kill", -1, "", &topic, &[(0, i), (1, 1000 + i)]);
        assert_eq!(commit(&mut raw, 2, &req), vec![NONE; 2]);
    }
    drop(raw);
    broker.kill9();
    broker.restart();
    assert_eq!(committed(&broker, "g-kill", &topic, 2), vec![499, 1499], "acknowledged commits after kill -9");

    // A torn record at the tail (a crash mid-write) is truncated; everything before it stays.
    broker.stop();
    let log = broker.data_dir().join("groups/offsets.log");
    let mut bytes = std::fs::read(&log).expect("offsets log exists");
    let len_before = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 60, 0xde, 0xad, 0xbe, 0xef, 1, 0, 7]);
    std::fs::write(&log, &bytes).unwrap();
    broker.restart();
    assert_eq!(committed(&broker, "g-kill", &topic, 2), vec![499, 1499], "commits after a torn tail");
    assert!(broker.log_contents().contains("truncating torn or corrupt tail of offsets log"));
    assert!(std::fs::metadata(&log).unwrap().len() <= len_before as u64, "torn tail removed");
    // And the store still takes commits after recovery.
    let mut raw = Raw::connect(&broker);
    assert_eq!(commit(&mut raw, 2, &commit_request("g-kill", -1, "", &topic, &[(0, 600)])), vec![NONE]);
    drop(raw);
    broker.restart();
    assert_eq!(committed(&broker, "g-kill", &topic, 2), vec![600, 1499]);
}

#[test]
fn bad_group_input_gets_kafka_error_codes_and_leaves_the_group_intact() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("grp-bad");
    let group = unique_topic("g-bad");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic, 2);

    // Absurd session timeouts and an empty group id.
    for ms in [0, -5, 10, 3_600_000 * 10] {
        let r = join(&mut raw, 1, &group, "", None, ms, &["range"]);
        assert_eq!(r.error_code, INVALID_SESSION_TIMEOUT, "session timeout {ms}");
    }
    assert_eq!(join(&mut raw, 1, "", "", None, 10_000, &["range"]).error_code, INVALID_GROUP_ID);
    assert_eq!(join(&mut raw, 1, &group, "", None, 10_000, &[]).error_code, INCONSISTENT_GROUP_PROTOCOL);

    // One member (v1: member id at once), generation 1, leader of itself.
    let r = join(&mut raw, 1, &group, "", None, 10_000, &["range", "roundrobin"]);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1, "generations start at 1");
    let member = r.member_id.to_string();
    assert!(!member.is_empty());
    assert_eq!(r.leader.to_string(), member);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    let s1 = sync(&mut raw, &group, 1, &member, b"assignment-1");
    assert_eq!((s1.error_code, &s1.assignment[..]), (NONE, &b"assignment-1"[..]));

    // No common protocol / wrong protocol type: refused, group untouched.
    let mut other = Raw::connect(&broker);
    assert_eq!(join(&mut other, 1, &group, "", None, 10_000, &["sticky"]).error_code, INCONSISTENT_GROUP_PROTOCOL);
    // Unknown member and wrong generation on heartbeat, sync and commit.
    assert_eq!(heartbeat(&mut raw, 0, &group, 1, "nobody", None), UNKNOWN_MEMBER_ID);
    assert_eq!(heartbeat(&mut raw, 0, &group, 7, &member, None), ILLEGAL_GENERATION);
    assert_eq!(sync(&mut raw, &group, 7, &member, b"x").error_code, ILLEGAL_GENERATION);
    assert_eq!(sync(&mut raw, &group, 1, "nobody", b"x").error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(commit(&mut raw, 2, &commit_request(&group, 7, &member, &topic, &[(0, 5)])), vec![ILLEGAL_GENERATION]);
    assert_eq!(commit(&mut raw, 2, &commit_request(&group, 1, "nobody", &topic, &[(0, 5)])), vec![UNKNOWN_MEMBER_ID]);
    assert_eq!(commit(&mut raw, 2, &commit_request(&group, -1, "", &topic, &[(0, 5)])), vec![UNKNOWN_MEMBER_ID]);
    assert_eq!(
        commit(&mut raw, 2, &commit_request(&group, 1, &member, &topic, &[(0, 5), (9, 5)])),
        vec![NONE, UNKNOWN_TOPIC_OR_PARTITION],
        "a commit to a partition that does not exist"
    );
    assert_eq!(
        commit(&mut raw, 2, &commit_request(&group, 1, &member, "no-such-topic", &[(0, 5)])),
        vec![UNKNOWN_TOPIC_OR_PARTITION]
    );
    // Commits with a wrong generation to a group that does not exist.
    assert_eq!(commit(&mut raw, 2, &commit_request("ghost", 3, "m", &topic, &[(0, 1)])), vec![ILLEGAL_GENERATION]);

    // The group is intact: stable, same member, same assignment, heartbeats fine.
    assert_eq!(heartbeat(&mut raw, 0, &group, 1, &member, None), NONE);
    let d = describe(&mut raw, &group);
    assert_eq!((d.error_code, d.group_state.as_str(), d.protocol_data.as_str()), (NONE, "Stable", "range"));
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), member);
    assert_eq!(&d.members[0].member_metadata[..], b"metadata-of-range");
    assert_eq!(&d.members[0].member_assignment[..], b"assignment-1");
    assert_eq!(committed(&broker, &group, &topic, 2), vec![5, -1]);

    // A non-empty group cannot be deleted; after the member leaves it can.
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s(&group)), GroupId(s("never-existed"))];
    let codes: Vec<i16> = raw.request(1, &del).results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND]);
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s(&group));
    leave.member_id = s(&member);
    assert_eq!(raw.request(0, &leave).error_code, NONE);
    assert_eq!(describe(&mut raw, &group).group_state.as_str(), "Empty");
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s(&group))];
    assert_eq!(raw.request(1, &del).results[0].error_code, NONE);
    assert_eq!(committed(&broker, &group, &topic, 2), vec![-1, -1], "offsets deleted with the group");
    broker.assert_running();
}

#[test]
fn member_id_required_round_trip_and_static_fencing() {
    let broker = Broker::start(&[]);
    let group = unique_topic("g-v4");
    let mut raw = Raw::connect(&broker);
    // v4+: a new dynamic member first gets its id with MEMBER_ID_REQUIRED.
    let r = join(&mut raw, 5, &group, "", None, 10_000, &["range"]);
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    let id = r.member_id.to_string();
    assert!(!id.is_empty());
    let r = join(&mut raw, 5, &group, &id, None, 10_000, &["range"]);
    assert_eq!((r.error_code, r.generation_id, r.member_id.as_str()), (NONE, 1, id.as_str()));

    // Static members: a second join with the same instance id fences the first member id.
    let sgroup = unique_topic("g-static");
    let r1 = join(&mut raw, 5, &sgroup, "", Some("inst-1"), 10_000, &["range"]);
    assert_eq!(r1.error_code, NONE, "static members skip MEMBER_ID_REQUIRED");
    let old = r1.member_id.to_string();
    assert_eq!(sync(&mut raw, &sgroup, r1.generation_id, &old, b"a").error_code, NONE);
    let r2 = join(&mut raw, 5, &sgroup, "", Some("inst-1"), 10_000, &["range"]);
    assert_eq!(r2.error_code, NONE);
    assert_eq!(r2.generation_id, r1.generation_id, "a static restart with nothing changed keeps the generation");
    let new = r2.member_id.to_string();
    assert_ne!(new, old);
    assert_eq!(heartbeat(&mut raw, 3, &sgroup, r2.generation_id, &old, Some("inst-1")), FENCED_INSTANCE_ID);
    assert_eq!(heartbeat(&mut raw, 3, &sgroup, r2.generation_id, &new, Some("inst-1")), NONE);
    // Batched LeaveGroup (v3+) by instance id; an unknown instance gets its own error.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s(&sgroup));
    let mut a = MemberIdentity::default();
    a.group_instance_id = Some(s("inst-1"));
    let mut b = MemberIdentity::default();
    b.group_instance_id = Some(s("inst-unknown"));
    leave.members = vec![a, b];
    let resp = raw.request(3, &leave);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(resp.members.iter().map(|m| m.error_code).collect::<Vec<_>>(), vec![NONE, UNKNOWN_MEMBER_ID]);
    assert_eq!(describe(&mut raw, &sgroup).group_state.as_str(), "Empty");
    // A heartbeat during a rebalance is told to rejoin.
    let rgroup = unique_topic("g-rebalance");
    let r = join(&mut raw, 1, &rgroup, "", None, 10_000, &["range"]);
    let mut second = Raw::connect(&broker);
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(&rgroup));
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 10_000;
    req.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    req.protocols = vec![p];
    // Sent without waiting: this join parks until the first member rejoins.
    let second_join = std::thread::spawn(move || second.request(1, &req));
    common::wait_until(std::time::Duration::from_secs(10), "the second join to start a rebalance", || {
        describe(&mut raw, &rgroup).group_state.as_str() == "PreparingRebalance"
    });
    assert_eq!(heartbeat(&mut raw, 0, &rgroup, r.generation_id, r.member_id.as_str(), None), REBALANCE_IN_PROGRESS);
    let again = join(&mut raw, 1, &rgroup, r.member_id.as_str(), None, 10_000, &["range"]);
    let other = second_join.join().expect("second join");
    assert_eq!((again.error_code, other.error_code), (NONE, NONE));
    assert_eq!((again.generation_id, other.generation_id), (2, 2));
    assert_eq!(again.members.len() + other.members.len(), 2, "only the leader gets the member list");
}

#[test]
fn find_coordinator_list_groups_and_offset_delete() {
    let broker = Broker::start(&[]);
    let mut raw = Raw::connect(&broker);
    let mut req = FindCoordinatorRequest::default();
    req.key = s("any-group");
    let r = raw.request(0, &req);
    assert_eq!((r.error_code, r.port), (NONE, i32::from(broker.port())));
    let mut req = FindCoordinatorRequest::default();
    req.coordinator_keys = vec![s("a"), s("b")];
    let r = raw.request(4, &req);
    assert_eq!(r.coordinators.len(), 2);
    assert!(r.coordinators.iter().all(|c| c.error_code == NONE && c.port == i32::from(broker.port())));

    let topic = unique_topic("offdel");
    create_topic(&mut raw, &topic, 2);
    assert_eq!(commit(&mut raw, 2, &commit_request("g-list", -1, "", &topic, &[(0, 1), (1, 2)])), vec![NONE; 2]);
    let listed = raw.request(4, &ListGroupsRequest::default());
    let g = listed.groups.iter().find(|g| g.group_id.0.as_str() == "g-list").expect("group listed");
    assert_eq!(g.group_state.as_str(), "Empty");

    let mut del = OffsetDeleteRequest::default();
    del.group_id = GroupId(s("g-list"));
    let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
    t.name = TopicName(s(&topic));
    let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
    p.partition_index = 0;
    t.partitions = vec![p];
    del.topics = vec![t];
    let resp = raw.request(0, &del);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(committed(&broker, "g-list", &topic, 2), vec![-1, 2]);
    let mut del = OffsetDeleteRequest::default();
    del.group_id = GroupId(s("no-such-group"));
    assert_eq!(raw.request(0, &del).error_code, GROUP_ID_NOT_FOUND);
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_configured_retention() {
    let broker = Broker::start(&["--offsets-retention-ms", "1500"]);
    let topic = unique_topic("offsets-retention");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic, 1);
    assert_eq!(commit(&mut raw, 2, &commit_request("g-expiring", -1, "", &topic, &[(0, 7)])), vec![NONE]);
    assert_eq!(committed(&broker, "g-expiring", &topic, 1), vec![7]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while committed(&broker, "g-expiring", &topic, 1) != vec![-1] {
        assert!(std::time::Instant::now() < deadline, "offsets never expired");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(broker.log_contents().contains("committed offsets expired"));
}

#[test]
fn newest_flexible_versions_round_trip() {
    let broker = Broker::start(&[]);
    let group = unique_topic("g-flex");
    let mut raw = Raw::connect(&broker);
    let r = join(&mut raw, 9, &group, "", None, 10_000, &["range"]);
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    let r = join(&mut raw, 9, &group, r.member_id.as_str(), None, 10_000, &["range"]);
    assert_eq!((r.error_code, r.generation_id), (NONE, 1));
    assert_eq!((r.protocol_type.as_deref(), r.protocol_name.as_deref()), (Some("consumer"), Some("range")));
    let member = r.member_id.to_string();
    let mut req = SyncGroupRequest::default();
    req.group_id = GroupId(s(&group));
    req.generation_id = 1;
    req.member_id = s(&member);
    req.protocol_type = Some(s("consumer"));
    req.protocol_name = Some(s("range"));
    let mut a = SyncGroupRequestAssignment::default();
    a.member_id = s(&member);
    a.assignment = Bytes::from_static(b"flex");
    req.assignments = vec![a];
    let sr = raw.request(5, &req);
    assert_eq!((sr.error_code, &sr.assignment[..], sr.protocol_name.as_deref()), (NONE, &b"flex"[..], Some("range")));
    assert_eq!(heartbeat(&mut raw, 4, &group, 1, &member, None), NONE);
    let mut d = DescribeGroupsRequest::default();
    d.groups = vec![GroupId(s(&group))];
    let described = raw.request(5, &d);
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    let listed = raw.request(3, &ListGroupsRequest::default());
    assert!(listed.groups.iter().any(|g| g.group_id.0.as_str() == group));
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s(&group));
    let mut m = MemberIdentity::default();
    m.member_id = s(&member);
    m.reason = Some(s("test done"));
    leave.members = vec![m];
    let lr = raw.request(5, &leave);
    assert_eq!((lr.error_code, lr.members[0].error_code), (NONE, NONE));
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s(&group))];
    assert_eq!(raw.request(2, &del).results[0].error_code, NONE, "an empty group can be deleted");
    assert_eq!(raw.request(2, &del).results[0].error_code, GROUP_ID_NOT_FOUND, "and is then gone");
    let mut fc = FindCoordinatorRequest::default();
    fc.key = s(&group);
    assert_eq!(raw.request(3, &fc).error_code, NONE);
}
