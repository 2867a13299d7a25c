//! Looking at a partition the way an operator does (the admin API's message browser and its
//! "publish one message" form): read a few records from an offset or a timestamp, list the
//! segments, append one record built by the broker. Protocol-agnostic; the HTTP layer only
//! renders what these return.

use crate::error::{BrokerError, BrokerResult};
use crate::partition::{AppendOutcome, Durability, Partition};
use crate::topic::Topic;
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice_records::convert::{encode_batch, first_record_at_or_after, new_record, read_v2_records, StoredRecord};
use sluice_records::partitioner::partition_for_key;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Most records one browse returns: a page of a table, not an export tool.
pub const BROWSE_RECORDS_MAX: usize = 1000;
/// Bytes asked of the log per read while browsing (whole batches; the first is always whole).
const BROWSE_READ_BYTES: usize = 1 << 20;
/// Reads one browse may make: bounds the work when batches hold no records the browser shows
/// (control batches, unreadable batches) or records are large.
const BROWSE_READS_MAX: usize = 64;
/// Headers one produced message may carry.
pub const PRODUCE_HEADERS_MAX: usize = 64;

/// Where a browse starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowseFrom {
    /// This offset; one below the log start begins at the log start (retention removed the rest).
    Offset(i64),
    /// The first record whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

/// Records read by `browse`, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browsed {
    pub records: Vec<StoredRecord>,
    pub next_offset: i64,
}

/// Reads at most `limit` (capped at `BROWSE_RECORDS_MAX`) records of `partition` from `from`.
/// A batch whose records cannot be decoded is skipped (and logged); records of the batches
/// around it are still shown. An offset past the log end is `OffsetOutOfRange`.
pub fn browse(partition: &Partition, from: BrowseFrom, limit: usize) -> BrokerResult<Browsed> {
    let limit = limit.min(BROWSE_RECORDS_MAX);
    let mut cursor = start_offset(partition, from)?;
    let mut records = Vec::new();
    for _ in 0..BROWSE_READS_MAX {
        if records.len() >= limit || cursor >= partition.log_end_offset() {
            break;
        }
        let read = partition.read(cursor, BROWSE_READ_BYTES)?;
        let before = cursor;
        for batch in read_v2_records(&read.bytes, cursor) {
            let batch = batch.map_err(|e| BrokerError::CorruptMessage(format!("at offset {cursor}: {e}")))?;
            match batch.records {
                Ok(batch_records) => {
                    for record in batch_records {
                        if records.len() >= limit {
                            return Ok(Browsed { records, next_offset: cursor });
                        }
                        cursor = record.offset + 1;
                        records.push(record);
                    }
                }
                Err(e) => tracing::warn!(
                    topic = %partition.topic, partition = partition.index, base_offset = batch.base_offset,
                    error = %e, "browser skipped an unreadable batch"
                ),
            }
            cursor = cursor.max(batch.last_offset + 1);
        }
        if cursor == before {
            break;
        }
    }
    Ok(Browsed { records, next_offset: cursor })
}

/// The offset a browse begins at.
fn start_offset(partition: &Partition, from: BrowseFrom) -> BrokerResult<i64> {
    let (log_start, log_end) = (partition.log_start_offset(), partition.log_end_offset());
    match from {
        BrowseFrom::Offset(offset) if offset > log_end => {
            Err(BrokerError::OffsetOutOfRange { offset, log_start, log_end })
        }
        BrowseFrom::Offset(offset) => Ok(offset.max(log_start)),
        BrowseFrom::Timestamp(timestamp_ms) => offset_at_or_after(partition, timestamp_ms),
    }
}

/// The offset of the first record whose timestamp is at or after `timestamp_ms`, or the log
/// end when there is none (Kafka's ListOffsets by timestamp, and the group offset reset).
pub fn offset_at_or_after(partition: &Partition, timestamp_ms: i64) -> BrokerResult<i64> {
    let Some(hit) = partition.find_by_timestamp(timestamp_ms)? else { return Ok(partition.log_end_offset()) };
    let found = first_record_at_or_after(&hit.batch, timestamp_ms)
        .map_err(|e| BrokerError::CorruptMessage(format!("batch at offset {}: {e}", hit.header.base_offset)))?;
    Ok(found.map(|(offset, _)| offset).unwrap_or(hit.header.last_offset() + 1).max(partition.log_start_offset()))
}

/// One segment of a partition as the admin API lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    pub size_bytes: u64,
}

/// The partition's segments, oldest first.
pub fn segments(partition: &Partition) -> Vec<SegmentInfo> {
    partition
        .log()
        .segment_sizes()
        .into_iter()
        .map(|(base_offset, size_bytes)| SegmentInfo { base_offset, size_bytes })
        .collect()
}

/// A message an operator publishes by hand.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: i64,
}

/// Spreads keyless hand-published messages over partitions, as Kafka's producers do.
static NEXT_KEYLESS_PARTITION: AtomicU32 = AtomicU32::new(0);

/// The partition a message goes to: the one asked for, else the one Kafka's default
/// partitioner picks for its key (murmur2), else the next in turn.
pub fn choose_partition(topic: &Topic, asked: Option<i32>, key: Option<&[u8]>) -> BrokerResult<Arc<Partition>> {
    let count = topic.partition_count();
    if count == 0 {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let index = match (asked, key) {
        (Some(index), _) => index,
        (None, Some(key)) => partition_for_key(key, count) as i32,
        (None, None) => (NEXT_KEYLESS_PARTITION.fetch_add(1, Ordering::Relaxed) % count) as i32,
    };
    topic.partition(index).ok_or(BrokerError::UnknownTopicOrPartition)
}

/// Appends `message` as a one-record batch, acknowledged as Kafka's acks=all would be.
pub async fn produce(partition: &Arc<Partition>, message: NewMessage) -> BrokerResult<AppendOutcome> {
    if message.headers.len() > PRODUCE_HEADERS_MAX {
        return Err(BrokerError::CorruptMessage(format!("at most {PRODUCE_HEADERS_MAX} headers")));
    }
    let mut record = new_record(0, message.timestamp_ms, message.key, message.value, Vec::new());
    record.headers =
        message.headers.into_iter().map(|(k, v)| (StrBytes::from_string(k), v)).collect::<indexmap::IndexMap<_, _>>();
    let batch = encode_batch(&[record], Compression::None)
        .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e}")))?;
    partition.append(batch, Durability::Committed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_log::LogConfig;

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        Arc::new(Partition::open(dir, Arc::from("t"), 0, LogConfig::default()).expect("open"))
    }

    fn message(value: &str, timestamp_ms: i64) -> NewMessage {
        NewMessage { value: Some(Bytes::from(value.to_string())), timestamp_ms, ..NewMessage::default() }
    }

    #[tokio::test]
    async fn browses_pages_by_offset_and_timestamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = partition(dir.path());
        for i in 0..5 {
            let mut m = message(&format!("v{i}"), 1000 + i * 10);
            m.key = Some(Bytes::from_static(b"k"));
            m.headers = vec![("h".into(), Some(Bytes::from_static(b"x"))), ("none".into(), None)];
            assert_eq!(produce(&p, m).await.expect("append").base_offset, i);
        }
        let page = browse(&p, BrowseFrom::Offset(1), 2).expect("browse");
        assert_eq!(page.records.iter().map(|r| r.offset).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(page.next_offset, 3);
        assert_eq!(page.records[0].value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(page.records[0].headers[1], ("none".to_string(), None));
        let rest = browse(&p, BrowseFrom::Offset(page.next_offset), 100).expect("browse");
        assert_eq!(rest.records.len(), 2);
        assert_eq!(rest.next_offset, 5);
        let by_time = browse(&p, BrowseFrom::Timestamp(1025), 10).expect("browse");
        assert_eq!(by_time.records.first().map(|r| r.offset), Some(3));
        let late = browse(&p, BrowseFrom::Timestamp(9999), 10).expect("browse");
        assert!(late.records.is_empty() && late.next_offset == 5);
        assert!(matches!(browse(&p, BrowseFrom::Offset(6), 1), Err(BrokerError::OffsetOutOfRange { .. })));
        assert_eq!(browse(&p, BrowseFrom::Offset(-5), 1).expect("browse").records[0].offset, 0);
        assert_eq!(segments(&p).len(), 1);
        assert_eq!(segments(&p)[0].size_bytes, p.size_bytes());
    }
}
