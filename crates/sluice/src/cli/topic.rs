//! `sluice topic list|create|describe|alter|delete` over the admin API.

use anyhow::bail;
use serde_json::{json, Map, Value};

use super::args::TopicCommand;
use super::http_client::{segment, HttpClient};
use super::net::parse_key_value;
use super::table::{array, bytes_cell, cell, print_json, Table};

pub fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::List { http, out } => {
            let topics = HttpClient::new(&http.addr).get("/api/topics")?;
            if out.json {
                print_json(&topics);
            } else {
                print_list(&topics)?;
            }
        }
        TopicCommand::Create { name, partitions, configs, http, out } => {
            let mut body = json!({ "name": name });
            if let Some(n) = partitions {
                body["partitions"] = json!(n);
            }
            if !configs.is_empty() {
                body["config"] = Value::Object(config_map(&configs, &[])?);
            }
            let detail = HttpClient::new(&http.addr).post("/api/topics", &body)?;
            show_detail(&detail, out.json, Some(&format!("created topic {name}")))?;
        }
        TopicCommand::Describe { name, http, out } => {
            let detail = HttpClient::new(&http.addr).get(&format!("/api/topics/{}", segment(&name)))?;
            show_detail(&detail, out.json, None)?;
        }
        TopicCommand::Alter { name, partitions, configs, delete_configs, http, out } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            let client = HttpClient::new(&http.addr);
            let path = format!("/api/topics/{}", segment(&name));
            if !configs.is_empty() || !delete_configs.is_empty() {
                let changes = config_map(&configs, &delete_configs)?;
                client.patch(&format!("{path}/config"), &Value::Object(changes))?;
            }
            if let Some(count) = partitions {
                client.post(&format!("{path}/partitions"), &json!({ "count": count }))?;
            }
            let detail = client.get(&path)?;
            show_detail(&detail, out.json, Some(&format!("altered topic {name}")))?;
        }
        TopicCommand::Delete { name, http } => {
            HttpClient::new(&http.addr).delete(&format!("/api/topics/{}", segment(&name)))?;
            println!("deleted topic {name}");
        }
        TopicCommand::Reassign { name, partition, replicas, cancel, http } => {
            let replicas = (!cancel).then_some(replicas);
            super::reassign::reassign(&http.addr, &name, partition, replicas)?;
        }
    }
    Ok(())
}

/// `{key: "value"}` for each --config and `{key: null}` for each --delete-config.
fn config_map(set: &[String], remove: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for entry in set {
        let (key, value) = parse_key_value(entry, "config")?;
        map.insert(key, Value::String(value));
    }
    for key in remove {
        map.insert(key.clone(), Value::Null);
    }
    Ok(map)
}

fn print_list(topics: &Value) -> anyhow::Result<()> {
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "MESSAGES", "SIZE", "MESSAGES_IN", "MESSAGES_OUT"]);
    for topic in array(topics, "the topic list")? {
        table.row(vec![
            cell(topic, "name"),
            cell(topic, "partitions"),
            cell(topic, "messages"),
            bytes_cell(topic, "size_bytes"),
            cell(topic, "messages_in"),
            cell(topic, "messages_out"),
        ]);
    }
    table.print();
    Ok(())
}

/// Prints a topic detail: JSON as received, or a partition table and a config table.
fn show_detail(detail: &Value, as_json: bool, headline: Option<&str>) -> anyhow::Result<()> {
    if as_json {
        print_json(detail);
        return Ok(());
    }
    if let Some(headline) = headline {
        println!("{headline}");
    }
    println!("topic {}", cell(detail, "name"));
    let mut partitions = Table::new(&["PARTITION", "LOG_START", "LOG_END", "MESSAGES", "SIZE", "SEGMENTS"]);
    for p in array(detail.get("partitions").unwrap_or(&Value::Null), "partitions")? {
        let start = p.get("log_start_offset").and_then(Value::as_i64);
        let end = p.get("log_end_offset").and_then(Value::as_i64);
        let messages = match (start, end) {
            (Some(s), Some(e)) => (e - s).to_string(),
            _ => "-".to_string(),
        };
        partitions.row(vec![
            cell(p, "partition"),
            cell(p, "log_start_offset"),
            cell(p, "log_end_offset"),
            messages,
            bytes_cell(p, "size_bytes"),
            cell(p, "segments"),
        ]);
    }
    partitions.print();
    if let Some(config) = detail.get("config").and_then(Value::as_array) {
        let mut table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
        for entry in config {
            table.row(vec![cell(entry, "name"), cell(entry, "value"), cell(entry, "source")]);
        }
        println!();
        table.print();
    }
    Ok(())
}
