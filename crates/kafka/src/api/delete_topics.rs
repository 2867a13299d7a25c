//! DeleteTopics: deletes exactly the named (or, v6+, identified) topics, data included; in a
//! cluster on every node, through the metadata group.

use super::{str_bytes, topic_name};
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use sluice_broker::BrokerError;
use std::sync::Arc;

/// Kafka's UNKNOWN_TOPIC_ID, for a v6 deletion by id that matches nothing.
const UNKNOWN_TOPIC_ID: i16 = 100;

pub async fn handle(
    ctx: Arc<Context>,
    request: DeleteTopicsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, crate::dispatch::DispatchError> {
    let response = answer(ctx, request, meta).await;
    meta.respond(&response).map(Some)
}

/// The response `handle` sends (the authorizer adds its refusals to it).
pub async fn answer(ctx: Arc<Context>, request: DeleteTopicsRequest, meta: RequestMeta) -> DeleteTopicsResponse {
    let mut response = DeleteTopicsResponse::default();
    let targets: Vec<(Option<String>, uuid::Uuid)> = if meta.version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.to_string()), uuid::Uuid::nil())).collect()
    };
    for (name, id) in targets {
        let mut result = DeletableTopicResult::default();
        let resolved = match &name {
            Some(name) => Some(name.clone()),
            None => ctx.broker.topics().into_iter().find(|t| t.id == id).map(|t| t.name.to_string()),
        };
        let outcome = match &resolved {
            Some(name) => ctx.broker.delete_topic_anywhere(name).await,
            None => Err(BrokerError::UnknownTopicOrPartition),
        };
        result.name = resolved.as_deref().map(topic_name);
        if meta.version >= 6 {
            result.topic_id = id;
        }
        match outcome {
            Ok(()) => result.error_code = NONE,
            Err(e) => {
                result.error_code = if name.is_none() { UNKNOWN_TOPIC_ID } else { code_of(&e) };
                if meta.version >= 5 {
                    result.error_message = Some(str_bytes(&e.to_string()));
                }
            }
        }
        response.responses.push(result);
    }
    response
}
