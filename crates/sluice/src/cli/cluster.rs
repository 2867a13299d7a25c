//! `sluice cluster status` over the admin API (`GET /api/cluster`): the nodes (up or down as
//! the node asked sees them), this node's
//! partition replicas with leader, replicas, ISR and follower lag, under-replicated ones marked.

use serde_json::Value;

use super::args::ClusterCommand;
use super::http_client::HttpClient;
use super::table::{array, cell, print_json, text, Table};

/// Marks an under-replicated partition in the table.
const UNDER_REPLICATED_MARK: &str = "UNDER-REPLICATED";

pub fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status { http, out } => {
            let status = HttpClient::new(&http.addr).get("/api/cluster")?;
            if out.json {
                print_json(&status);
            } else {
                print_status(&status)?;
            }
        }
        ClusterCommand::Reassignments { http, out } => super::reassign::list(&http.addr, out.json)?,
        ClusterCommand::AddNode { node, http } => super::reassign::add_node(&http.addr, node)?,
        ClusterCommand::Drain { node, http } => super::reassign::drain(&http.addr, node)?,
        ClusterCommand::RemoveNode { node, http } => super::reassign::remove_node(&http.addr, node)?,
    }
    Ok(())
}

fn print_status(status: &Value) -> anyhow::Result<()> {
    let metadata = status.get("metadata").unwrap_or(&Value::Null);
    println!(
        "node {}  cluster {}  metadata leader {}  term {}  commit index {}",
        cell(status, "node_id"),
        cell(status, "cluster_id"),
        cell(metadata, "leader"),
        cell(metadata, "term"),
        cell(metadata, "commit_index"),
    );
    let led = leaders_by_node(status)?;
    let mut nodes = Table::new(&["NODE", "STATE", "KAFKA", "HTTP", "CLUSTER", "METADATA", "LEADS"]);
    for n in array(status.get("nodes").unwrap_or(&Value::Null), "nodes")? {
        let id = cell(n, "node_id");
        let member = if n.get("node_id") == metadata.get("leader") {
            format!("{} (leader)", cell(n, "metadata_member"))
        } else {
            cell(n, "metadata_member")
        };
        let leads = led.iter().find(|(node, _)| *node == id).map(|(_, count)| count.clone()).unwrap_or_default();
        let state = match n.get("up").and_then(Value::as_bool) {
            Some(true) => "up",
            Some(false) => "DOWN",
            None => "unknown",
        };
        nodes.row(vec![
            id,
            state.to_string(),
            cell(n, "kafka_addr"),
            cell(n, "http_addr"),
            cell(n, "cluster_addr"),
            member,
            leads,
        ]);
    }
    println!();
    nodes.print();
    let mut partitions =
        Table::new(&["TOPIC", "PARTITION", "ROLE", "TERM", "LEADER", "REPLICAS", "ISR", "COMMIT", "LAG", "STATUS"]);
    for p in array(status.get("partitions").unwrap_or(&Value::Null), "partitions")? {
        let under = p.get("under_replicated").and_then(Value::as_bool).unwrap_or(false);
        partitions.row(vec![
            cell(p, "topic"),
            cell(p, "partition"),
            cell(p, "role"),
            cell(p, "term"),
            cell(p, "leader"),
            cell(p, "replicas"),
            cell(p, "isr"),
            cell(p, "commit_index"),
            follower_lag(p),
            if under { UNDER_REPLICATED_MARK.to_string() } else { "ok".to_string() },
        ]);
    }
    println!();
    partitions.print();
    let under = array(status.get("under_replicated").unwrap_or(&Value::Null), "under_replicated")?;
    println!();
    if under.is_empty() {
        println!("no under-replicated partitions");
    } else {
        println!("{} under-replicated partition(s):", under.len());
        let mut table = Table::new(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"]);
        for p in under {
            table.row(vec![
                cell(p, "topic"),
                cell(p, "partition"),
                cell(p, "leader"),
                cell(p, "replicas"),
                cell(p, "isr"),
            ]);
        }
        table.print();
    }
    Ok(())
}

/// `follower:lag` pairs on the leader ("-" elsewhere).
fn follower_lag(partition: &Value) -> String {
    let followers = partition.get("followers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if followers.is_empty() {
        return "-".to_string();
    }
    followers.iter().map(|f| format!("{}:{}", cell(f, "node_id"), cell(f, "lag"))).collect::<Vec<_>>().join(",")
}

fn leaders_by_node(status: &Value) -> anyhow::Result<Vec<(String, String)>> {
    let leaders = array(status.get("leaders").unwrap_or(&Value::Null), "leaders")?;
    Ok(leaders.iter().map(|l| (cell(l, "node_id"), text(l.get("partitions").unwrap_or(&Value::Null)))).collect())
}

#[cfg(test)]
mod tests {
    use super::follower_lag;
    use serde_json::json;

    #[test]
    fn lag_lists_each_follower_on_the_leader_only() {
        let leader = json!({"followers": [{"node_id": 2, "lag": 0}, {"node_id": 3, "lag": 7}]});
        assert_eq!(follower_lag(&leader), "2:0,3:7");
        assert_eq!(follower_lag(&json!({"followers": []})), "-");
    }
}
