//! CreatePartitions: grows a topic's partition count (never shrinks, as Kafka); in a cluster
//! through the metadata group, the new partitions' replicas placed as a new topic's.

use super::str_bytes;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_broker::BrokerError;
use std::sync::Arc;

pub async fn handle(
    ctx: Arc<Context>,
    request: CreatePartitionsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, DispatchError> {
    let response = answer(ctx, request).await;
    meta.respond(&response).map(Some)
}

/// The response `handle` sends (the authorizer adds its refusals to it).
pub async fn answer(ctx: Arc<Context>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let assigned = topic.assignments.as_ref().is_some_and(|a| !a.is_empty());
        let outcome = match u32::try_from(topic.count) {
            // As CreateTopics: the cluster places replicas itself (`assign_replicas`).
            Ok(_) if assigned && ctx.broker.cluster().is_some() => {
                Err((INVALID_REQUEST, "explicit replica assignments are not supported yet".to_string()))
            }
            Ok(count) => ctx
                .broker
                .create_partitions_anywhere(&topic.name, count, request.validate_only)
                .await
                .map_err(|e| (code_of(&e), e.to_string())),
            Err(_) => {
                let e = BrokerError::InvalidPartitions("partition count must be positive".into());
                Err((code_of(&e), e.to_string()))
            }
        };
        match outcome {
            Ok(()) => result.error_code = NONE,
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = Some(str_bytes(&message));
            }
        }
        response.results.push(result);
    }
    response
}
