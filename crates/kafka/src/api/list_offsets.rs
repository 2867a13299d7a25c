//! ListOffsets: earliest (-2), latest (-1), the record with the largest timestamp (-3,
//! KIP-734), or the first record at or after a timestamp; v0 answers with its old offsets
//! array.

use super::topic_name;
use crate::dispatch::RequestMeta;
use crate::error_codes::{code_of, NONE};
use crate::server::Context;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_broker::{BrokerError, Partition, TimestampHit};
use sluice_records::convert;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(ctx: &Context, request: ListOffsetsRequest, meta: RequestMeta) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let mut entry = ListOffsetsTopicResponse::default();
        entry.name = topic_name(&topic.name);
        for p in topic.partitions {
            let mut out = ListOffsetsPartitionResponse::default();
            out.partition_index = p.partition_index;
            match ctx
                .broker
                .partition(&topic.name, p.partition_index)
                .and_then(|part| part.check_leader_epoch(p.current_leader_epoch).map(|_| part))
                .and_then(|part| lookup(&part, p.timestamp))
            {
                Ok((offset, timestamp, epoch)) => {
                    out.error_code = NONE;
                    if meta.version == 0 {
                        out.old_style_offsets =
                            if offset >= 0 && p.max_num_offsets > 0 { vec![offset] } else { vec![] };
                    } else {
                        out.offset = offset;
                        out.timestamp = timestamp;
                        if meta.version >= 4 {
                            out.leader_epoch = epoch;
                        }
                    }
                }
                Err(e) => {
                    out.error_code = code_of(&e);
                    if meta.version >= 1 {
                        out.offset = -1;
                        out.timestamp = -1;
                    }
                }
            }
            entry.partitions.push(out);
        }
        response.topics.push(entry);
    }
    response
}

/// (offset, timestamp, leader epoch); offset -1 when no record is at or after the timestamp.
fn lookup(partition: &Partition, timestamp: i64) -> Result<(i64, i64, i32), BrokerError> {
    partition.check_leader()?;
    let epoch = partition.role(-1).epoch;
    match timestamp {
        LATEST => Ok((partition.log_end_offset(), -1, epoch)),
        EARLIEST => Ok((partition.log_start_offset(), -1, epoch)),
        // The first record holding the largest timestamp, as Kafka since 3.8 (KAFKA-16310).
        MAX_TIMESTAMP => match partition.find_max_timestamp()? {
            Some(hit) => record_in(&hit, hit.header.max_timestamp, epoch),
            None => Ok((-1, -1, -1)),
        },
        t if t < 0 => Err(BrokerError::InvalidConfig(format!("unsupported timestamp query {t}"))),
        t => match partition.find_by_timestamp(t)? {
            Some(hit) => record_in(&hit, t, epoch),
            None => Ok((-1, -1, -1)),
        },
    }
}

/// The first record of `hit`'s batch at or after `timestamp`, with the leader `epoch`.
fn record_in(hit: &TimestampHit, timestamp: i64, epoch: i32) -> Result<(i64, i64, i32), BrokerError> {
    match convert::first_record_at_or_after(&hit.batch, timestamp) {
        Ok(Some((offset, ts))) => Ok((offset, ts, epoch)),
        // The batch's max timestamp says a record qualifies; fall back to its start.
        Ok(None) => Ok((hit.header.base_offset, hit.header.max_timestamp, epoch)),
        Err(e) => Err(BrokerError::Storage(format!("cannot decode batch: {e}"))),
    }
}
