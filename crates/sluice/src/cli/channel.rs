//! `sluice channel list|pause|unpause|empty`: NSQ channels over the admin API.

use serde_json::Value;

use super::args::{ChannelCommand, ChannelTarget};
use super::http_client::{segment, HttpClient};
use super::table::{array, cell, print_json, Table};

const CHANNEL_COLUMNS: [&str; 9] =
    ["TOPIC", "CHANNEL", "PAUSED", "DEPTH", "IN_FLIGHT", "DEFERRED", "REQUEUED", "TIMED_OUT", "CLIENTS"];

pub fn run(command: ChannelCommand) -> anyhow::Result<()> {
    match command {
        ChannelCommand::List { topic, http, out } => list(topic.as_deref(), &http.addr, out.json),
        ChannelCommand::Pause(target) => act(target, "pause", "paused"),
        ChannelCommand::Unpause(target) => act(target, "unpause", "unpaused"),
        ChannelCommand::Empty(target) => act(target, "empty", "emptied"),
    }
}

fn list(only_topic: Option<&str>, addr: &str, as_json: bool) -> anyhow::Result<()> {
    let topics = HttpClient::new(addr).get("/api/nsq/topics")?;
    let selected: Vec<&Value> = array(&topics, "the NSQ topic list")?
        .iter()
        .filter(|t| only_topic.is_none_or(|name| t.get("topic").and_then(Value::as_str) == Some(name)))
        .collect();
    if let Some(name) = only_topic {
        if selected.is_empty() {
            anyhow::bail!("unknown NSQ topic {name}");
        }
    }
    if as_json {
        print_json(&Value::Array(selected.into_iter().cloned().collect()));
        return Ok(());
    }
    let mut table = Table::new(&CHANNEL_COLUMNS);
    for topic in selected {
        for channel in topic.get("channels").and_then(Value::as_array).into_iter().flatten() {
            table.row(channel_row(channel));
        }
    }
    table.print();
    Ok(())
}

/// POSTs `/pause`, `/unpause` or `/empty` and shows the channel as it is afterwards.
fn act(target: ChannelTarget, action: &str, done: &str) -> anyhow::Result<()> {
    let path = format!("/api/nsq/topics/{}/channels/{}/{action}", segment(&target.topic), segment(&target.channel));
    let channel = HttpClient::new(&target.http.addr).post(&path, &Value::Object(Default::default()))?;
    if target.out.json {
        print_json(&channel);
        return Ok(());
    }
    println!("{done} channel {}/{}", target.topic, target.channel);
    let mut table = Table::new(&CHANNEL_COLUMNS);
    table.row(channel_row(&channel));
    table.print();
    Ok(())
}

fn channel_row(channel: &Value) -> Vec<String> {
    ["topic", "channel", "paused", "depth", "in_flight", "deferred", "requeued", "timed_out", "clients"]
        .iter()
        .map(|field| cell(channel, field))
        .collect()
}
