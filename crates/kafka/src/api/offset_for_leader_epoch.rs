//! OffsetForLeaderEpoch: clients use it to detect log truncation after a leader change.
//! A single node has only epoch 0, which ends at the log end; a replicated partition answers
//! from the terms (leader epochs) of the entries in its Raft log, on its leader only.

use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

pub fn handle(ctx: &Context, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut result = OffsetForLeaderTopicResult::default();
        result.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut out = EpochEndOffset::default();
            out.partition = p.partition;
            let found = ctx.broker.partition(&topic.topic, p.partition).and_then(|part| {
                part.check_leader()?;
                part.check_leader_epoch(p.current_leader_epoch)?;
                Ok(part)
            });
            match found {
                Ok(partition) if partition.replica().is_some() => {
                    let end = partition.replica().and_then(|r| r.epoch_end_offset(p.leader_epoch));
                    out.error_code = NONE;
                    // An epoch older than every one kept: Kafka answers UNDEFINED (-1, -1).
                    let (epoch, offset) = end.unwrap_or((-1, -1));
                    out.leader_epoch = epoch;
                    // The current epoch ends at the high watermark for consumers.
                    out.end_offset =
                        if epoch == partition.role(-1).epoch { partition.log_end_offset() } else { offset };
                }
                Ok(partition) if p.leader_epoch <= partition.leader_epoch => {
                    out.error_code = NONE;
                    out.leader_epoch = partition.leader_epoch;
                    out.end_offset = partition.log_end_offset();
                }
                // An epoch newer than any we had: Kafka answers UNDEFINED (-1, -1).
                Ok(_) => {
                    out.error_code = NONE;
                    out.leader_epoch = -1;
                    out.end_offset = -1;
                }
                Err(e) => out.error_code = code_of(&e),
            }
            result.partitions.push(out);
        }
        response.topics.push(result);
    }
    response
}
