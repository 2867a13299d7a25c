//! Records ↔ NSQ messages. A record's value is the NSQ body; an NSQ `PUB` becomes one v2
//! batch of records, `DPUB` marks its record with the header `nsq-defer-until` (epoch ms).

use crate::error::{BrokerError, BrokerResult};
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use sluice_log::batch::{BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

/// Header on a DPUB record: when it may first be delivered, milliseconds since the epoch.
pub const DEFER_HEADER: &str = "nsq-defer-until";
/// Messages in one MPUB (bounds the batch built for it; nsqd bounds MPUB by body size only).
pub const MESSAGES_PER_BATCH_MAX: usize = 100_000;

/// One record as a channel sees it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub body: Bytes,
    pub defer_until_ms: Option<i64>,
}

/// What a run of whole batches holds from `from` on, and the offset after the last batch
/// (so a caller advances past control batches and damaged batches too).
pub struct Decoded {
    pub messages: Vec<StoredMessage>,
    pub next_offset: i64,
}

/// Decodes concatenated v2 batches. A batch that cannot be decoded is skipped (logged), so
/// one bad batch cannot stall a channel forever.
pub fn decode(bytes: &[u8], from: i64) -> Decoded {
    let mut messages = Vec::new();
    let mut next_offset = from;
    let mut at = 0;
    while at + LOG_OVERHEAD <= bytes.len() {
        let Ok(header) = BatchHeader::parse(&bytes[at..]) else { break };
        let len = header.total_len();
        if len < BATCH_HEADER_LEN || at + len > bytes.len() {
            break;
        }
        let batch = &bytes[at..at + len];
        at += len;
        next_offset = next_offset.max(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < from {
            continue;
        }
        let mut buf = Bytes::copy_from_slice(batch);
        match RecordBatchDecoder::decode(&mut buf) {
            Ok(set) => {
                for record in set.records {
                    if record.offset < from || record.control {
                        continue;
                    }
                    messages.push(StoredMessage {
                        offset: record.offset,
                        timestamp_ms: record.timestamp,
                        defer_until_ms: defer_header(&record),
                        body: record.value.unwrap_or_default(),
                    });
                }
            }
            Err(e) => tracing::warn!(base_offset = header.base_offset, error = %e, "skipping undecodable batch"),
        }
    }
    Decoded { messages, next_offset }
}

fn defer_header(record: &Record) -> Option<i64> {
    let (_, value) = record.headers.iter().find(|(k, _)| k.as_str() == DEFER_HEADER)?;
    let value = value.as_ref()?;
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Encodes NSQ bodies as one uncompressed v2 batch (offsets 0..n-1; the log assigns the base).
pub fn encode(bodies: &[Bytes], timestamp_ms: i64, defer_until_ms: Option<i64>) -> BrokerResult<Vec<u8>> {
    if bodies.is_empty() || bodies.len() > MESSAGES_PER_BATCH_MAX {
        return Err(BrokerError::CorruptMessage(format!("a batch holds 1 to {MESSAGES_PER_BATCH_MAX} messages")));
    }
    let records: Vec<Record> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut headers = indexmap::IndexMap::new();
            if let Some(due) = defer_until_ms {
                headers.insert(StrBytes::from_static_str(DEFER_HEADER), Some(Bytes::from(due.to_string())));
            }
            Record {
                transactional: false,
                control: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Constant `offset - sequence` keeps the encoder to one batch (base sequence -1).
                sequence: (i as i32).wrapping_add(NO_SEQUENCE),
                timestamp: timestamp_ms,
                key: None,
                value: Some(body.clone()),
                headers,
            }
        })
        .collect();
    let mut out = Vec::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e:#}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_with_defer_header() {
        let bodies = vec![Bytes::from_static(b"one"), Bytes::from_static(b""), Bytes::from_static(b"three")];
        let batch = encode(&bodies, 1_000, Some(5_000)).expect("encode");
        let decoded = decode(&batch, 1);
        assert_eq!(decoded.next_offset, 3);
        let got: Vec<_> = decoded.messages.iter().map(|m| (m.offset, m.body.clone(), m.defer_until_ms)).collect();
        assert_eq!(got, vec![(1, bodies[1].clone(), Some(5_000)), (2, bodies[2].clone(), Some(5_000))]);
    }
}
