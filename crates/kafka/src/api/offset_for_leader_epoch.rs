//! OffsetForLeaderEpoch: clients use it to detect log truncation after a leader change.
//! A single node has only epoch 0, which ends at the log end.

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
            match ctx.broker.partition(&topic.topic, p.partition) {
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
