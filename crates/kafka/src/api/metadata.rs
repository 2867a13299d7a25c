//! Metadata: on a single node, this node as the only broker and leader of every partition;
//! in a cluster, every registered node, the metadata group's leader as the controller, and
//! per partition its Raft leader, term (leader epoch), replicas and in-sync replicas. Unknown
//! topics are auto-created when the broker and the request allow it. Authorized operations
//! (KIP-430), when asked, are Kafka's full sets (the authorizer narrows them afterwards).

use super::authorized_operations::{self as operations, if_asked};
use super::{str_bytes, topic_name};
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, LEADER_NOT_AVAILABLE, NONE};
use crate::listener::ListenerInfo;
use crate::server::Context;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use sluice_broker::cluster_view::Placement;
use sluice_broker::{BrokerError, Partition, Topic};
use std::sync::Arc;

pub fn handle(ctx: &Context, listener: &ListenerInfo, request: MetadataRequest, meta: RequestMeta) -> MetadataResponse {
    let broker = &ctx.broker;
    let mut response = MetadataResponse::default();
    response.brokers = super::brokers(ctx, listener)
        .into_iter()
        .map(|b| {
            let mut node = MetadataResponseBroker::default();
            node.node_id = BrokerId(b.node_id);
            node.host = str_bytes(&b.host);
            node.port = i32::from(b.port);
            node.rack = b.rack.as_deref().map(str_bytes);
            node
        })
        .collect();
    if meta.version >= 2 {
        response.cluster_id = Some(str_bytes(&super::cluster_id(ctx)));
    }
    if meta.version >= 1 {
        response.controller_id = BrokerId(super::controller_id(ctx));
    }
    response.cluster_authorized_operations =
        if_asked(request.include_cluster_authorized_operations, operations::CLUSTER);
    let topic_operations = if_asked(request.include_topic_authorized_operations, operations::TOPIC);
    let may_create = asks_auto_creation(&request, meta);
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match request.topics {
        Some(topics) if !(meta.version == 0 && topics.is_empty()) => topics,
        _ => {
            response.topics = broker.topics().iter().map(|t| describe(ctx, t, meta, topic_operations)).collect();
            return response;
        }
    };
    for wanted in requested {
        let found = match &wanted.name {
            Some(name) if may_create => broker.topic_or_auto_create(name),
            Some(name) => sluice_broker::names::validate_topic_name(name)
                .and_then(|_| broker.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)),
            None => broker
                .topics()
                .into_iter()
                .find(|t| t.id == wanted.topic_id)
                .ok_or(BrokerError::UnknownTopicOrPartition),
        };
        response.topics.push(match found {
            Ok(topic) => describe(ctx, &topic, meta, topic_operations),
            Err(e) => {
                let mut entry = MetadataResponseTopic::default();
                entry.error_code = code_of(&e);
                entry.name = wanted.name.clone();
                entry.topic_id = wanted.topic_id;
                entry
            }
        });
    }
    response
}

/// Whether the request lets unknown topics be auto-created (the broker's setting decides too).
/// Before v4 the request has no flag: creation is then the broker's choice alone.
pub fn asks_auto_creation(request: &MetadataRequest, meta: RequestMeta) -> bool {
    meta.version < 4 || request.allow_auto_topic_creation
}

fn describe(ctx: &Context, topic: &Arc<Topic>, meta: RequestMeta, operations: i32) -> MetadataResponseTopic {
    let mut entry = MetadataResponseTopic::default();
    entry.error_code = NONE;
    entry.topic_authorized_operations = operations;
    entry.name = Some(topic_name(&topic.name));
    entry.is_internal = sluice_broker::group::offsets_partition::is_internal_topic(&topic.name);
    if meta.version >= 10 {
        entry.topic_id = topic.id;
    }
    entry.partitions = topic.partitions().iter().map(|p| describe_partition(ctx, topic, p, meta)).collect();
    entry
}

/// One partition: this node alone on a single node; in a cluster, what its local replica
/// knows (leader, term, replicas), or else what the metadata group recorded. The ISR is the
/// metadata group's on every node (the leader reports it there), so all nodes agree.
fn describe_partition(
    ctx: &Context,
    topic: &Topic,
    p: &Arc<Partition>,
    meta: RequestMeta,
) -> MetadataResponsePartition {
    let node = ctx.broker.node_id();
    let placement = match (p.replica(), ctx.broker.cluster()) {
        (Some(replica), cluster) => {
            let role = replica.role();
            let replicas = replica.replicas();
            let recorded = cluster.and_then(|c| c.placement(&topic.name, p.index));
            Placement {
                leader: role.leader,
                epoch: role.epoch,
                isr: recorded.map_or_else(|| replicas.clone(), |r| r.isr),
                replicas,
            }
        }
        (None, Some(cluster)) => cluster.placement(&topic.name, p.index).unwrap_or_default(),
        (None, None) => Placement { leader: Some(node), epoch: p.leader_epoch, replicas: vec![node], isr: vec![node] },
    };
    let mut partition = MetadataResponsePartition::default();
    partition.partition_index = p.index;
    partition.error_code = if placement.leader.is_some() { NONE } else { LEADER_NOT_AVAILABLE };
    partition.leader_id = BrokerId(placement.leader.unwrap_or(-1));
    if meta.version >= 7 {
        partition.leader_epoch = placement.epoch;
    }
    partition.replica_nodes = placement.replicas.into_iter().map(BrokerId).collect();
    partition.isr_nodes = placement.isr.into_iter().map(BrokerId).collect();
    partition
}
