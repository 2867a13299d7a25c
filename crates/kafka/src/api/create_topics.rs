//! CreateTopics: partitions and configs as asked; replication is 1 on a single node.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, INVALID_REPLICATION_FACTOR, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use sluice_broker::BrokerError;
use std::collections::{BTreeMap, HashMap};

/// Kafka's `ConfigSource` values as CreateTopics and DescribeConfigs report them.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DEFAULT: i8 = 5;

pub fn handle(ctx: &Context, request: CreateTopicsRequest, meta: RequestMeta) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.to_string()).or_default() += 1;
    }
    for topic in request.topics {
        let name = topic.name.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err((INVALID_REQUEST, format!("topic '{name}' appears more than once in the request")))
        } else {
            create(ctx, &topic, request.validate_only)
        };
        match outcome {
            Ok(partitions) => {
                result.error_code = NONE;
                if meta.version >= 5 {
                    result.num_partitions = partitions as i32;
                    result.replication_factor = 1;
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
        response.topics.push(result);
    }
    response
}

fn create(
    ctx: &Context,
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<u32, (i16, String)> {
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
