//! OffsetCommit (v0–8; v0–1 is what sarama sends by default): checks membership and
//! generation through the coordinator, and that each partition exists.

use crate::dispatch::{later, DispatchError, Reply, RequestMeta};
use crate::error_codes::{group_code, NONE, UNKNOWN_TOPIC_OR_PARTITION};
use crate::server::Context;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use sluice_broker::group::{CommitRequest, OffsetToCommit};
use std::sync::Arc;

/// A commit writes the offsets log and waits for its fsync (shared with concurrent
/// commits): blocking work, so it runs on the blocking pool and answers when durable.
/// `refused`: the topics the authorizer refused, answered as they are after the others.
pub fn handle(
    ctx: &Arc<Context>,
    request: OffsetCommitRequest,
    meta: RequestMeta,
    refused: Vec<OffsetCommitResponseTopic>,
) -> Reply {
    let ctx = Arc::clone(ctx);
    later(async move {
        let mut response = tokio::task::spawn_blocking(move || commit(&ctx, request, meta))
            .await
            .map_err(|e| DispatchError::Task(e.to_string()))?;
        response.topics.extend(refused);
        meta.respond(&response).map(Some)
    })
}

fn commit(ctx: &Context, request: OffsetCommitRequest, meta: RequestMeta) -> OffsetCommitResponse {
    let broker = &ctx.broker;
    let commit = CommitRequest {
        group_id: request.group_id.0.to_string(),
        // v0 has no generation: a standalone commit, as Kafka treats it.
        generation: if meta.version >= 1 { request.generation_id_or_member_epoch } else { -1 },
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
    };
    // (topic index, partition index, exists) in request order.
    let mut wanted = Vec::new();
    let mut offsets = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        for (p, partition) in topic.partitions.iter().enumerate() {
            let exists = broker.partition(&topic.name.0, partition.partition_index).is_ok();
            wanted.push((t, p, exists));
            if exists {
                offsets.push(OffsetToCommit {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index,
                    offset: partition.committed_offset,
                    leader_epoch: if meta.version >= 6 { partition.committed_leader_epoch } else { -1 },
                    metadata: partition.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
    }
    let outcome = if offsets.is_empty() { Ok(Vec::new()) } else { broker.groups().commit_offsets(&commit, &offsets) };
    let mut results = match &outcome {
        Ok(r) => r.iter().map(|x| x.err().as_ref().map_or(NONE, group_code)).collect::<Vec<_>>().into_iter(),
        Err(e) => vec![group_code(e); offsets.len()].into_iter(),
    };
    let mut response = OffsetCommitResponse::default();
    for (t, topic) in request.topics.into_iter().enumerate() {
        let mut out = OffsetCommitResponseTopic::default();
        out.name = topic.name;
        for (p, partition) in topic.partitions.into_iter().enumerate() {
            let exists = wanted.iter().any(|&(wt, wp, e)| wt == t && wp == p && e);
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = partition.partition_index;
            r.error_code = if exists { results.next().unwrap_or(NONE) } else { UNKNOWN_TOPIC_OR_PARTITION };
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    response
}
