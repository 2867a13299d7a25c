//! Records ↔ NSQ messages. A record's value is the NSQ body; an NSQ `PUB` becomes one v2
//! batch of records, `DPUB` marks its record with the header `nsq-defer-until` (epoch ms).

use crate::error::{BrokerError, BrokerResult};
use bytes::Bytes;
use kafka_protocol::records::{Compression, Record};
use sluice_records::convert::{encode_batch, new_record, read_v2_records, StoredRecord, DECOMPRESSED_BYTES_MAX};

/// Header on a DPUB record: when it may first be delivered, milliseconds since the epoch.
pub const DEFER_HEADER: &str = "nsq-defer-until";
/// Messages in one MPUB (bounds the batch built for it; nsqd bounds MPUB by body size only).
pub const MESSAGES_PER_BATCH_MAX: usize = 100_000;
/// Body bytes one `decode` returns before it stops at a batch boundary. Each batch decompresses
/// to at most `DECOMPRESSED_BYTES_MAX`, but a 1 MiB read can hold hundreds of tiny compressed
/// batches; the rest is read on the next call, from `next_offset`.
pub const DECODED_BYTES_MAX: usize = DECOMPRESSED_BYTES_MAX;

/// A record's headers as a channel keeps them: shared by the ready queue and deliveries, and
/// `None` for a record with none (NSQ's own), so NSQ messages pay nothing for them.
pub type Headers = Option<std::sync::Arc<[(String, Option<Bytes>)]>>;

/// One record as a channel sees it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub body: Bytes,
    pub defer_until_ms: Option<i64>,
    /// For consumers that read more than the body (MQTT shared subscriptions: the MQTT topic,
    /// QoS and user properties).
    pub headers: Headers,
}

/// What a run of whole batches holds from `from` on, and the offset after the last batch
/// (so a caller advances past control batches and damaged batches too).
pub struct Decoded {
    pub messages: Vec<StoredMessage>,
    pub next_offset: i64,
}

/// Decodes concatenated v2 batches (a partial trailing batch is left for the next read). A
/// batch that cannot be read — bad CRC, malformed records, decompressing past
/// [`DECOMPRESSED_BYTES_MAX`] — is skipped (logged), so one bad batch cannot stall a channel
/// forever. Stops after the batch that brings the bodies to [`DECODED_BYTES_MAX`].
pub fn decode(bytes: &[u8], from: i64) -> Decoded {
    let mut messages = Vec::new();
    let mut next_offset = from;
    let mut body_bytes = 0usize;
    let mut batches = read_v2_records(bytes, from);
    while body_bytes < DECODED_BYTES_MAX {
        let Some(batch) = batches.next() else { break };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                // Nothing after a broken length can be located; the next read starts here again.
                tracing::warn!(next_offset, error = %e, "stopping at unreadable batch framing");
                break;
            }
        };
        next_offset = next_offset.max(batch.last_offset.saturating_add(1));
        match batch.records {
            Ok(records) => {
                body_bytes =
                    records.iter().filter_map(|r| r.value.as_ref()).fold(body_bytes, |n, v| n.saturating_add(v.len()));
                messages.extend(records.into_iter().map(message));
            }
            Err(e) => tracing::warn!(base_offset = batch.base_offset, error = %e, "skipping undecodable batch"),
        }
    }
    Decoded { messages, next_offset }
}

fn message(record: StoredRecord) -> StoredMessage {
    StoredMessage {
        offset: record.offset,
        timestamp_ms: record.timestamp,
        defer_until_ms: defer_header(&record),
        headers: (!record.headers.is_empty()).then(|| record.headers.into()),
        body: record.value.unwrap_or_default(),
    }
}

fn defer_header(record: &StoredRecord) -> Option<i64> {
    let (_, value) = record.headers.iter().find(|(k, _)| k == DEFER_HEADER)?;
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
            let defer = defer_until_ms.map(|due| (DEFER_HEADER, Some(Bytes::from(due.to_string()))));
            new_record(i as i64, timestamp_ms, None, Some(body.clone()), defer.into_iter().collect())
        })
        .collect();
    encode_batch(&records, Compression::None)
        .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::READ_BYTES_MAX;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
        NO_PRODUCER_ID, NO_SEQUENCE,
    };

    #[test]
    fn bodies_round_trip_with_defer_header() {
        let bodies = vec![Bytes::from_static(b"one"), Bytes::from_static(b""), Bytes::from_static(b"three")];
        let batch = encode(&bodies, 1_000, Some(5_000)).expect("encode");
        let decoded = decode(&batch, 1);
        assert_eq!(decoded.next_offset, 3);
        let got: Vec<_> = decoded.messages.iter().map(|m| (m.offset, m.body.clone(), m.defer_until_ms)).collect();
        assert_eq!(got, vec![(1, bodies[1].clone(), Some(5_000)), (2, bodies[2].clone(), Some(5_000))]);
    }

    fn kafka_record(offset: i64, body: &'static [u8], headers: &[(&'static str, Option<&'static [u8]>)]) -> Record {
        Record {
            transactional: false,
            control: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: NO_SEQUENCE,
            timestamp: 2_000 + offset,
            key: None,
            value: Some(Bytes::from_static(body)),
            headers: headers.iter().map(|&(k, v)| (StrBytes::from_static_str(k), v.map(Bytes::from_static))).collect(),
        }
    }

    fn kafka_batch(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        RecordBatchEncoder::encode(&mut out, records, &RecordEncodeOptions { version: 2, compression })
            .expect("encode");
        out
    }

    #[test]
    fn null_header_values_and_gzip_batches_decode() {
        // Proves a Kafka producer's batch with a null header value, and a gzip batch, reach NSQ
        // (kafka-protocol's decoder rejected the first, so its messages were never delivered).
        let mut log = kafka_batch(
            &[kafka_record(0, b"plain", &[("trace", None), (DEFER_HEADER, Some(b"9000"))])],
            Compression::None,
        );
        log.extend(kafka_batch(
            &[kafka_record(1, b"zipped-1", &[]), kafka_record(2, b"zipped-2", &[("trace", None)])],
            Compression::Gzip,
        ));
        let decoded = decode(&log, 0);
        assert_eq!(decoded.next_offset, 3);
        let got: Vec<_> =
            decoded.messages.iter().map(|m| (m.offset, m.timestamp_ms, m.body.clone(), m.defer_until_ms)).collect();
        assert_eq!(
            got,
            vec![
                (0, 2_000, Bytes::from_static(b"plain"), Some(9_000)),
                (1, 2_001, Bytes::from_static(b"zipped-1"), None),
                (2, 2_002, Bytes::from_static(b"zipped-2"), None),
            ]
        );
    }

    #[test]
    fn decode_stops_at_a_batch_boundary_past_decoded_bytes_max() {
        // Proves tiny gzip batches that expand a lot cannot make one decode hold unbounded
        // memory: it stops after the batch reaching the cap, and next_offset resumes there.
        let body = Bytes::from(vec![0u8; DECODED_BYTES_MAX / 2 + 1]);
        let mut log = Vec::new();
        for offset in 0..3 {
            let mut record = kafka_record(offset, b"", &[]);
            record.value = Some(body.clone());
            log.extend(kafka_batch(&[record], Compression::Gzip));
        }
        assert!(log.len() < READ_BYTES_MAX);
        let decoded = decode(&log, 0);
        assert_eq!(decoded.next_offset, 2);
        assert_eq!(decoded.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(decode(&log, 2).messages.len(), 1);
    }

    #[test]
    fn bad_batch_is_skipped_and_passed() {
        // Proves a batch with a bad CRC is skipped while next_offset moves past it and the
        // batch after it is still delivered.
        let mut log = kafka_batch(&[kafka_record(0, b"bad", &[])], Compression::None);
        let last = log.len() - 1;
        log[last] ^= 1;
        log.extend(kafka_batch(&[kafka_record(1, b"good", &[])], Compression::Gzip));
        let decoded = decode(&log, 0);
        assert_eq!(decoded.next_offset, 2);
        let got: Vec<_> = decoded.messages.iter().map(|m| (m.offset, m.body.clone())).collect();
        assert_eq!(got, vec![(1, Bytes::from_static(b"good"))]);
    }
}
