//! DeleteRecords (KIP-107): moves each named partition's log start offset up to the given
//! offset (-1: the high watermark) and answers the new start as `low_watermark`.

use super::topic_name;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_broker::{BrokerError, BrokerResult};
use std::sync::Arc;

pub async fn handle(
    ctx: Arc<Context>,
    request: DeleteRecordsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, DispatchError> {
    let response = answer(ctx, request).await;
    meta.respond(&response).map(Some)
}

/// The response `handle` sends (the authorizer adds its refusals to it).
pub async fn answer(ctx: Arc<Context>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut out = DeleteRecordsPartitionResult::default();
            out.partition_index = p.partition_index;
            out.low_watermark = -1;
            match delete_one(&ctx, &topic.name, p.partition_index, p.offset).await {
                Ok(low_watermark) => {
                    out.error_code = NONE;
                    out.low_watermark = low_watermark;
                }
                Err(e) => {
                    tracing::info!(topic = %topic.name.0, partition = p.partition_index, offset = p.offset,
                        error = %e, "DeleteRecords refused");
                    out.error_code = code_of(&e);
                }
            }
            partitions.push(out);
        }
        let mut result = DeleteRecordsTopicResult::default();
        result.name = topic_name(&topic.name);
        result.partitions = partitions;
        topics.push(result);
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// One partition: on the leader only (`NOT_LEADER_OR_FOLLOWER` elsewhere); a replicated one
/// through the cluster, a single node's directly (it fsyncs: off the async runtime).
async fn delete_one(ctx: &Arc<Context>, topic: &str, partition: i32, offset: i64) -> BrokerResult<i64> {
    let part = ctx.broker.partition(topic, partition)?;
    part.check_leader()?;
    if part.replica().is_some() {
        return part.delete_records_replicated(&ctx.broker, offset).await;
    }
    let deleted = tokio::task::spawn_blocking(move || part.delete_records(offset)).await;
    deleted.unwrap_or_else(|e| Err(BrokerError::Storage(format!("DeleteRecords task failed: {e}"))))
}
