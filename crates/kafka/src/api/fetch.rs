//! Fetch: reads whole batches from each requested partition, within the partition's
//! `partition_max_bytes` and the response's `max_bytes` as Kafka does (KIP-74: only the first
//! batch of the first partition with data may go past them); when fewer than
//! `min_bytes` are available it long-polls, woken by the partitions' appends (never by
//! a polling loop), until `max_wait_ms`. Old versions (v0–v3) get legacy message sets.
//! Large reads and every down-conversion run on tokio's blocking pool, so one big Fetch
//! never holds a runtime thread that other connections need.

use super::topic_name;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{code_of, NONE};
use crate::quota::{FetchCharge, Mute};
use crate::server::Context;
use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use sluice_broker::{BatchHeader, BrokerError, FirstBatch, Partition};
use sluice_records::convert;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Upper bound on a long-poll, whatever the client asks: keeps a connection's
/// in-order replies from stalling behind one fetch for too long.
const WAIT_MAX: Duration = Duration::from_secs(30);

/// Largest Fetch response the broker builds, whatever the client asks (Kafka's broker
/// `fetch.max.bytes`, 55 MiB): without it a v0–v2 Fetch, which has no response limit,
/// could make the broker read a whole log into memory. The first batch still goes out
/// whole when it is larger, so a consumer always makes progress.
pub const RESPONSE_BYTES_MAX: usize = 55 * 1024 * 1024;

/// A Fetch whose partitions may ask for at most this many bytes in total is read on the
/// runtime thread: a positional read of 64 KiB from the page cache costs microseconds,
/// about what handing it to the blocking pool costs. Anything larger, and every read that
/// needs down-conversion (which decompresses and re-encodes), goes to the blocking pool.
/// (The first batch is served whole even past the budget, so an inline read is bounded by
/// the topic's `max.message.bytes` at worst.)
const INLINE_READ_BYTES_MAX: usize = 64 * 1024;

/// Fetch v4 is the first that serves stored v2 batches as they are (no down-conversion).
const FIRST_V2_VERSION: i16 = 4;

/// Fetch v3 is the first with a response `max_bytes` (KIP-74). Before it Kafka treats each
/// partition's limit as hard and sends a truncated last message, which old clients answer by
/// growing their fetch size; Sluice sends each partition's first batch whole instead, so
/// those clients make progress without that dance.
const FIRST_RESPONSE_LIMIT_VERSION: i16 = 3;

/// One requested partition, resolved once per request.
struct Wanted {
    topic: usize,
    index: i32,
    offset: i64,
    max_bytes: usize,
    partition: Result<Arc<Partition>, BrokerError>,
}

/// `denied`: topics the principal may not READ (TOPIC_AUTHORIZATION_FAILED, nothing read);
/// `quota`: the consumer's byte-rate quota, if it has one, and its connection's mute.
pub async fn handle(
    ctx: Arc<Context>,
    request: FetchRequest,
    meta: RequestMeta,
    denied: Vec<String>,
    quota: Option<(FetchCharge, Arc<Mute>)>,
) -> Result<Option<Bytes>, DispatchError> {
    let topics: Vec<String> = request.topics.iter().map(|t| t.topic.0.to_string()).collect();
    let mut wanted = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic: t,
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                partition: match denied.contains(&topics[t]) {
                    true => Err(BrokerError::UnknownTopicOrPartition),
                    false => ctx
                        .broker
                        .partition(&topics[t], p.partition)
                        .and_then(|part| part.check_leader_epoch(p.current_leader_epoch).map(|_| part)),
                },
            });
        }
    }
    let wanted = Arc::new(wanted);
    // Subscribe before reading so an append between the read and the wait still wakes us.
    let mut signals: Vec<watch::Receiver<i64>> =
        wanted.iter().filter_map(|w| w.partition.as_ref().ok().map(|p| p.subscribe())).collect();
    let response_bytes_max = if meta.version >= 3 {
        usize::try_from(request.max_bytes).unwrap_or(0).min(RESPONSE_BYTES_MAX)
    } else {
        RESPONSE_BYTES_MAX
    };
    // Never more than the quota allows over its window, so a throttled consumer progresses.
    let response_bytes_max = quota.as_ref().map_or(response_bytes_max, |(c, _)| response_bytes_max.min(c.max_bytes()));
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(WAIT_MAX);
    let deadline = Instant::now() + wait;
    loop {
        let (partitions, bytes, any_error) = read_off_runtime(&wanted, response_bytes_max, meta.version).await?;
        if bytes >= min_bytes || any_error || signals.is_empty() || Instant::now() >= deadline {
            return answer(&topics, &request, &wanted, partitions, bytes, &denied, quota.as_ref(), meta);
        }
        let changed = select_all(signals.iter_mut().map(|s| Box::pin(s.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (partitions, bytes, _) = read_off_runtime(&wanted, response_bytes_max, meta.version).await?;
            return answer(&topics, &request, &wanted, partitions, bytes, &denied, quota.as_ref(), meta);
        }
    }
}

/// The response to send: what was read, or, when the consumer's quota throttles it, nothing
/// (its bytes not counted) with the throttle time, the connection muted for that long.
#[allow(clippy::too_many_arguments)]
fn answer(
    topics: &[String],
    request: &FetchRequest,
    wanted: &[Wanted],
    partitions: Vec<(usize, PartitionData, Served)>,
    bytes: usize,
    denied: &[String],
    quota: Option<&(FetchCharge, Arc<Mute>)>,
    meta: RequestMeta,
) -> Result<Option<Bytes>, DispatchError> {
    let throttle = quota.map_or(Duration::ZERO, |(charge, _)| charge.record(bytes));
    if let (false, Some((_, mute))) = (throttle.is_zero(), quota) {
        mute.extend(throttle);
        // Kafka's throttled answer: no partitions, the throttle time, the same session.
        let mut response = FetchResponse::default();
        response.throttle_time_ms = crate::quota::millis(throttle);
        response.session_id = request.session_id;
        return meta.respond(&response).map(Some);
    }
    count_served(wanted, &partitions);
    meta.respond(&refuse(build(topics, request, partitions, meta.version), denied)).map(Some)
}

/// What `read_all` returns: each partition's answer, the bytes read, whether any failed.
type ReadAll = (Vec<(usize, PartitionData, Served)>, usize, bool);

/// `read_all`, on the blocking pool unless the read is small and needs no conversion.
async fn read_off_runtime(
    wanted: &Arc<Vec<Wanted>>,
    response_bytes_max: usize,
    version: i16,
) -> Result<ReadAll, DispatchError> {
    if reads_inline(wanted, response_bytes_max, version) {
        return Ok(read_all(wanted, response_bytes_max, version));
    }
    let wanted = Arc::clone(wanted);
    tokio::task::spawn_blocking(move || read_all(&wanted, response_bytes_max, version))
        .await
        .map_err(|e| DispatchError::Task(format!("fetch read failed: {e}")))
}

/// Whether a Fetch is small enough, and needs no down-conversion, to read on the runtime.
fn reads_inline(wanted: &[Wanted], response_bytes_max: usize, version: i16) -> bool {
    // The most bytes the partitions may ask for together (past the first batch).
    let budget = wanted.iter().fold(0usize, |sum, w| sum.saturating_add(w.max_bytes)).min(response_bytes_max);
    version >= FIRST_V2_VERSION && budget <= INLINE_READ_BYTES_MAX
}

/// Records and bytes one partition's answer carries.
#[derive(Debug, Clone, Copy, Default)]
struct Served {
    messages: u64,
    bytes: u64,
}

/// Counts what is sent as the partitions' traffic out: only the read that is answered,
/// since a long-poll may read several times before it answers.
fn count_served(wanted: &[Wanted], partitions: &[(usize, PartitionData, Served)]) {
    for (w, (_, _, served)) in wanted.iter().zip(partitions) {
        if let (Ok(partition), true) = (&w.partition, served.messages > 0) {
            partition.traffic.count_out(served.messages, served.bytes);
        }
    }
}

/// Records at or past `from` in whole v2 batches: a client skips those of the first batch
/// below its fetch offset, so they are not served to it.
fn records_from(batches: &[u8], from: i64) -> u64 {
    let mut records = 0u64;
    let mut at = 0usize;
    while let Ok(header) = BatchHeader::parse(&batches[at..]) {
        let wanted = header.last_offset() - header.base_offset.max(from) + 1;
        records += wanted.clamp(0, i64::from(header.records_count.max(0))) as u64;
        at += header.total_len();
        if at >= batches.len() {
            break;
        }
    }
    records
}

/// How much the next partition may read, after `served` bytes from earlier partitions:
/// within its own limit and what is left of the response's, in whole batches. Only the
/// first partition with data (nothing served yet) takes its first batch whole whatever its
/// size, so a consumer always makes progress and a response never exceeds `max_bytes`
/// otherwise, as Kafka's `minOneMessage` (KIP-74).
fn partition_limit(partition_max: usize, response_max: usize, served: usize, version: i16) -> (usize, FirstBatch) {
    let room = response_max.saturating_sub(served);
    let whole = served == 0 || (version < FIRST_RESPONSE_LIMIT_VERSION && room > 0);
    let first_batch = if whole { FirstBatch::Whole } else { FirstBatch::WithinLimit };
    (partition_max.min(room), first_batch)
}

/// Reads every wanted partition, each under `partition_limit`.
fn read_all(wanted: &[Wanted], response_bytes_max: usize, version: i16) -> ReadAll {
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut data = PartitionData::default();
        let mut served = Served::default();
        data.partition_index = w.index;
        let (budget, first_batch) = partition_limit(w.max_bytes, response_bytes_max, total, version);
        let read = |p: &Arc<Partition>| read_one(p, w.offset, (budget, first_batch), version);
        match w.partition.as_ref().map_err(clone_error).and_then(read) {
            Ok((records, messages, start, end)) => {
                data.error_code = NONE;
                data.high_watermark = end;
                if version >= 4 {
                    data.last_stable_offset = end;
                }
                if version >= 5 {
                    data.log_start_offset = start;
                }
                total += records.len();
                served = Served { messages, bytes: records.len() as u64 };
                data.records = Some(records);
            }
            Err(e) => {
                any_error = true;
                data.error_code = code_of(&e);
                data.high_watermark = -1;
                if let BrokerError::OffsetOutOfRange { log_start, log_end, .. } = e {
                    data.high_watermark = log_end;
                    if version >= 5 {
                        data.log_start_offset = log_start;
                    }
                }
                data.records = Some(Bytes::new());
            }
        }
        out.push((w.topic, data, served));
    }
    (out, total, any_error)
}

/// Returns (records in the format `version` expects, how many records from `offset` they
/// hold, log start, log end).
fn read_one(
    partition: &Partition,
    offset: i64,
    (budget, first_batch): (usize, FirstBatch),
    version: i16,
) -> Result<(Bytes, u64, i64, i64), BrokerError> {
    partition.check_leader()?;
    if budget == 0 && first_batch == FirstBatch::WithinLimit {
        return Ok((Bytes::new(), 0, partition.log_start_offset(), partition.log_end_offset()));
    }
    let read = partition.read_limited(offset, budget, first_batch)?;
    let messages = records_from(&read.bytes, offset);
    let records = match version {
        0..=1 => convert::downconvert_batches(&read.bytes, 0, offset),
        2..=3 => convert::downconvert_batches(&read.bytes, 1, offset),
        _ => Ok(read.bytes),
    }
    .map_err(|e| BrokerError::Storage(format!("down-conversion failed: {e}")))?;
    Ok((Bytes::from(records), messages, read.log_start_offset, read.log_end_offset))
}

/// Marks the partitions of topics the principal may not read.
fn refuse(mut response: FetchResponse, denied: &[String]) -> FetchResponse {
    for topic in response.responses.iter_mut().filter(|t| denied.iter().any(|d| d.as_str() == t.topic.0.as_str())) {
        for partition in &mut topic.partitions {
            partition.error_code = crate::error_codes::TOPIC_AUTHORIZATION_FAILED;
        }
    }
    response
}

fn build(
    topics: &[String],
    request: &FetchRequest,
    partitions: Vec<(usize, PartitionData, Served)>,
    version: i16,
) -> FetchResponse {
    let mut response = FetchResponse::default();
    let mut by_topic: Vec<FetchableTopicResponse> = topics
        .iter()
        .zip(&request.topics)
        .map(|(name, t)| {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = topic_name(name);
            if version >= 13 {
                topic.topic_id = t.topic_id;
            }
            topic
        })
        .collect();
    for (t, data, _) in partitions {
        if let Some(topic) = by_topic.get_mut(t) {
            topic.partitions.push(data);
        }
    }
    response.responses = by_topic;
    response
}

fn clone_error(e: &BrokerError) -> BrokerError {
    match e {
        BrokerError::UnknownTopicOrPartition => BrokerError::UnknownTopicOrPartition,
        BrokerError::FencedLeaderEpoch { requested, current } => {
            BrokerError::FencedLeaderEpoch { requested: *requested, current: *current }
        }
        BrokerError::UnknownLeaderEpoch { requested, current } => {
            BrokerError::UnknownLeaderEpoch { requested: *requested, current: *current }
        }
        BrokerError::NotLeader { leader } => BrokerError::NotLeader { leader: *leader },
        other => BrokerError::Storage(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanting(max_bytes: &[usize]) -> Vec<Wanted> {
        max_bytes
            .iter()
            .map(|&max_bytes| Wanted {
                topic: 0,
                index: 0,
                offset: 0,
                max_bytes,
                partition: Err(BrokerError::UnknownTopicOrPartition),
            })
            .collect()
    }

    /// Only small reads of stored v2 batches stay on the runtime; large ones (counted over
    /// all partitions, capped by the response limit) and all down-conversions do not.
    #[test]
    fn large_reads_and_conversions_leave_the_runtime() {
        assert!(reads_inline(&wanting(&[32 * 1024, 32 * 1024]), RESPONSE_BYTES_MAX, 11));
        assert!(!reads_inline(&wanting(&[32 * 1024, 32 * 1024 + 1]), RESPONSE_BYTES_MAX, 11));
        assert!(!reads_inline(&wanting(&[1 << 20]), RESPONSE_BYTES_MAX, 4));
        assert!(reads_inline(&wanting(&[1 << 20, usize::MAX]), 1024, 4));
        assert!(!reads_inline(&wanting(&[1024]), RESPONSE_BYTES_MAX, 3));
        assert!(!reads_inline(&wanting(&[1024]), RESPONSE_BYTES_MAX, 0));
    }

    /// KIP-74: the first partition with data may take its first batch whole; every later
    /// one stays within its own limit and what is left of the response's, and gets nothing
    /// once the response is full. Before v3 (no response limit) every partition's first
    /// batch is whole until the broker's own cap.
    #[test]
    fn only_the_first_partition_with_data_may_exceed_the_limits() {
        assert_eq!(partition_limit(1000, 5000, 0, 12), (1000, FirstBatch::Whole));
        assert_eq!(partition_limit(1000, 500, 0, 12), (500, FirstBatch::Whole));
        assert_eq!(partition_limit(1000, 5000, 4500, 12), (500, FirstBatch::WithinLimit));
        assert_eq!(partition_limit(1000, 5000, 100, 3), (1000, FirstBatch::WithinLimit));
        assert_eq!(partition_limit(1000, 5000, 6000, 12), (0, FirstBatch::WithinLimit));
        assert_eq!(partition_limit(1000, RESPONSE_BYTES_MAX, 100, 2), (1000, FirstBatch::Whole));
        assert_eq!(partition_limit(1000, RESPONSE_BYTES_MAX, RESPONSE_BYTES_MAX, 2), (0, FirstBatch::WithinLimit));
    }
}
