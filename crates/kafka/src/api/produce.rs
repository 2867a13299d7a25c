//! Produce: appends each partition's batches in request order, then (for acks=all)
//! waits in a task for the fsync so pipelined requests share group commits.
//! Legacy message sets (magic 0/1) are up-converted to one v2 batch first. On a topic with
//! `message.timestamp.type=LogAppendTime` every batch is stamped with the broker's time
//! before it is appended (so replicas store the stamped batch), as Kafka does. On a compacted
//! topic (`cleanup.policy` holding `compact`) a record without a key is refused with
//! `INVALID_RECORD`, naming each such record in `record_errors` (v8+), as Kafka does; nothing
//! of that partition's request is written.

use super::{now_ms, topic_name};
use crate::dispatch::{later, DispatchError, Reply, RequestMeta};
use crate::error_codes::{code_of, CORRUPT_MESSAGE, INVALID_RECORD, INVALID_REQUIRED_ACKS, NONE};
use crate::server::Context;
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use sluice_broker::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use sluice_broker::{AppendOutcome, BrokerError, Durability, Partition, Submitted};
use sluice_records::convert;
use std::sync::Arc;

/// The outcome of one partition's append, before any durability wait.
struct Appended {
    index: i32,
    result: Result<Submission, BrokerError>,
    /// Records refused one by one (index within their batch): keyless records on a
    /// compacted topic.
    record_errors: Vec<i32>,
}

/// An accepted append.
struct Submission {
    partition: Arc<Partition>,
    submitted: Submitted,
    /// The time the batches were stamped with on a LogAppendTime topic, else -1.
    log_append_time_ms: i64,
}

/// `denied`: topics the principal may not WRITE (TOPIC_AUTHORIZATION_FAILED, nothing appended);
/// `throttle_ms`: what the client's quota says (written anyway, as Kafka does).
pub fn handle(
    ctx: &Arc<Context>,
    request: ProduceRequest,
    meta: RequestMeta,
    denied: &[String],
    throttle_ms: i32,
) -> Result<Reply, DispatchError> {
    let acks = request.acks;
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let refused = denied.contains(&name);
        let appended: Vec<Appended> = topic
            .partition_data
            .into_iter()
            .map(|p| {
                let mut record_errors = Vec::new();
                let result = if refused {
                    Err(BrokerError::UnknownTopicOrPartition)
                } else if matches!(acks, -1..=1) {
                    append(ctx, &name, p.index, p.records, &mut record_errors)
                } else {
                    Err(BrokerError::InvalidConfig(format!("acks={acks}")))
                };
                Appended { index: p.index, result, record_errors }
            })
            .collect();
        topics.push((name, appended, refused));
    }
    if acks == 0 {
        return Ok(Reply::Nothing);
    }
    Ok(later(async move {
        let mut response = ProduceResponse::default();
        response.throttle_time_ms = throttle_ms;
        for (name, appended, refused) in topics {
            let mut topic = TopicProduceResponse::default();
            topic.name = topic_name(&name);
            for a in appended {
                let durability = if acks == -1 { Durability::Committed } else { Durability::Written };
                let (result, log_append_time_ms) = match a.result {
                    Ok(s) => (s.submitted.wait(&s.partition, durability).await, s.log_append_time_ms),
                    Err(e) => (Err(e), -1),
                };
                let mut out = partition_response(a.index, result, acks, meta.version);
                if refused {
                    out.error_code = crate::error_codes::TOPIC_AUTHORIZATION_FAILED;
                }
                if meta.version >= 8 {
                    out.record_errors = record_errors(&name, a.index, &a.record_errors);
                }
                if out.error_code == NONE && meta.version >= 2 {
                    out.log_append_time_ms = log_append_time_ms;
                }
                topic.partition_responses.push(out);
            }
            response.responses.push(topic);
        }
        meta.respond(&response).map(Some)
    }))
}

fn append(
    ctx: &Context,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    record_errors: &mut Vec<i32>,
) -> Result<Submission, BrokerError> {
    let name = topic;
    if sluice_broker::group::offsets_partition::is_internal_topic(name) {
        return Err(BrokerError::InvalidTopic(format!("Cannot append to internal topic {name}")));
    }
    let topic = ctx.broker.topic_or_auto_create(topic)?;
    let partition = topic.partition(index).ok_or(BrokerError::UnknownTopicOrPartition)?;
    let records = records.filter(|r| !r.is_empty()).ok_or_else(|| BrokerError::CorruptMessage("no records".into()))?;
    let mut batches = match convert::records_magic(&records) {
        Some(2) => {
            // Kafka's LogValidator checks, before anything of this partition is written.
            convert::validate_produced(&records).map_err(refusal_error)?;
            records.to_vec()
        }
        Some(0 | 1) => convert::upconvert_message_set(&records, now_ms()).map_err(upconvert_error)?,
        Some(magic) => return Err(BrokerError::CorruptMessage(format!("unknown magic {magic}"))),
        None => return Err(BrokerError::CorruptMessage("records too short".into())),
    };
    let config = topic.config();
    if config.compacts() {
        *record_errors = convert::keyless_records(&batches);
        if !record_errors.is_empty() {
            return Err(BrokerError::InvalidRecord(keyless_message(name, index, record_errors.len())));
        }
    }
    let log_append_time_ms = match config.log_append_time() {
        true => stamp_log_append_time(&mut batches, now_ms()),
        false => -1,
    };
    let submitted = partition.submit(batches)?;
    Ok(Submission { partition, submitted, log_append_time_ms })
}

/// Kafka's words for a keyless record on a compacted topic.
fn keyless_record(topic: &str, index: i32) -> String {
    format!("Compacted topic cannot accept message without key in topic partition {topic}-{index}.")
}

/// Kafka's top-level message for a produce refused record by record.
fn keyless_message(topic: &str, index: i32, count: usize) -> String {
    let shown = count.min(3);
    let errors = vec![keyless_record(topic, index); shown].join(", ");
    format!(
        "One or more records have been rejected due to {count} record errors in total, and only showing the \
         first three errors at most: [{errors}]"
    )
}

/// The Produce response's `record_errors` (v8+) for the records refused one by one.
fn record_errors(topic: &str, index: i32, refused: &[i32]) -> Vec<BatchIndexAndErrorMessage> {
    refused
        .iter()
        .map(|&batch_index| {
            let mut error = BatchIndexAndErrorMessage::default();
            error.batch_index = batch_index;
            error.batch_index_error_message = Some(super::str_bytes(&keyless_record(topic, index)));
            error
        })
        .collect()
}

/// Stamps every whole batch of `batches` (checked or built just before) with `now`;
/// returns `now`.
fn stamp_log_append_time(batches: &mut [u8], now: i64) -> i64 {
    let mut at = 0;
    while let Some(header) = batches.get(at..).and_then(|rest| BatchHeader::parse(rest).ok()) {
        let end = at + header.total_len();
        if header.total_len() < BATCH_HEADER_LEN || end > batches.len() {
            break;
        }
        batch::set_log_append_time(&mut batches[at..end], now);
        at = end;
    }
    now
}

/// A legacy set too large once converted is Kafka's MESSAGE_TOO_LARGE; anything else
/// the conversion refuses is a corrupt message to the old client.
fn upconvert_error(e: convert::ConvertError) -> BrokerError {
    match e {
        convert::ConvertError::TooLarge(_) => BrokerError::MessageTooLarge { size: 0, max: 0 },
        other => BrokerError::CorruptMessage(other.to_string()),
    }
}

/// A bad count, offset range or record structure is Kafka's INVALID_RECORD; a CRC mismatch or
/// undecodable compression stays CORRUPT_MESSAGE, and a decompression bomb MESSAGE_TOO_LARGE.
fn refusal_error(e: convert::Refusal) -> BrokerError {
    match e {
        convert::Refusal::InvalidRecord { .. } => BrokerError::InvalidRecord(e.to_string()),
        convert::Refusal::Records { source: convert::ConvertError::TooLarge(_), .. } => {
            BrokerError::MessageTooLarge { size: 0, max: 0 }
        }
        other => BrokerError::CorruptMessage(other.to_string()),
    }
}

fn partition_response(
    index: i32,
    result: Result<AppendOutcome, BrokerError>,
    acks: i16,
    version: i16,
) -> PartitionProduceResponse {
    let mut response = PartitionProduceResponse::default();
    response.index = index;
    match result {
        Ok(outcome) => {
            response.error_code = NONE;
            response.base_offset = outcome.base_offset;
            response.log_append_time_ms = -1;
            if version >= 5 {
                response.log_start_offset = outcome.log_start_offset;
            }
        }
        Err(e) => {
            response.error_code = if matches!(e, BrokerError::InvalidConfig(_)) && !matches!(acks, -1..=1) {
                INVALID_REQUIRED_ACKS
            } else {
                code_of(&e)
            };
            if matches!(response.error_code, CORRUPT_MESSAGE | INVALID_RECORD) || e.is_storage() {
                tracing::warn!(partition = index, error = %e, "produce refused");
            }
            response.base_offset = -1;
            if version >= 8 {
                response.error_message = Some(super::str_bytes(&e.to_string()));
            }
        }
    }
    response
}
