//! One module per Kafka API: each turns a decoded request into broker-core calls and
//! builds the response for the request's version.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod authorized_operations;
pub mod client_quotas;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// Milliseconds since the Unix epoch, for timestamps the broker assigns.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The brokers Metadata and DescribeCluster list: every registered node in a cluster, this
/// node alone otherwise. This node is named by the address of the listener the request came
/// in on (Kafka answers per listener name); other nodes of a cluster by their listener of the
/// same name (security protocol), or their first listener's address when they have none.
pub fn brokers(
    ctx: &crate::server::Context,
    listener: &crate::listener::ListenerInfo,
) -> Vec<sluice_broker::cluster_view::BrokerAddress> {
    let broker = &ctx.broker;
    let this = sluice_broker::cluster_view::BrokerAddress {
        node_id: broker.node_id(),
        host: listener.advertised_host.clone(),
        port: listener.advertised_port,
        rack: None,
    };
    match broker.cluster() {
        Some(cluster) => cluster
            .brokers_on(listener.protocol.as_str())
            .into_iter()
            .map(|b| match b.node_id == this.node_id {
                true => sluice_broker::cluster_view::BrokerAddress { rack: b.rack, ..this.clone() },
                false => b,
            })
            .collect(),
        None => vec![this],
    }
}

/// Kafka's controller: the metadata group's leader in a cluster (-1 while none), this node
/// otherwise.
pub fn controller_id(ctx: &crate::server::Context) -> i32 {
    let broker = &ctx.broker;
    broker.cluster().map_or(Some(broker.node_id()), |c| c.controller()).unwrap_or(-1)
}

/// The cluster id clients see: the metadata group's in a cluster (the same on every node),
/// this node's own otherwise.
pub fn cluster_id(ctx: &crate::server::Context) -> String {
    ctx.broker.cluster().and_then(|c| c.cluster_id()).unwrap_or_else(|| ctx.broker.cluster_id().to_string())
}
