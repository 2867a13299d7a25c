//! Proves `sluice acl add|list|delete` with kafka-acls.sh's flags: bindings made offline in a
//! stopped broker's data directory (`--data-dir`) are in force once it starts; against the
//! running broker (`--bootstrap`, logged in with SASL PLAIN as a super user) a prefixed
//! allow lets kcat produce, `list --json` shows the bindings in Kafka's words, `delete` takes
//! them away (kcat is refused again), and a principal without ALTER on the cluster is refused.

mod common;

use common::{free_port, run_bounded, unique_topic, Broker, BrokerOpts, SLUICE_BIN};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

fn sluice(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args).stdin(Stdio::null());
    common::clear_sluice_env(&mut cmd);
    cmd.envs(env.iter().copied());
    run_bounded(&mut cmd, CLIENT_TIMEOUT)
}

fn sluice_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = sluice(args, env);
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn add_user_offline(data_dir: &Path, name: &str, password: &str) {
    let dir = data_dir.to_str().expect("utf-8 path");
    sluice_ok(&["user", "add", name, "--data-dir", dir], &[("SLUICE_USER_PASSWORD", password)]);
}

/// kcat produces one message as `user` (PLAIN): whether it succeeded, and its stderr.
fn produce(sasl: &str, user: &str, password: &str, topic: &str) -> (bool, String) {
    let mut cmd = Command::new("kcat");
    cmd.args(["-b", sasl, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"])
        .args(["-X", &format!("sasl.username={user}"), "-X", &format!("sasl.password={password}")])
        .args(["-P", "-t", topic]);
    let input = tempfile::NamedTempFile::new().expect("stdin file");
    std::fs::write(input.path(), "hello\n").expect("write stdin");
    cmd.stdin(std::fs::File::open(input.path()).expect("open stdin"));
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn acl_cli_adds_lists_and_deletes_bindings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    add_user_offline(&data_dir, "admin", "admin-pw");
    add_user_offline(&data_dir, "alice", "alice-pw");
    let dir_arg = data_dir.to_str().expect("utf-8 path").to_string();
    // Offline, before the broker runs: alice may write (and so auto-create) the topic `audit`.
    let refused = sluice(&["acl", "add", "--data-dir", &dir_arg, "--allow-principal", "User:alice"], &[]);
    assert!(!refused.status.success(), "a binding needs a resource");
    sluice_ok(
        &["acl", "add", "--data-dir", &dir_arg, "--allow-principal", "User:alice", "--operation", "Write"]
            .into_iter()
            .chain(["--operation", "Create"])
            .chain(["--topic", "audit"])
            .collect::<Vec<_>>(),
        &[],
    );

    let sasl = format!("127.0.0.1:{}", free_port());
    let args = ["--kafka-listener", &format!("SASL_PLAINTEXT://{sasl}"), "--authorizer", "acl"]
        .into_iter()
        .chain(["--super-users", "User:admin"])
        .map(String::from)
        .collect();
    let _broker = Broker::start_with(BrokerOpts { args, data_dir: Some(data_dir), ..BrokerOpts::default() });
    let (ok, err) = produce(&sasl, "alice", "alice-pw", "audit");
    assert!(ok, "the offline binding is in force: {err}");

    let admin = [("SLUICE_SASL_PASSWORD", "admin-pw")];
    let online = ["--bootstrap", &sasl, "--sasl-user", "admin"];
    let topic = unique_topic("alice-orders");
    let (ok, err) = produce(&sasl, "alice", "alice-pw", &topic);
    assert!(!ok && err.contains("Topic authorization failed"), "no ACL yet: {err}");
    let add = ["acl", "add", "--allow-principal", "User:alice", "--operation", "Write", "--operation", "Create"];
    let prefixed = ["--topic", "alice-", "--resource-pattern-type", "prefixed"];
    sluice_ok(&[&add[..], &prefixed, &online].concat(), &admin);
    let (ok, err) = produce(&sasl, "alice", "alice-pw", &topic);
    assert!(ok, "a prefixed allow: {err}");

    let listed = sluice_ok(&[&["acl", "list", "--json", "--principal", "User:alice"][..], &online].concat(), &admin);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let bindings = listed.as_array().expect("an array");
    assert_eq!(bindings.len(), 4, "{listed}");
    let expected = serde_json::json!({"principal": "User:alice", "host": "*", "operation": "Create",
        "permission": "Allow", "resource_type": "Topic", "resource_name": "alice-", "pattern_type": "Prefixed"});
    assert!(bindings.contains(&expected), "{listed}");
    let table = sluice_ok(&[&["acl", "list", "--topic", "audit"][..], &online].concat(), &admin);
    assert!(table.contains("User:alice") && table.contains("Write") && !table.contains("alice-"), "{table}");

    // alice may not manage ACLs.
    let alice = [("SLUICE_SASL_PASSWORD", "alice-pw")];
    let out = sluice(&[&add[..], &prefixed, &["--bootstrap", &sasl, "--sasl-user", "alice"]].concat(), &alice);
    assert!(!out.status.success(), "alice may not add ACLs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Cluster authorization failed"), "{stderr}");

    let deleted = sluice_ok(&[&["acl", "delete"][..], &prefixed, &online].concat(), &admin);
    assert!(deleted.contains("deleted 2"), "{deleted}");
    let (ok, err) = produce(&sasl, "alice", "alice-pw", &unique_topic("alice-more"));
    assert!(!ok && err.contains("Topic authorization failed"), "deleted: refused again: {err}");
}
