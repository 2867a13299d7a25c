//! CreatePartitions: grows a topic's partition count (never shrinks, as Kafka); in a cluster
//! through the metadata group, the new partitions' replicas placed as a new topic's.

use super::str_bytes;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, NONE};
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
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = match u32::try_from(topic.count) {
            Ok(count) => ctx.broker.create_partitions_anywhere(&topic.name, count, request.validate_only).await,
            Err(_) => Err(BrokerError::InvalidPartitions("partition count must be positive".into())),
        };
        match outcome {
            Ok(()) => result.error_code = NONE,
            Err(e) => {
                result.error_code = code_of(&e);
                result.error_message = Some(str_bytes(&e.to_string()));
            }
        }
        response.results.push(result);
    }
    meta.respond(&response).map(Some)
}
