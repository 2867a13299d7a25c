//! The nsqlookupd API's view of a cluster: every live node is an nsqd, and a topic's
//! producers are the nodes leading its partitions (NSQ consumers connect to each producer,
//! so they reach every partition's leader, the node that serves its channels). Read from
//! the cluster status this node keeps (the metadata's registered nodes and placements, and
//! which nodes answer its pings), so every node answers alike.

use crate::lookup::{producer, Producer};
use crate::peer_channels;
use crate::AppState;
use sluice_broker::channel::nsq_topic_name;
use sluice_broker::cluster_view::NodeStatus;
use std::collections::BTreeSet;

/// A live node as lookupd lists it.
pub(crate) struct LookupNode {
    pub producer: Producer,
    /// NSQ names of the topics with a partition it leads.
    pub topics: Vec<String>,
    /// Its nsqd HTTP address as registered; None for the asking node itself.
    pub http_addr: Option<String>,
}

impl LookupNode {
    pub fn leads(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }
}

/// Every live node (this one included) with the topics it leads; None on a single node.
pub(crate) fn nodes(s: &AppState) -> Option<Vec<LookupNode>> {
    let status = s.channels.broker().cluster()?.status()?;
    let known: BTreeSet<String> = s.channels.topics().iter().map(|t| t.name.to_string()).collect();
    let nodes = status
        .nodes
        .iter()
        .filter(|n| n.node_id == status.node_id || n.up != Some(false))
        .filter_map(|n| {
            let this = n.node_id == status.node_id;
            let producer = if this { producer(s) } else { remote_producer(n)? };
            let topics: BTreeSet<String> = status
                .placement
                .iter()
                .filter(|p| p.leader == Some(n.node_id))
                .map(|p| nsq_topic_name(&p.topic))
                .filter(|t| known.contains(t))
                .collect();
            let http_addr = (!this).then(|| n.http_addr.clone());
            Some(LookupNode { producer, topics: topics.into_iter().collect(), http_addr })
        })
        .collect();
    Some(nodes)
}

/// The topic's channels on every live node: this node's (`local`) and those the others
/// serve (`peer_channels`), sorted, each once. On a single node, `local`.
pub(crate) async fn channels(s: &AppState, topic: &str, local: Vec<String>) -> Vec<String> {
    let Some(nodes) = nodes(s) else { return local };
    let mut all: BTreeSet<String> = local.into_iter().collect();
    for addr in nodes.iter().filter_map(|n| n.http_addr.as_deref()) {
        all.extend(peer_channels::channels_at(addr, topic).await);
    }
    all.into_iter().collect()
}

/// Another node, from the NSQ addresses it registered (under its broadcast address); its
/// host name is not registered, so its broadcast address stands for it.
fn remote_producer(node: &NodeStatus) -> Option<Producer> {
    let (host, tcp_port) = node.nsq_tcp_addr.rsplit_once(':')?;
    let (_, http_port) = node.http_addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Some(Producer {
        remote_address: node.nsq_tcp_addr.clone(),
        hostname: host.clone(),
        broadcast_address: host,
        tcp_port: tcp_port.parse().ok()?,
        http_port: http_port.parse().ok()?,
        version: sluice_nsq::NSQD_VERSION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(nsq_tcp_addr: &str, http_addr: &str) -> NodeStatus {
        NodeStatus {
            node_id: 2,
            cluster_addr: "127.0.0.12:9093".into(),
            kafka_addr: "127.0.0.12:9092".into(),
            nsq_tcp_addr: nsq_tcp_addr.into(),
            http_addr: http_addr.into(),
            rack: None,
            metadata_member: "voter",
            last_seen_ms: 0,
            up: Some(true),
            last_contact_ms: Some(0),
            stored_bytes: None,
            partitions_led: 1,
            replicas: 1,
        }
    }

    #[test]
    fn another_node_is_named_by_its_registered_broadcast_address_and_ports() {
        let p = remote_producer(&node("nsq-2.example:4150", "nsq-2.example:4151")).expect("producer");
        assert_eq!((p.broadcast_address.as_str(), p.tcp_port, p.http_port), ("nsq-2.example", 4150, 4151));
        assert_eq!(p.remote_address, "nsq-2.example:4150");
        let v6 = remote_producer(&node("[::1]:4150", "[::1]:4151")).expect("IPv6 producer");
        assert_eq!(v6.broadcast_address, "::1");
    }

    #[test]
    fn an_address_without_a_port_names_no_producer() {
        assert!(remote_producer(&node("nsq-2", "nsq-2:4151")).is_none());
        assert!(remote_producer(&node("nsq-2:4150", "nsq-2:http")).is_none());
    }
}
