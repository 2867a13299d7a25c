//! Proves `--http-auth` checks the cluster-wide users and ACLs (the metadata group, where the
//! Kafka side reads them): on a 3-node cluster, a user added through node 1 (`sluice user
//! add --bootstrap`) and a DESCRIBE-on-the-cluster ACL added through node 2 (`sluice acl
//! add`) let curl read node 3's admin API with that user's password, while a change there
//! is 403 and an anonymous or wrong-password request 401; group endpoints forwarded from
//! node 3 to their coordinators carry the login (404 for unknown groups, not 401).

mod cluster_support;
mod common;
mod history;

use cluster_support::{Cluster, ClusterOpts};
use common::{run_bounded, wait_until, SLUICE_BIN};
use std::process::{Command, Stdio};
use std::time::Duration;

const NODES: usize = 3;
/// Bound on a change made through one node taking effect on another.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

fn sluice(args: &[&str], env: &[(&str, &str)]) {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args).stdin(Stdio::null());
    common::clear_sluice_env(&mut cmd);
    cmd.envs(env.iter().copied());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// curl's status for `method url` (with `-u login` when given).
fn curl(method: &str, url: &str, login: Option<&str>, body: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, url]);
    if let Some(login) = login {
        cmd.args(["-u", login]);
    }
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data", body]);
    }
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn any_node_checks_the_cluster_users_and_acls() {
    // No ACL names the cluster at first, so the anonymous CLI may add the user and the ACL.
    let args = ["--authorizer", "acl", "--allow-everyone-if-no-acl-found", "true", "--http-auth", "true"];
    let cluster =
        Cluster::start_with(NODES, ClusterOpts { args: args.map(String::from).to_vec(), ..ClusterOpts::default() });
    sluice(&["user", "add", "ops", "--bootstrap", &cluster.kafka_addr(1)], &[("SLUICE_USER_PASSWORD", "ops-pw")]);
    let acl = ["acl", "add", "--bootstrap", &cluster.kafka_addr(2), "--allow-principal", "User:ops"];
    sluice(&[&acl[..], &["--operation", "Describe", "--cluster"]].concat(), &[]);

    let topics = format!("http://{}/api/topics", cluster.http_addr(3));
    let mut last = String::new();
    wait_until(PROPAGATION_TIMEOUT, "ops to read node 3's admin API", || {
        last = curl("GET", &topics, Some("ops:ops-pw"), None);
        last == "200"
    });
    // Only DESCRIBE: a change is refused once node 3 has the ACL that names the cluster.
    let mut change = String::new();
    wait_until(PROPAGATION_TIMEOUT, "node 3 to refuse ops a change", || {
        change = curl("POST", &topics, Some("ops:ops-pw"), Some(r#"{"name":"by-ops"}"#));
        change == "403"
    });
    // Group endpoints are forwarded to each group's coordinator, which checks the same login:
    // eight unknown groups (coordinated across the nodes) are 404 there, never 401.
    let groups: Vec<String> =
        (0..8).map(|i| format!("http://{}/api/groups/nobody-{i}", cluster.http_addr(3))).collect();
    let mut answers = Vec::new();
    wait_until(PROPAGATION_TIMEOUT, "every group's coordinator to answer", || {
        answers = groups.iter().map(|url| curl("GET", url, Some("ops:ops-pw"), None)).collect();
        answers.iter().all(|a| a == "404")
    });
    assert_eq!(curl("GET", &topics, None, None), "401", "anonymous");
    assert_eq!(curl("GET", &topics, Some("ops:wrong"), None), "401", "wrong password");
    cluster.assert_no_panics("after the admin API checks");
}
