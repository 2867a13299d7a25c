//! Proves consumer groups are listed cluster-wide (issue 12): on a 3-node cluster where
//! librdkafka commits offsets for several groups (so their coordinators, the leaders of their
//! `__consumer_offsets` partitions, spread over the nodes), a raw ListGroups (v0 and v4) to
//! each node, kafka-python's `KafkaAdminClient.list_consumer_groups()` asking one node only,
//! the admin API's group list and `sluice group list` against every
//! node name every group, and `sluice group describe` at every node shows each group's
//! committed offset (forwarded to its coordinator); ListGroups keeps its states filter, and
//! with a node killed the others list every group again once new coordinators loaded them.

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, metadata_client, wait_fully_replicated};
use cluster_support::Cluster;
use common::raw::Raw;
use common::{plain_consumer, run_bounded, unique_topic, wait_until, SLUICE_BIN};
use kafka_protocol::messages::{FindCoordinatorRequest, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODES: usize = 3;
const GROUPS: usize = 6;
/// Bound on the offsets topic being created and every group's coordinator answering.
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one CLI or kafka-python run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// Debian's interpreter, the one python3-kafka (kafka-python) is installed for.
const PYTHON: &str = "/usr/bin/python3";

fn kafka_addr(cluster: &Cluster, id: u64) -> std::net::SocketAddr {
    cluster.kafka_addr(id).parse().expect("kafka address")
}

/// The coordinator FindCoordinator names at node 1, once it names one.
fn coordinator(cluster: &Cluster, group: &str) -> i32 {
    let mut node = -1;
    wait_until(COORDINATOR_TIMEOUT, &format!("a coordinator of {group}"), || {
        let mut req = FindCoordinatorRequest::default();
        req.key = StrBytes::from_string(group.to_string());
        let r = Raw::connect_addr(kafka_addr(cluster, 1)).request(3, &req);
        node = r.node_id.0;
        r.error_code == 0
    });
    node
}

/// The group ids a raw ListGroups at node `id` names (and their states, from v4).
fn raw_list(cluster: &Cluster, id: u64, version: i16, states: &[&str]) -> Vec<(String, String)> {
    let mut req = ListGroupsRequest::default();
    req.states_filter = states.iter().map(|s| StrBytes::from_string(s.to_string())).collect();
    let r = Raw::connect_addr(kafka_addr(cluster, id)).request(version, &req);
    assert_eq!(r.error_code, 0, "ListGroups v{version} at node {id}");
    r.groups.iter().map(|g| (g.group_id.0.to_string(), g.group_state.to_string())).collect()
}

fn ours(listed: impl IntoIterator<Item = String>, prefix: &str) -> BTreeSet<String> {
    listed.into_iter().filter(|g| g.starts_with(prefix)).collect()
}

fn cli_json(args: &[&str]) -> serde_json::Value {
    let output = run_bounded(Command::new(SLUICE_BIN).args(args).stdin(Stdio::null()), TOOL_TIMEOUT);
    assert!(output.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("sluice {args:?}: {e}"))
}

/// kafka-python's `list_consumer_groups` asking only node `id` (by default it asks every broker
/// and merges, which would hide a node that lists only its own groups).
fn kafka_python_list(cluster: &Cluster, id: u64) -> Vec<String> {
    let script = format!(
        "import json\nfrom kafka import KafkaAdminClient\n\
         a = KafkaAdminClient(bootstrap_servers='{}', request_timeout_ms=20000)\n\
         print(json.dumps([g[0] for g in a.list_consumer_groups(broker_ids=[{id}])]))\na.close()\n",
        cluster.kafka_addr(id)
    );
    let output = run_bounded(Command::new(PYTHON).args(["-c", &script]).stdin(Stdio::null()), TOOL_TIMEOUT);
    assert!(output.status.success(), "kafka-python at node {id}: {}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("kafka-python said {line}: {e}"))
}

#[test]
fn every_node_lists_every_group_of_the_cluster() {
    let mut cluster = Cluster::start(NODES);
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-groups-list");
    create_topic(&bootstrap, &topic, 1, NODES as i32).expect("create topic");
    wait_fully_replicated(&metadata_client(&bootstrap), &topic, 1, NODES, COORDINATOR_TIMEOUT);

    let prefix = format!("{topic}-g");
    let groups: BTreeSet<String> = (0..GROUPS).map(|i| format!("{prefix}{i}")).collect();
    let mut coordinators = BTreeSet::new();
    for (i, group) in groups.iter().enumerate() {
        let consumer = plain_consumer(&bootstrap, &[("group.id", group.as_str())]);
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&topic, 0, Offset::Offset(i as i64 + 1)).expect("partition 0");
        consumer.commit(&offsets, CommitMode::Sync).unwrap_or_else(|e| panic!("commit of {group}: {e}"));
        coordinators.insert(coordinator(&cluster, group));
    }
    eprintln!("cluster_groups_list: {GROUPS} groups coordinated by nodes {coordinators:?}");
    assert!(coordinators.len() > 1, "the groups' coordinators spread over several nodes: {coordinators:?}");

    for id in 1..=NODES as u64 {
        let v0 = ours(raw_list(&cluster, id, 0, &[]).into_iter().map(|(g, _)| g), &prefix);
        assert_eq!(v0, groups, "ListGroups v0 at node {id}");
        let v4 = raw_list(&cluster, id, 4, &["empty"]);
        assert_eq!(ours(v4.iter().map(|(g, _)| g.clone()), &prefix), groups, "ListGroups v4 at node {id}");
        assert!(v4.iter().all(|(_, state)| state == "Empty"), "{v4:?}");
        let stable = ours(raw_list(&cluster, id, 4, &["Stable"]).into_iter().map(|(g, _)| g), &prefix);
        assert!(stable.is_empty(), "the states filter still applies at node {id}: {stable:?}");

        assert_eq!(ours(kafka_python_list(&cluster, id), &prefix), groups, "kafka-python at node {id}");

        let http = cluster.http_addr(id);
        let listed = cli_json(&["group", "list", "--json", "--http", &http]);
        let names = listed.as_array().expect("a list").iter().map(|g| g["group_id"].as_str().unwrap_or("").to_string());
        assert_eq!(ours(names, &prefix), groups, "sluice group list at node {id}: {listed}");
        for (i, group) in groups.iter().enumerate() {
            let detail = cli_json(&["group", "describe", group, "--json", "--http", &http]);
            assert_eq!(detail["group_id"], group.as_str(), "{detail}");
            assert_eq!(detail["offsets"][0]["committed_offset"], i as i64 + 1, "{group} at node {id}: {detail}");
        }
    }
    // A dead node's groups come back to the list once its offsets partitions have new leaders.
    cluster.node(3).kill9();
    wait_until(COORDINATOR_TIMEOUT, "node 1 to list every group with node 3 dead", || {
        ours(raw_list(&cluster, 1, 0, &[]).into_iter().map(|(g, _)| g), &prefix) == groups
    });
    cluster.assert_no_panics("the end");
}
