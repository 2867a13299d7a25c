//! DescribeConfigs: every topic config Kafka 3.x defines (those Sluice honours with their
//! effective value, the others as set or at Kafka's default) with its source, type and
//! sensitivity (no topic config is sensitive), and the broker's own settings.

use super::create_topics::{SOURCE_DEFAULT, SOURCE_DYNAMIC_TOPIC};
use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use sluice_broker::{config_kind, BrokerError, ConfigEntry, ConfigKind, FlushPolicy};

/// Kafka `ConfigResource.Type`.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka `ConfigSource.STATIC_BROKER_CONFIG`.
const SOURCE_STATIC_BROKER: i8 = 4;

pub fn handle(ctx: &Context, request: DescribeConfigsRequest, meta: RequestMeta) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let entries = match resource.resource_type {
            RESOURCE_TOPIC => ctx
                .broker
                .topic(&resource.resource_name)
                .map(|t| (t.config().entries(&ctx.broker.config().log_defaults), false))
                .ok_or(BrokerError::UnknownTopicOrPartition)
                .map_err(|e| (code_of(&e), e.to_string())),
            RESOURCE_BROKER => Ok((broker_entries(ctx), true)),
            other => Err((INVALID_REQUEST, format!("resource type {other} is not supported"))),
        };
        match entries {
            Ok((entries, broker_level)) => {
                result.error_code = NONE;
                let keys = resource.configuration_keys.as_ref();
                result.configs = entries
                    .into_iter()
                    .filter(|e| keys.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
                    .map(|e| describe(e, broker_level, meta.version))
                    .collect();
            }
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(str_bytes(&message));
            }
        }
        response.results.push(result);
    }
    response
}

fn describe(entry: ConfigEntry, broker_level: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default();
    out.config_type = config_type(&entry.name);
    out.name = str_bytes(&entry.name);
    out.value = Some(str_bytes(&entry.value));
    out.read_only = entry.read_only || broker_level;
    if version == 0 {
        out.is_default = entry.is_default;
    } else {
        out.config_source = match (broker_level, entry.is_default) {
            (true, _) => SOURCE_STATIC_BROKER,
            (false, true) => SOURCE_DEFAULT,
            (false, false) => SOURCE_DYNAMIC_TOPIC,
        };
    }
    out
}

/// Kafka `ConfigType` ids (v3+): 1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list.
fn config_type(name: &str) -> i8 {
    match config_kind(name) {
        Some(ConfigKind::Boolean) => 1,
        Some(ConfigKind::Text | ConfigKind::OneOf(_)) => 2,
        Some(ConfigKind::Int) => 3,
        Some(ConfigKind::Long) => 5,
        Some(ConfigKind::Double) => 6,
        Some(ConfigKind::List) => 7,
        // The broker's own settings.
        None => match name {
            "num.partitions" | "message.max.bytes" => 3,
            "auto.create.topics.enable" => 1,
            _ => 5,
        },
    }
}

fn broker_entries(ctx: &Context) -> Vec<ConfigEntry> {
    let config = ctx.broker.config();
    let log = &config.log_defaults;
    let entry =
        |name: &str, value: String| ConfigEntry { name: name.into(), value, is_default: false, read_only: true };
    vec![
        entry("broker.id", config.node_id.to_string()),
        entry("num.partitions", config.default_partitions.to_string()),
        entry("auto.create.topics.enable", config.auto_create_topics.to_string()),
        entry("message.max.bytes", log.batch_bytes_max.to_string()),
        entry("log.segment.bytes", log.segment_bytes_max.to_string()),
        entry("log.retention.ms", log.retention_age_max.map(|d| d.as_millis() as i64).unwrap_or(-1).to_string()),
        entry("log.retention.bytes", log.retention_bytes_max.map(|b| b as i64).unwrap_or(-1).to_string()),
        entry(
            "log.flush.interval.messages",
            if log.flush == FlushPolicy::Always { "1".into() } else { i64::MAX.to_string() },
        ),
    ]
}
