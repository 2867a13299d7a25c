//! AlterPartitionReassignments: moves partitions to new replica sets (a null replica list
//! cancels the partition's move), through the metadata group. The call returns once each
//! move is recorded; the data moves in the background (ListPartitionReassignments shows it).

use super::str_bytes;
use crate::error_codes::{admin_code, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use sluice_broker::reassignment::AdminError;
use std::sync::Arc;

pub async fn handle(
    ctx: Arc<Context>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    let Some(cluster) = ctx.broker.cluster() else {
        response.error_code = INVALID_REQUEST;
        response.error_message = Some(str_bytes("this node is not part of a cluster: nothing to reassign"));
        return response;
    };
    for topic in request.topics {
        let mut topic_response = ReassignableTopicResponse::default();
        topic_response.name = topic.name.clone();
        for partition in topic.partitions {
            let replicas = partition.replicas.map(|list| list.into_iter().map(|id| id.0).collect());
            let outcome = if ctx.broker.topic(&topic.name).is_none() {
                Err(AdminError::UnknownTopicOrPartition)
            } else {
                cluster.reassign(&topic.name, partition.partition_index, replicas).await
            };
            let mut result = ReassignablePartitionResponse::default();
            result.partition_index = partition.partition_index;
            match outcome {
                Ok(()) => result.error_code = NONE,
                Err(e) => {
                    result.error_code = admin_code(&e);
                    result.error_message = Some(str_bytes(&e.to_string()));
                }
            }
            topic_response.partitions.push(result);
        }
        response.responses.push(topic_response);
    }
    response
}
