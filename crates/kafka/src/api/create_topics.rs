//! CreateTopics: partitions and configs as asked; replication is 1 on a single node. In a
//! cluster the topic is created through the metadata group with the replication factor
//! asked (the cluster's default for -1), and answered once this node has it.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, INVALID_REPLICATION_FACTOR, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use sluice_broker::cluster_view::NewTopic;
use sluice_broker::BrokerError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Kafka's `ConfigSource` values as CreateTopics and DescribeConfigs report them.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DEFAULT: i8 = 5;

pub fn handle(ctx: &Context, request: CreateTopicsRequest, meta: RequestMeta) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let seen = names_seen(&request);
    for topic in request.topics {
        let name = topic.name.to_string();
        let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err(duplicate(&name))
        } else {
            create(ctx, &topic, request.validate_only).map(|count| (count, 1))
        };
        response.topics.push(result_of(ctx, &topic, outcome, meta));
    }
    response
}

/// CreateTopics in a cluster: each topic goes through the metadata group in turn.
pub async fn handle_cluster(
    ctx: Arc<Context>,
    request: CreateTopicsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, crate::dispatch::DispatchError> {
    let response = answer_cluster(&ctx, request, meta).await;
    meta.respond(&response).map(Some)
}

/// The response `handle_cluster` sends (the authorizer adds its refusals to it).
pub async fn answer_cluster(
    ctx: &Arc<Context>,
    request: CreateTopicsRequest,
    meta: RequestMeta,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let seen = names_seen(&request);
    for topic in &request.topics {
        let name = topic.name.to_string();
        let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err(duplicate(&name))
        } else {
            create_in_cluster(ctx, topic, request.validate_only).await
        };
        response.topics.push(result_of(ctx, topic, outcome, meta));
    }
    response
}

fn names_seen(request: &CreateTopicsRequest) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.to_string()).or_default() += 1;
    }
    seen
}

fn duplicate(name: &str) -> (i16, String) {
    (INVALID_REQUEST, format!("topic '{name}' appears more than once in the request"))
}

/// One topic's result: partitions and replication factor created, or the error.
fn result_of(
    ctx: &Context,
    topic: &CreatableTopic,
    outcome: Result<(u32, i16), (i16, String)>,
    meta: RequestMeta,
) -> CreatableTopicResult {
    let name = topic.name.to_string();
    let mut result = CreatableTopicResult::default();
    result.name = topic.name.clone();
    match outcome {
        Ok((partitions, replication_factor)) => {
            result.error_code = NONE;
            if meta.version >= 5 {
                result.num_partitions = partitions as i32;
                result.replication_factor = replication_factor;
                result.configs = Some(configs_of(ctx, &name));
            }
            if meta.version >= 7 {
                if let Some(t) = ctx.broker.topic(&name) {
                    result.topic_id = t.id;
                }
            }
        }
        Err((code, message)) => {
            result.error_code = code;
            if meta.version >= 1 {
                result.error_message = Some(str_bytes(&message));
            }
            if meta.version >= 5 {
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
        }
    }
    result
}

async fn create_in_cluster(
    ctx: &Context,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<(u32, i16), (i16, String)> {
    let fail = |e: BrokerError| (code_of(&e), e.to_string());
    let Some(cluster) = ctx.broker.cluster() else {
        return Err((INVALID_REQUEST, "not part of a cluster".into()));
    };
    if !topic.assignments.is_empty() {
        return Err((INVALID_REQUEST, "explicit replica assignments are not supported yet".into()));
    }
    let partitions = match topic.num_partitions {
        -1 => None,
        n => Some(
            u32::try_from(n)
                .map_err(|_| fail(BrokerError::InvalidPartitions("partition count must be positive".into())))?,
        ),
    };
    let replication_factor = match topic.replication_factor {
        -1 => None,
        n => Some(u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
            fail(BrokerError::InvalidReplicationFactor("replication factor must be positive".into()))
        })?),
    };
    let configs = topic
        .configs
        .iter()
        .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
        .collect::<BTreeMap<_, _>>();
    ctx.broker.validate_new_topic(&topic.name, partitions, &configs).map_err(fail)?;
    let new = NewTopic { name: topic.name.to_string(), partitions, replication_factor, configs };
    cluster.validate_topic(&new).map_err(fail)?;
    let count = partitions.unwrap_or(ctx.broker.config().default_partitions);
    if !validate_only {
        cluster.create_topic(new).await.map_err(fail)?;
    }
    let replicas = ctx
        .broker
        .cluster()
        .and_then(|c| c.placement(&topic.name, 0))
        .map_or(replication_factor.unwrap_or(1) as i16, |p| p.replicas.len() as i16);
    Ok((count, replicas))
}

fn create(ctx: &Context, topic: &CreatableTopic, validate_only: bool) -> Result<u32, (i16, String)> {
    let fail = |e: BrokerError| (code_of(&e), e.to_string());
    if topic.replication_factor > 1 {
        return Err((INVALID_REPLICATION_FACTOR, "replication factor cannot exceed the 1 available broker".into()));
    }
    let node = ctx.broker.node_id();
    if topic.assignments.iter().any(|a| a.broker_ids.iter().any(|b| b.0 != node)) {
        return Err((
            crate::error_codes::INVALID_REPLICA_ASSIGNMENT,
            "replica assignment names unknown brokers".into(),
        ));
    }
    let partitions = if !topic.assignments.is_empty() {
        Some(topic.assignments.len() as u32)
    } else if topic.num_partitions == -1 {
        None
    } else {
        Some(
            u32::try_from(topic.num_partitions)
                .map_err(|_| fail(BrokerError::InvalidPartitions("partition count must be positive".into())))?,
        )
    };
    let mut overrides = BTreeMap::new();
    for config in &topic.configs {
        if let Some(value) = &config.value {
            overrides.insert(config.name.to_string(), value.to_string());
        }
    }
    let count = partitions.unwrap_or(ctx.broker.config().default_partitions);
    if validate_only {
        ctx.broker.validate_new_topic(&topic.name, partitions, &overrides).map_err(fail)?;
        return Ok(count);
    }
    ctx.broker.create_topic(&topic.name, partitions, overrides).map_err(fail)?;
    Ok(count)
}

fn configs_of(ctx: &Context, name: &str) -> Vec<CreatableTopicConfigs> {
    let config = ctx.broker.topic(name).map(|t| t.config()).unwrap_or_default();
    config
        .entries(&ctx.broker.config().log_defaults)
        .into_iter()
        .map(|entry| {
            let mut out = CreatableTopicConfigs::default();
            out.name = str_bytes(&entry.name);
            out.value = Some(str_bytes(&entry.value));
            out.read_only = entry.read_only;
            out.config_source = if entry.is_default { SOURCE_DEFAULT } else { SOURCE_DYNAMIC_TOPIC };
            out
        })
        .collect()
}
