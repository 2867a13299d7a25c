//! DeleteRecords (KIP-107): moves each named partition's log start offset up to the given
//! offset (-1: the high watermark) and answers the new start as `low_watermark`.

use super::topic_name;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
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
    // Each partition stores its new start with an fsync: off the async runtime.
    let topics = tokio::task::spawn_blocking(move || delete_all(&ctx, request)).await;
    DeleteRecordsResponse::default().with_topics(topics.unwrap_or_default())
}

fn delete_all(ctx: &Context, request: DeleteRecordsRequest) -> Vec<DeleteRecordsTopicResult> {
    request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut out = DeleteRecordsPartitionResult::default();
                    out.partition_index = p.partition_index;
                    out.low_watermark = -1;
                    match ctx.broker.partition(&topic.name, p.partition_index).and_then(|part| {
                        part.check_leader()?;
                        part.delete_records(p.offset)
                    }) {
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
                    out
                })
                .collect();
            let mut result = DeleteRecordsTopicResult::default();
            result.name = topic_name(&topic.name);
            result.partitions = partitions;
            result
        })
        .collect()
}
