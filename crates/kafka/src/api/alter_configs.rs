//! AlterConfigs (replace every override of a topic) and IncrementalAlterConfigs (set,
//! delete, append, subtract individual keys; append and subtract only on list configs, as
//! Kafka). Both validate first: nothing changes on error. In a cluster the new overrides go
//! through the metadata group to every node.

use super::describe_configs::RESOURCE_TOPIC;
use super::str_bytes;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, INVALID_CONFIG, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use sluice_broker::{config_kind, BrokerError, ConfigKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// IncrementalAlterConfigs operation ids.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (i16, String)>;

pub async fn handle(
    ctx: Arc<Context>,
    request: AlterConfigsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, DispatchError> {
    let response = answer(ctx, request).await;
    meta.respond(&response).map(Some)
}

/// The response `handle` sends (the authorizer adds its refusals to it).
pub async fn answer(ctx: Arc<Context>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let outcome = match check_topic(resource.resource_type) {
            Ok(()) => {
                let overrides: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                    .collect();
                apply(&ctx, &resource.resource_name, overrides, request.validate_only).await
            }
            Err(e) => Err(e),
        };
        let mut out = kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        (out.error_code, out.error_message) = codes(outcome);
        response.responses.push(out);
    }
    response
}

pub async fn handle_incremental(
    ctx: Arc<Context>,
    request: IncrementalAlterConfigsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, DispatchError> {
    let response = answer_incremental(ctx, request).await;
    meta.respond(&response).map(Some)
}

/// The response `handle_incremental` sends (the authorizer adds its refusals to it).
pub async fn answer_incremental(
    ctx: Arc<Context>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let outcome = match check_topic(resource.resource_type).and_then(|()| changed(&ctx, &resource)) {
            Ok(overrides) => apply(&ctx, &resource.resource_name, overrides, request.validate_only).await,
            Err(e) => Err(e),
        };
        let mut out =
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        (out.error_code, out.error_message) = codes(outcome);
        response.responses.push(out);
    }
    response
}

/// The topic's overrides after the resource's incremental changes.
fn changed(
    ctx: &Context,
    resource: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
) -> Result<BTreeMap<String, String>, (i16, String)> {
    let topic = ctx.broker.topic(&resource.resource_name).ok_or_else(|| fail(BrokerError::UnknownTopicOrPartition))?;
    let config = topic.config();
    let current = config.entries(&ctx.broker.config().log_defaults);
    let mut overrides = config.overrides;
    for change in &resource.configs {
        let name = change.name.to_string();
        let value = change.value.as_ref().map(|v| v.to_string());
        match (change.config_operation, value) {
            (OP_DELETE, _) => {
                overrides.remove(&name);
            }
            (OP_SET, Some(v)) => {
                overrides.insert(name, v);
            }
            (op @ (OP_APPEND | OP_SUBTRACT), Some(v)) => {
                if config_kind(&name) != Some(ConfigKind::List) {
                    return Err((INVALID_CONFIG, format!("{name}: append and subtract need a list config")));
                }
                // Append starts from the value in force (Kafka's default included);
                // subtract only from what the topic sets.
                let base = match (overrides.get(&name), op) {
                    (Some(set), _) => Some(set.clone()),
                    (None, OP_APPEND) => current.iter().find(|e| e.name == name).map(|e| e.value.clone()),
                    (None, _) => None,
                }
                .unwrap_or_default();
                let list = if op == OP_APPEND { appended(&base, &v) } else { subtracted(&base, &v) };
                overrides.insert(name, list);
            }
            (op, _) => return Err((INVALID_REQUEST, format!("{name}: operation {op} needs a value or is unknown"))),
        }
    }
    Ok(overrides)
}

/// Items of a comma-separated list, without empty ones.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// `list` with the items of `more` it lacks added at the end.
fn appended(list: &str, more: &str) -> String {
    let mut out: Vec<&str> = items(list).collect();
    for item in items(more) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.join(",")
}

/// `list` without the items of `less`.
fn subtracted(list: &str, less: &str) -> String {
    let less: Vec<&str> = items(less).collect();
    items(list).filter(|item| !less.contains(item)).collect::<Vec<_>>().join(",")
}

fn check_topic(resource_type: i8) -> Outcome {
    if resource_type == RESOURCE_TOPIC {
        Ok(())
    } else {
        Err((INVALID_REQUEST, "only topic configs can be altered; broker configs are static".into()))
    }
}

async fn apply(ctx: &Context, topic: &str, overrides: BTreeMap<String, String>, validate_only: bool) -> Outcome {
    ctx.broker.set_topic_config_anywhere(topic, overrides, validate_only).await.map_err(fail)
}

fn fail(e: BrokerError) -> (i16, String) {
    (code_of(&e), e.to_string())
}

fn codes(outcome: Outcome) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match outcome {
        Ok(()) => (NONE, None),
        Err((code, message)) => (code, Some(str_bytes(&message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Append adds only missing items, in order; subtract removes every given item.
    #[test]
    fn list_append_and_subtract() {
        assert_eq!(appended("delete", "compact"), "delete,compact");
        assert_eq!(appended("delete,compact", "compact, delete"), "delete,compact");
        assert_eq!(appended("", "compact"), "compact");
        assert_eq!(subtracted("delete,compact", "delete"), "compact");
        assert_eq!(subtracted("compact", "compact"), "");
        assert_eq!(subtracted("", "delete"), "");
    }
}
