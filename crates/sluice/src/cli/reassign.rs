//! `sluice topic reassign`, `sluice cluster reassignments`, `sluice cluster add-node`,
//! `sluice cluster drain` and `sluice cluster remove-node`
//! over the admin API: moving partitions between nodes and taking a node out.

use serde_json::{json, Value};

use super::http_client::{segment, HttpClient};
use super::table::{array, cell, print_json, Table};

/// Records a partition's move to `replicas`, or (None) cancels its move.
pub fn reassign(addr: &str, topic: &str, partition: i32, replicas: Option<Vec<i32>>) -> anyhow::Result<()> {
    let path = format!("/api/topics/{}/partitions/{partition}/reassign", segment(topic));
    HttpClient::new(addr).post(&path, &json!({ "replicas": replicas }))?;
    match replicas {
        Some(list) => println!(
            "moving {topic}-{partition} to replicas {}; `sluice cluster reassignments` shows it until done",
            list.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        ),
        None => println!("cancelled the move of {topic}-{partition}"),
    }
    Ok(())
}

pub fn list(addr: &str, as_json: bool) -> anyhow::Result<()> {
    let moves = HttpClient::new(addr).get("/api/reassignments")?;
    if as_json {
        print_json(&moves);
        return Ok(());
    }
    let moves = array(&moves, "reassignments")?;
    if moves.is_empty() {
        println!("no partition moves under way");
        return Ok(());
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "TARGET", "ADDING", "REMOVING"]);
    for m in moves {
        table.row(vec![
            cell(m, "topic"),
            cell(m, "partition"),
            cell(m, "replicas"),
            cell(m, "target"),
            cell(m, "adding"),
            cell(m, "removing"),
        ]);
    }
    table.print();
    Ok(())
}

pub fn add_node(addr: &str, node: i32) -> anyhow::Result<()> {
    let added = HttpClient::new(addr).post(&format!("/api/cluster/nodes/{node}"), &Value::Null)?;
    let moved = added.get("partitions_moved").cloned().unwrap_or(Value::Null);
    println!("node {node} holds its share now: {moved} partition replicas moved onto it");
    Ok(())
}

pub fn drain(addr: &str, node: i32) -> anyhow::Result<()> {
    let drained = HttpClient::new(addr).post(&format!("/api/cluster/nodes/{node}/drain"), &Value::Null)?;
    let names = |key: &str| -> Vec<String> {
        drained
            .get(key)
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
    };
    let (moved, kept) = (names("moved"), names("kept"));
    println!("node {node} drained: leadership of {} partitions moved off it", moved.len());
    if !kept.is_empty() {
        println!("still led by node {node} (no other replica in sync, or no election won): {}", kept.join(", "));
        anyhow::bail!("node {node} still leads {} partitions", kept.len());
    }
    Ok(())
}

pub fn remove_node(addr: &str, node: i32) -> anyhow::Result<()> {
    let removed = HttpClient::new(addr).delete(&format!("/api/cluster/nodes/{node}"))?;
    let id = removed.get("removed").cloned().unwrap_or(Value::Null);
    println!("node {id} removed from the cluster: its replicas moved away; it can be stopped now");
    Ok(())
}
