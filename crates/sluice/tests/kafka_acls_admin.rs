//! Proves that with `--authorizer acl` the administrative and group APIs answer what Kafka
//! answers, per resource, to a principal without the right (never a closed connection), as
//! confluent-kafka's AdminClient reports it: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs and AlterConfigs get TOPIC_AUTHORIZATION_FAILED, a broker's configs
//! CLUSTER_AUTHORIZATION_FAILED, DescribeGroups GROUP_AUTHORIZATION_FAILED, and ListGroups
//! lists only the groups the principal may describe; with the right ACL (a prefixed CREATE, a
//! DELETE, ALTER_CONFIGS) the same requests succeed.

mod common;

use common::{add_user_offline, free_port, run_bounded, unique_topic, Broker, BrokerOpts};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const PYTHON: &str = "/usr/bin/python3";

/// Runs a client script as `user` and returns its JSON line.
fn script(name: &str, sasl: &str, (user, password): (&str, &str), args: &[&str]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python").join(name);
    let mut cmd = Command::new(PYTHON);
    cmd.arg(path).args(["--bootstrap", sasl, "--user", user, "--password", password]).args(args).stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{name} {args:?}: {e}\n{stdout}\n{}", common::tail(&out.stderr, 3000)))
}

/// DescribeGroups of one group as bob (PLAIN): (error code, state).
fn describe_group_as_bob(sasl: &str, group: &str) -> (i16, String) {
    use kafka_protocol::messages::{DescribeGroupsRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
    use kafka_protocol::protocol::StrBytes;
    let mut raw = common::raw::Raw::connect_addr(sasl.parse().expect("address"));
    let handshake = raw.request(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")));
    assert_eq!(handshake.error_code, 0);
    let login = raw.request(2, &SaslAuthenticateRequest::default().with_auth_bytes(b"\0bob\0bob-pw".to_vec().into()));
    assert_eq!(login.error_code, 0, "bob logs in");
    let request = DescribeGroupsRequest::default().with_groups(vec![StrBytes::from_string(group.to_string()).into()]);
    let response = raw.request(3, &request);
    (response.groups[0].error_code, response.groups[0].group_state.to_string())
}

#[test]
fn administrative_apis_answer_kafkas_authorization_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    add_user_offline(&data_dir, "admin", "admin-pw");
    add_user_offline(&data_dir, "bob", "bob-pw");
    let sasl = format!("127.0.0.1:{}", free_port());
    let args = ["--kafka-listener", &format!("SASL_PLAINTEXT://{sasl}"), "--authorizer", "acl"]
        .into_iter()
        .chain(["--super-users", "User:admin"])
        .map(String::from)
        .collect();
    let _broker = Broker::start_with(BrokerOpts { args, data_dir: Some(data_dir), ..BrokerOpts::default() });
    let admin = |args: &[&str]| script("admin_ops.py", &sasl, ("admin", "admin-pw"), args);
    let bob = |args: &[&str]| script("admin_ops.py", &sasl, ("bob", "bob-pw"), args);
    let acl = |items: &[&str]| {
        let created = script("acl_admin.py", &sasl, ("admin", "admin-pw"), &[&["create"], items].concat());
        assert!(created["ok"] == true, "{created}");
    };
    let result = |answer: serde_json::Value| answer["result"].as_str().unwrap_or_default().to_string();

    let orders = unique_topic("orders");
    let bobs = format!("bob-{}", unique_topic("t"));
    assert_eq!(result(admin(&["create-topic", &orders])), "OK");
    acl(&[&format!("TOPIC:{orders}:LITERAL:User:bob:WRITE:ALLOW"), "GROUP:bob-group:LITERAL:User:bob:READ:ALLOW"]);

    // Without the right: the resource's error, as the AdminClient reports it.
    assert_eq!(result(bob(&["create-topic", &bobs])), "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(result(bob(&["delete-topic", &orders])), "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(result(bob(&["create-partitions", &orders, "2"])), "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(result(bob(&["describe-config", &orders])), "TOPIC_AUTHORIZATION_FAILED");
    assert_eq!(result(bob(&["alter-config", &orders, "retention.ms=60000"])), "TOPIC_AUTHORIZATION_FAILED");
    let broker_config = bob(&["describe-broker-config", "0"]);
    assert_eq!(result(broker_config.clone()), "CLUSTER_AUTHORIZATION_FAILED", "{broker_config}");
    assert_eq!(result(admin(&["describe-config", &orders])), "OK", "{orders} is still there");

    // Groups: bob lists and describes only what he may describe.
    assert_eq!(result(admin(&["commit", "bob-group", &orders])), "OK");
    assert_eq!(result(admin(&["commit", "admin-group", &orders])), "OK");
    let listed = |answer: serde_json::Value| answer["groups"].as_array().cloned().unwrap_or_default();
    let all = listed(admin(&["list-groups"]));
    assert!(all.contains(&"bob-group".into()) && all.contains(&"admin-group".into()), "{all:?}");
    assert_eq!(listed(bob(&["list-groups"])), vec![serde_json::Value::from("bob-group")]);
    // librdkafka leaves a refused group out of its answer: DescribeGroups itself, raw.
    assert_eq!(describe_group_as_bob(&sasl, "admin-group"), (30, String::new()), "GROUP_AUTHORIZATION_FAILED");
    assert_eq!(describe_group_as_bob(&sasl, "bob-group"), (0, "Empty".to_string()));

    // With the right ACL the same requests succeed.
    acl(&[
        "TOPIC:bob-:PREFIXED:User:bob:CREATE:ALLOW",
        &format!("TOPIC:{orders}:LITERAL:User:bob:ALTER_CONFIGS:ALLOW"),
        &format!("TOPIC:{orders}:LITERAL:User:bob:DELETE:ALLOW"),
    ]);
    assert_eq!(result(bob(&["create-topic", &bobs])), "OK");
    assert_eq!(result(bob(&["describe-config", &orders])), "OK", "ALTER_CONFIGS implies DESCRIBE_CONFIGS");
    assert_eq!(result(bob(&["alter-config", &orders, "retention.ms=60000"])), "OK");
    assert_eq!(result(bob(&["delete-topic", &orders])), "OK");
}
