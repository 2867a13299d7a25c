//! `sluice group list|describe|reset-offsets|delete` over the admin API.

use serde_json::{json, Value};

use super::args::GroupCommand;
use super::http_client::{segment, HttpClient};
use super::net::{parse_position, Position};
use super::table::{array, cell, print_json, text, Table};

pub fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { http, out } => {
            let groups = HttpClient::new(&http.addr).get("/api/groups")?;
            if out.json {
                print_json(&groups);
                return Ok(());
            }
            let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL_TYPE", "MEMBERS", "LAG"]);
            for g in array(&groups, "the group list")? {
                table.row(vec![
                    cell(g, "group_id"),
                    cell(g, "state"),
                    cell(g, "protocol_type"),
                    cell(g, "members"),
                    cell(g, "lag"),
                ]);
            }
            table.print();
        }
        GroupCommand::Describe { group, http, out } => {
            let detail = HttpClient::new(&http.addr).get(&format!("/api/groups/{}", segment(&group)))?;
            if out.json {
                print_json(&detail);
            } else {
                print_detail(&detail)?;
            }
        }
        GroupCommand::ResetOffsets { group, topic, partitions, to, http, out } => {
            let mut body = json!({ "topic": topic });
            match parse_position(&to)? {
                Position::Beginning => body["to"] = json!("earliest"),
                Position::End => body["to"] = json!("latest"),
                Position::Offset(n) => {
                    body["to"] = json!("offset");
                    body["offset"] = json!(n);
                }
                Position::Timestamp(ms) => {
                    body["to"] = json!("timestamp");
                    body["timestamp_ms"] = json!(ms);
                }
            }
            if !partitions.is_empty() {
                body["partitions"] = json!(partitions);
            }
            let path = format!("/api/groups/{}/reset-offsets", segment(&group));
            let answer = HttpClient::new(&http.addr).post(&path, &body)?;
            if out.json {
                print_json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&["TOPIC", "PARTITION", "NEW_OFFSET"]);
            for o in array(answer.get("offsets").unwrap_or(&Value::Null), "offsets")? {
                table.row(vec![cell(o, "topic"), cell(o, "partition"), cell(o, "committed_offset")]);
            }
            table.print();
        }
        GroupCommand::Delete { group, http } => {
            HttpClient::new(&http.addr).delete(&format!("/api/groups/{}", segment(&group)))?;
            println!("deleted group {group}");
        }
    }
    Ok(())
}

fn print_detail(detail: &Value) -> anyhow::Result<()> {
    println!(
        "group {}  state {}  protocol {}  generation {}",
        cell(detail, "group_id"),
        cell(detail, "state"),
        cell(detail, "protocol"),
        cell(detail, "generation")
    );
    let members = array(detail.get("members").unwrap_or(&Value::Null), "members")?;
    if !members.is_empty() {
        let mut table = Table::new(&["MEMBER", "CLIENT_ID", "HOST", "ASSIGNMENTS"]);
        for m in members {
            let assignments = m
                .get("assignments")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|a| format!("{}:{}", cell(a, "topic"), text(a.get("partitions").unwrap_or(&Value::Null))))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            table.row(vec![cell(m, "member_id"), cell(m, "client_id"), cell(m, "client_host"), assignments]);
        }
        println!();
        table.print();
    }
    let mut offsets = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "LOG_END", "LAG"]);
    for o in array(detail.get("offsets").unwrap_or(&Value::Null), "offsets")? {
        offsets.row(vec![
            cell(o, "topic"),
            cell(o, "partition"),
            cell(o, "committed_offset"),
            cell(o, "log_end_offset"),
            cell(o, "lag"),
        ]);
    }
    println!();
    offsets.print();
    Ok(())
}
