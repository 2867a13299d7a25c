//! CreatePartitions: grows a topic's partition count (never shrinks, as Kafka).

use super::str_bytes;
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_broker::BrokerError;

pub fn handle(ctx: &Context, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = u32::try_from(topic.count)
            .map_err(|_| BrokerError::InvalidPartitions("partition count must be positive".into()))
            .and_then(|count| {
                let current =
                    ctx.broker.topic(&topic.name).ok_or(BrokerError::UnknownTopicOrPartition)?.partition_count();
                if count <= current {
                    return Err(BrokerError::InvalidPartitions(format!(
                        "topic has {current} partitions; the count can only grow"
                    )));
                }
                if request.validate_only {
                    return Ok(());
                }
                ctx.broker.create_partitions(&topic.name, count)
            });
        match outcome {
            Ok(()) => result.error_code = NONE,
            Err(e) => {
                result.error_code = code_of(&e);
                result.error_message = Some(str_bytes(&e.to_string()));
            }
        }
        response.results.push(result);
    }
    response
}
