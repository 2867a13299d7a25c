//! The rules a command must meet before `apply` changes anything. Each returns why not.

use std::collections::{BTreeMap, BTreeSet};

use super::limits::{
    ADDR_BYTES_MAX, CLUSTER_ID_BYTES_MAX, CONFIGS_PER_TOPIC_MAX, CONFIG_NAME_BYTES_MAX, CONFIG_VALUE_BYTES_MAX,
    KAFKA_LISTENERS_MAX, NODE_ID_MAX, RACK_BYTES_MAX, REPLICAS_PER_PARTITION_MAX, TOPIC_NAME_BYTES_MAX,
};
use super::state::NodeInfo;
use crate::types::NodeId;

/// Kafka's topic name rules (`Topic.validate`), as the broker's `names.rs` applies them.
pub fn topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("'{name}' is not a topic name"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!("a topic name has at most {TOPIC_NAME_BYTES_MAX} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name '{name}' contains '{c}'"));
    }
    Ok(())
}

pub fn cluster_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > CLUSTER_ID_BYTES_MAX {
        return Err(format!("a cluster id has 1 to {CLUSTER_ID_BYTES_MAX} bytes"));
    }
    Ok(())
}

pub fn node(node_id: NodeId, info: &NodeInfo) -> Result<(), String> {
    if node_id > NODE_ID_MAX {
        return Err(format!("node id {node_id} is above {NODE_ID_MAX} (Kafka ids are int32)"));
    }
    for (what, addr) in [
        ("cluster", &info.cluster_addr),
        ("kafka", &info.kafka_addr),
        ("nsq tcp", &info.nsq_tcp_addr),
        ("http", &info.http_addr),
    ] {
        if addr.is_empty() || addr.len() > ADDR_BYTES_MAX {
            return Err(format!("the {what} address has 1 to {ADDR_BYTES_MAX} bytes"));
        }
    }
    if info.kafka_listeners.len() > KAFKA_LISTENERS_MAX {
        return Err(format!("at most {KAFKA_LISTENERS_MAX} Kafka listeners"));
    }
    for (name, addr) in &info.kafka_listeners {
        if name.is_empty() || name.len() > RACK_BYTES_MAX || addr.is_empty() || addr.len() > ADDR_BYTES_MAX {
            return Err(format!("a Kafka listener has a name and an address of 1 to {ADDR_BYTES_MAX} bytes"));
        }
    }
    if info.rack.as_ref().is_some_and(|rack| rack.len() > RACK_BYTES_MAX) {
        return Err(format!("a rack name has at most {RACK_BYTES_MAX} bytes"));
    }
    Ok(())
}

/// A replica list: 1 to `REPLICAS_PER_PARTITION_MAX` distinct registered nodes.
pub fn replicas(replicas: &[NodeId], nodes: &BTreeMap<NodeId, NodeInfo>) -> Result<(), String> {
    if replicas.is_empty() || replicas.len() > REPLICAS_PER_PARTITION_MAX {
        return Err(format!("a partition has 1 to {REPLICAS_PER_PARTITION_MAX} replicas"));
    }
    distinct(replicas)?;
    match replicas.iter().find(|node| !nodes.contains_key(node)) {
        Some(unknown) => Err(format!("node {unknown} is not registered")),
        None => Ok(()),
    }
}

/// No node twice (bounded by the caller: replica lists and ISRs are short).
pub fn distinct(nodes: &[NodeId]) -> Result<(), String> {
    if nodes.len() > REPLICAS_PER_PARTITION_MAX {
        return Err(format!("at most {REPLICAS_PER_PARTITION_MAX} nodes"));
    }
    let unique: BTreeSet<_> = nodes.iter().collect();
    if unique.len() != nodes.len() {
        return Err(format!("{nodes:?} names a node twice"));
    }
    Ok(())
}

pub fn configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    if configs.len() > CONFIGS_PER_TOPIC_MAX {
        return Err(format!("a topic has at most {CONFIGS_PER_TOPIC_MAX} configs"));
    }
    for (name, value) in configs {
        if name.is_empty() || name.len() > CONFIG_NAME_BYTES_MAX {
            return Err(format!("a config name has 1 to {CONFIG_NAME_BYTES_MAX} bytes"));
        }
        if value.len() > CONFIG_VALUE_BYTES_MAX {
            return Err(format!("config {name}'s value is over {CONFIG_VALUE_BYTES_MAX} bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        // Proves the same names pass and fail as in the broker's names.rs.
        for ok in ["a", "orders.v1", "my_topic-2", &"x".repeat(249)] {
            assert!(topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replica_lists_need_distinct_registered_nodes() {
        // Proves empty, duplicate, unregistered and oversized replica lists are refused.
        let info = NodeInfo {
            cluster_addr: "a".into(),
            kafka_addr: "a".into(),
            kafka_listeners: BTreeMap::new(),
            nsq_tcp_addr: "a".into(),
            http_addr: "a".into(),
            rack: None,
            registered_at_ms: 0,
            last_seen_ms: 0,
        };
        let nodes: BTreeMap<NodeId, NodeInfo> = (1..=20).map(|id| (id, info.clone())).collect();
        assert!(replicas(&[1, 2, 3], &nodes).is_ok());
        assert!(replicas(&[], &nodes).is_err());
        assert!(replicas(&[1, 1], &nodes).is_err());
        assert!(replicas(&[1, 99], &nodes).is_err());
        assert!(replicas(&(1..=17).collect::<Vec<_>>(), &nodes).is_err());
    }
}
