//! Metadata: this node as the only broker and leader of every partition; unknown
//! topics are auto-created when the broker and the request allow it.

use super::{str_bytes, topic_name};
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use sluice_broker::{BrokerError, Topic};
use std::sync::Arc;

pub fn handle(ctx: &Context, request: MetadataRequest, meta: RequestMeta) -> MetadataResponse {
    let broker = &ctx.broker;
    let config = broker.config();
    let mut response = MetadataResponse::default();
    let mut node = MetadataResponseBroker::default();
    node.node_id = BrokerId(broker.node_id());
    node.host = str_bytes(&config.advertised_host);
    node.port = i32::from(config.advertised_port);
    response.brokers = vec![node];
    if meta.version >= 2 {
        response.cluster_id = Some(str_bytes(broker.cluster_id()));
    }
    if meta.version >= 1 {
        response.controller_id = BrokerId(broker.node_id());
    }
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match request.topics {
        Some(topics) if !(meta.version == 0 && topics.is_empty()) => topics,
        _ => {
            response.topics = broker.topics().iter().map(|t| describe(ctx, t, meta)).collect();
            return response;
        }
    };
    // Before v4 the request has no flag: creation is then the broker's choice alone.
    let may_create = meta.version < 4 || request.allow_auto_topic_creation;
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
            Ok(topic) => describe(ctx, &topic, meta),
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

fn describe(ctx: &Context, topic: &Arc<Topic>, meta: RequestMeta) -> MetadataResponseTopic {
    let node = BrokerId(ctx.broker.node_id());
    let mut entry = MetadataResponseTopic::default();
    entry.error_code = NONE;
    entry.name = Some(topic_name(&topic.name));
    if meta.version >= 10 {
        entry.topic_id = topic.id;
    }
    entry.partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = p.index;
            partition.leader_id = node;
            if meta.version >= 7 {
                partition.leader_epoch = p.leader_epoch;
            }
            partition.replica_nodes = vec![node];
            partition.isr_nodes = vec![node];
            partition
        })
        .collect();
    entry
}
