//! Proves SASL users and ACLs are cluster-wide state (the metadata group), not per node: on a
//! 3-node cluster with `--authorizer acl`, a SCRAM user added through node 1
//! (AlterUserScramCredentials, `sluice user add --bootstrap`) logs in with kcat
//! (SCRAM-SHA-512) on node 3's SASL listener, node 3 having restarted since (the user
//! survives the restart); a DENY ACL created through node 2 (`sluice acl add`) refuses kcat's
//! produce on node 1 and on a node that joins afterwards, and once deleted through node 3
//! node 1 takes the write again. Metadata
//! asked on a SASL listener names the other nodes by their SASL listener (every node
//! registers all its Kafka listeners), a node without one by its first address; `sluice user
//! add --sasl-user` over one node's SASL listener makes a user who logs in on another's.

mod cluster_support;
mod common;
mod history;

use cluster_support::{Cluster, ClusterOpts};
use common::{run_bounded, unique_topic, wait_until, SLUICE_BIN};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const NODES: usize = 3;
/// Bound on a change made through one node taking effect on another.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn sluice(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args).stdin(Stdio::null());
    common::clear_sluice_env(&mut cmd);
    cmd.envs(env.iter().copied());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// kcat with `config` (-X pairs) and `args`, `input` on stdin: (success, stderr).
fn kcat(config: &[&str], args: &[&str], input: &str) -> (bool, String) {
    let mut cmd = Command::new("kcat");
    for pair in config {
        cmd.args(["-X", pair]);
    }
    cmd.args(args);
    let file = tempfile::NamedTempFile::new().expect("stdin file");
    std::fs::write(file.path(), input).expect("write stdin");
    cmd.stdin(std::fs::File::open(file.path()).expect("open stdin"));
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn produce(addr: &str, topic: &str) -> (bool, String) {
    kcat(&["message.timeout.ms=5000"], &["-b", addr, "-P", "-t", topic], "hello\n")
}

#[test]
fn users_and_acls_made_on_one_node_hold_on_every_node() {
    // No ACL names a resource at first, so the harness's anonymous clients may do everything.
    let args = ["--authorizer", "acl", "--allow-everyone-if-no-acl-found", "true"].map(String::from).to_vec();
    let mut cluster = Cluster::start_with(NODES, ClusterOpts { args, ..ClusterOpts::default() });
    let (node1, node2, node3) = (cluster.kafka_addr(1), cluster.kafka_addr(2), cluster.kafka_addr(3));

    // A SCRAM user added through node 1; node 3 restarts with a SASL listener of its own.
    sluice(&["user", "add", "carol", "--bootstrap", &node1], &[("SLUICE_USER_PASSWORD", "carol-pw")]);
    let sasl3 = format!("{}:{}", node3.rsplit_once(':').expect("host:port").0, common::free_port());
    cluster.node(3).push_args(&["--kafka-listener", &format!("SASL_PLAINTEXT://{sasl3}")]);
    cluster.node(3).restart();
    let scram = ["security.protocol=SASL_PLAINTEXT", "sasl.mechanisms=SCRAM-SHA-512"];
    let login = |user: &str, password: &str| {
        let (user, password) = (format!("sasl.username={user}"), format!("sasl.password={password}"));
        kcat(&[scram[0], scram[1], &user, &password], &["-b", &sasl3, "-L", "-m", "5"], "")
    };
    let mut last = String::new();
    wait_until(PROPAGATION_TIMEOUT, "carol to log in on node 3", || {
        let (ok, err) = login("carol", "carol-pw");
        last = err;
        ok
    });
    let (ok, err) = login("carol", "wrong");
    assert!(!ok && err.contains("Authentication failed"), "a wrong password is refused on node 3: {err}\n{last}");

    // A DENY created through node 2 refuses on node 1.
    let topic = unique_topic("guarded");
    let (ok, err) = produce(&node1, &topic);
    assert!(ok, "no ACL yet: {err}");
    let deny = ["--deny-principal", "User:ANONYMOUS", "--operation", "Write", "--topic", &topic];
    sluice(&[&["acl", "add", "--bootstrap", &node2][..], &deny].concat(), &[]);
    wait_until(PROPAGATION_TIMEOUT, "node 1 to refuse the write", || {
        let (ok, err) = produce(&node1, &topic);
        !ok && err.contains("Topic authorization failed")
    });
    let listed = sluice(&["acl", "list", "--json", "--bootstrap", &node1], &[]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "node 1 lists node 2's binding: {listed}");

    // A node that joins later gets the binding from the metadata log too.
    let node4 = cluster.add_node();
    let node4 = cluster.kafka_addr(node4);
    wait_until(PROPAGATION_TIMEOUT, "the joined node to refuse the write", || {
        let (ok, err) = produce(&node4, &topic);
        !ok && err.contains("Topic authorization failed")
    });

    // Deleted through node 3: node 1 takes the write again.
    sluice(&["acl", "delete", "--bootstrap", &node3, "--topic", &topic], &[]);
    wait_until(PROPAGATION_TIMEOUT, "node 1 to take the write again", || produce(&node1, &topic).0);

    // Node 1 restarts with a SASL listener too: Metadata asked on node 3's SASL listener names
    // node 1 by its SASL listener, node 2 (none) by its first address.
    let sasl1 = format!("{}:{}", node1.rsplit_once(':').expect("host:port").0, common::free_port());
    cluster.node(1).push_args(&["--kafka-listener", &format!("SASL_PLAINTEXT://{sasl1}")]);
    cluster.node(1).restart();
    let (user, password) = ("sasl.username=carol", "sasl.password=carol-pw");
    let mut listing = String::new();
    wait_until(PROPAGATION_TIMEOUT, "node 3 to name node 1 by its SASL listener", || {
        let mut cmd = Command::new("kcat");
        for pair in [scram[0], scram[1], user, password] {
            cmd.args(["-X", pair]);
        }
        cmd.args(["-b", &sasl3, "-L", "-m", "5"]).stdin(Stdio::null());
        listing = String::from_utf8_lossy(&run_bounded(&mut cmd, CLIENT_TIMEOUT).stdout).to_string();
        listing.contains(&format!("broker 1 at {sasl1}"))
    });
    assert!(listing.contains(&format!("broker 3 at {sasl3}")), "{listing}");
    assert!(listing.contains(&format!("broker 2 at {node2}")), "{listing}");

    // `sluice user add` logged in over node 3's SASL listener: dave logs in on node 1's.
    let env = [("SLUICE_USER_PASSWORD", "dave-pw"), ("SLUICE_SASL_PASSWORD", "carol-pw")];
    sluice(&["user", "add", "dave", "--bootstrap", &sasl3, "--sasl-user", "carol"], &env);
    wait_until(PROPAGATION_TIMEOUT, "dave to log in on node 1", || {
        let config = [scram[0], scram[1], "sasl.username=dave", "sasl.password=dave-pw"];
        kcat(&config, &["-b", &sasl1, "-L", "-m", "5"], "").0
    });
    cluster.assert_no_panics("after the security changes");
}
