//! Proves Kafka's ACL authorization with real clients: kafka-python's AdminClient (as a super
//! user) creates, describes and deletes ACLs; kcat as a principal allowed to produce but not to
//! consume a topic is refused exactly what it may not do; Metadata hides the topics it may not
//! describe and ListOffsets withholds their offsets; a prefixed ACL allows, a DENY beats it;
//! group APIs need READ on the group; an ordinary principal cannot manage ACLs, and an
//! administrative API it may not call (DeleteTopics) is answered TOPIC_AUTHORIZATION_FAILED.

mod common;

use common::raw::Raw;
use common::{run_bounded, start_sasl_broker, unique_topic, Broker};
use kafka_protocol::messages::{JoinGroupRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const PYTHON: &str = "/usr/bin/python3";

fn admin(sasl: &str, args: &[&str]) -> serde_json::Value {
    admin_as(sasl, ("admin", "admin-pw"), args)
}

fn admin_as(sasl: &str, (user, password): (&str, &str), args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/acl_admin.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script).args(["--bootstrap", sasl, "--user", user, "--password", password]).args(args).stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("acl_admin {args:?}: {e}\n{stdout}\n{}", common::tail(&out.stderr, 3000)))
}

/// kcat as `user` over SASL_PLAINTEXT with PLAIN: (success, stdout, stderr).
fn kcat(sasl: &str, user: &str, password: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("kcat");
    cmd.args(["-b", sasl, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"])
        .args(["-X", &format!("sasl.username={user}"), "-X", &format!("sasl.password={password}")])
        .args(args);
    let input = tempfile::NamedTempFile::new().expect("stdin file");
    std::fs::write(input.path(), stdin.unwrap_or("")).expect("write stdin");
    cmd.stdin(std::fs::File::open(input.path()).expect("open stdin"));
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A raw connection logged in as bob (PLAIN).
fn bob(sasl: &str) -> Raw {
    logged_in(sasl, "bob", "bob-pw")
}

fn list_offsets_as_bob(sasl: &str, topic: &str) -> i16 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut request = kafka_protocol::messages::ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    let mut t = ListOffsetsTopic::default();
    t.name = StrBytes::from_string(topic.to_string()).into();
    t.partitions = vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)];
    request.topics = vec![t];
    let response = bob(sasl).request(1, &request);
    response.topics[0].partitions[0].error_code
}

fn join_group_as_bob(sasl: &str, group: &str) -> i16 {
    let mut raw = bob(sasl);
    let mut join = JoinGroupRequest::default();
    join.group_id = StrBytes::from_string(group.to_string()).into();
    join.session_timeout_ms = 10_000;
    join.rebalance_timeout_ms = 10_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    raw.request(5, &join).error_code
}

/// A broker with one SASL_PLAINTEXT listener and the ACL authorizer, users admin (a super
/// user) and `user`: it, the listener's address, and the directory holding its data.
fn start_broker((user, password): (&str, &str)) -> (Broker, String, tempfile::TempDir) {
    start_sasl_broker(
        &[("admin", "admin-pw"), (user, password)],
        &["--authorizer", "acl", "--super-users", "User:admin"],
    )
}

#[test]
fn acls_allow_and_refuse_what_kafka_would() {
    let (_broker, sasl, _dir) = start_broker(("bob", "bob-pw"));
    let (orders, logs, secret, hidden) =
        (unique_topic("orders"), unique_topic("logs-app"), unique_topic("logs-secret"), unique_topic("hidden"));
    let created = admin(
        &sasl,
        &[
            "create",
            &format!("TOPIC:{orders}:LITERAL:User:bob:WRITE:ALLOW"),
            "TOPIC:logs-:PREFIXED:User:bob:READ:ALLOW",
            &format!("TOPIC:{secret}:LITERAL:User:bob:READ:DENY"),
            "GROUP:bob-group:LITERAL:User:bob:READ:ALLOW",
        ],
    );
    assert!(created["ok"] == true, "{created}");
    let described = admin(&sasl, &["describe"]);
    assert_eq!(described["acls"].as_array().map(Vec::len), Some(4), "{described}");

    // The super user writes everywhere (and so creates the topics: bob may not).
    for topic in [&orders, &logs, &secret, &hidden] {
        let (ok, _, err) = kcat(&sasl, "admin", "admin-pw", &["-P", "-t", topic], Some("from-admin\n"));
        assert!(ok, "admin produces to {topic}: {err}");
    }
    // bob may produce to orders but not read it.
    let (ok, _, err) = kcat(&sasl, "bob", "bob-pw", &["-P", "-t", &orders], Some("from-bob\n"));
    assert!(ok, "bob produces to {orders}: {err}");
    let consume = |topic: &str| kcat(&sasl, "bob", "bob-pw", &["-C", "-t", topic, "-o", "beginning", "-e"], None);
    let (ok, _, err) = consume(&orders);
    assert!(!ok && err.contains("Topic authorization failed"), "bob may not read {orders}: {err}");
    // A prefixed ACL lets bob read logs-*, a DENY on one of them wins.
    let (ok, out, err) = consume(&logs);
    assert!(ok && out.contains("from-admin"), "bob reads {logs}: {out}\n{err}");
    let (ok, _, err) = consume(&secret);
    assert!(!ok && err.contains("Topic authorization failed"), "deny beats allow on {secret}: {err}");
    // Offsets of a topic bob may not describe are withheld (ListOffsets).
    assert_eq!(list_offsets_as_bob(&sasl, &hidden), 29, "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(list_offsets_as_bob(&sasl, &logs), 0);
    // Metadata lists what bob may describe, and not the rest.
    let (ok, out, err) = kcat(&sasl, "bob", "bob-pw", &["-L"], None);
    assert!(ok && out.contains(&orders) && out.contains(&logs), "{out}\n{err}");
    assert!(!out.contains(&hidden), "bob does not see {hidden}: {out}");
    // Groups need READ on the group.
    assert_eq!(join_group_as_bob(&sasl, "other-group"), 30, "GROUP_AUTHORIZATION_FAILED");
    assert_ne!(join_group_as_bob(&sasl, "bob-group"), 30);
    // DeleteTopics needs DELETE on the topic: bob gets TOPIC_AUTHORIZATION_FAILED in the
    // response, on a connection that stays open.
    let mut raw = bob(&sasl);
    let mut delete = kafka_protocol::messages::DeleteTopicsRequest::default();
    delete.topic_names = vec![StrBytes::from_string(logs.clone()).into()];
    delete.timeout_ms = 5000;
    let response = raw.request(3, &delete);
    assert_eq!(response.responses.len(), 1);
    assert_eq!(response.responses[0].error_code, 29, "TOPIC_AUTHORIZATION_FAILED");
    let again = raw.request(3, &delete);
    assert_eq!(again.responses[0].error_code, 29, "the connection stays open");
    let (ok, out, _) = consume(&logs);
    assert!(ok && out.contains("from-admin"), "{logs} is still there");
    // bob cannot manage ACLs; deleting his ACLs takes his rights away.
    let refused = admin_as(&sasl, ("bob", "bob-pw"), &["describe"]);
    assert!(
        refused["ok"] == false && refused["error"].as_str().unwrap_or("").contains("ClusterAuthorizationFailed"),
        "{refused}"
    );
    let deleted = admin(&sasl, &["delete", "User:bob"]);
    assert_eq!(deleted["deleted"].as_array().map(Vec::len), Some(4), "{deleted}");
    let (ok, _, err) = kcat(&sasl, "bob", "bob-pw", &["-P", "-t", &orders], Some("again\n"));
    assert!(!ok && err.contains("Topic authorization failed"), "no ACL: refused: {err}");
}

/// A raw connection logged in as `user` (PLAIN).
fn logged_in(sasl: &str, user: &str, password: &str) -> Raw {
    let mut raw = Raw::connect_addr(sasl.parse().expect("address"));
    let handshake = raw.request(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")));
    assert_eq!(handshake.error_code, 0);
    let token = format!("\0{user}\0{password}").into_bytes();
    let login = raw.request(2, &SaslAuthenticateRequest::default().with_auth_bytes(token.into()));
    assert_eq!(login.error_code, 0, "{user} logs in");
    raw
}

/// A Produce v7 of one record to partition 0 of `topic`, as `user`: its error code.
fn produce_as(sasl: &str, user: &str, password: &str, topic: &str) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(bytes::Bytes::from_static(b"direct")),
        headers: Default::default(),
    };
    let mut records = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut records, &[record], &options).expect("encode a batch");
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(records.freeze()));
    let data = TopicProduceData::default()
        .with_name(StrBytes::from_string(topic.into()).into())
        .with_partition_data(vec![partition]);
    let request = kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![data]);
    let response = logged_in(sasl, user, password).request(7, &request);
    response.responses[0].partition_responses[0].error_code
}

/// Metadata v8 for `topic` (no auto-creation) with the topic's and the cluster's authorized
/// operations, as `user`: (topic error, topic operations, cluster operations).
fn metadata_operations(sasl: &str, user: &str, password: &str, topic: &str) -> (i16, i32, i32) {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut request = kafka_protocol::messages::MetadataRequest::default();
    let name = StrBytes::from_string(topic.into()).into();
    request.topics = Some(vec![MetadataRequestTopic::default().with_name(Some(name))]);
    request.include_cluster_authorized_operations = true;
    request.include_topic_authorized_operations = true;
    let response = logged_in(sasl, user, password).request(8, &request);
    let found = &response.topics[0];
    (found.error_code, found.topic_authorized_operations, response.cluster_authorized_operations)
}

/// DescribeGroups v3 with authorized operations, as `user`. (kafka-python 2.0.2 asks v3 but
/// decodes the answer as v2, so it always reports None; librdkafka 1.x does not ask.)
fn group_operations(sasl: &str, user: &str, password: &str, group: &str) -> i32 {
    let mut request = kafka_protocol::messages::DescribeGroupsRequest::default();
    request.groups = vec![StrBytes::from_string(group.into()).into()];
    request.include_authorized_operations = true;
    let response = logged_in(sasl, user, password).request(3, &request);
    assert_eq!(response.groups[0].error_code, 0);
    response.groups[0].authorized_operations
}

/// Proves two of Kafka's finer rules with real clients: a topic is auto-created for a
/// principal only with CREATE on the cluster or on the topic (kcat producing to a new topic
/// is refused, and nothing is created, until a prefixed CREATE ACL is added), and KIP-430's
/// authorized operations (Metadata's topic and cluster sets, DescribeGroups') are the
/// principal's own, not the resource type's full set.
#[test]
fn auto_creation_needs_create_and_authorized_operations_are_the_principals() {
    let (broker, sasl, _dir) = start_broker(("carol", "carol-pw"));
    let created = admin(
        &sasl,
        &["create", "TOPIC:carol-:PREFIXED:User:carol:WRITE:ALLOW", "GROUP:carol-group:LITERAL:User:carol:READ:ALLOW"],
    );
    assert!(created["ok"] == true, "{created}");
    let topic = unique_topic("carol-new");
    let topic_exists = || {
        let (status, body) = common::http(broker.http_port(), "GET", "/api/topics", b"");
        assert_eq!(status, 200, "{body}");
        body.contains(&format!("\"{topic}\""))
    };

    // WRITE (and so DESCRIBE) but no CREATE: the new topic is refused and not created.
    let produce = || kcat(&sasl, "carol", "carol-pw", &["-P", "-t", &topic], Some("hello\n"));
    let (ok, _, err) = produce();
    assert!(!ok && err.contains("Topic authorization failed"), "no CREATE: refused: {err}");
    assert!(!topic_exists(), "{topic} was not created");
    // Nor by a Produce sent straight away, without asking Metadata first.
    assert_eq!(produce_as(&sasl, "carol", "carol-pw", &topic), 29, "TOPIC_AUTHORIZATION_FAILED");
    assert!(!topic_exists(), "{topic} was not created by Produce");
    // CREATE on the topic (prefixed): auto-created on first use.
    let granted = admin(&sasl, &["create", "TOPIC:carol-:PREFIXED:User:carol:CREATE:ALLOW"]);
    assert!(granted["ok"] == true, "{granted}");
    let (ok, _, err) = produce();
    assert!(ok, "with CREATE on carol-*: {err}");
    assert!(topic_exists(), "{topic} auto-created");

    // KIP-430: the principal's own operations.
    let (code, topic_ops, cluster_ops) = metadata_operations(&sasl, "carol", "carol-pw", &topic);
    assert_eq!(code, 0);
    assert_eq!(topic_ops, (1 << 4) | (1 << 5) | (1 << 8), "WRITE, CREATE and (implied) DESCRIBE");
    assert_eq!(cluster_ops, 0, "nothing on the cluster");
    let (_, topic_ops, cluster_ops) = metadata_operations(&sasl, "admin", "admin-pw", &topic);
    assert_eq!((topic_ops, cluster_ops), (3576, 8096), "a super user: Kafka's full sets");
    let group = "carol-group";
    assert_eq!(group_operations(&sasl, "carol", "carol-pw", group), (1 << 3) | (1 << 8), "READ implies DESCRIBE");
    assert_eq!(group_operations(&sasl, "admin", "admin-pw", group), 328, "a super user: the full set");
}
