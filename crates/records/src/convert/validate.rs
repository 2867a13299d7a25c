//! What Kafka's `LogValidator` checks of a v2 batch a client produces, before anything of
//! it is written: the header's record count agrees with its offset range, and the records
//! themselves parse into exactly that many, with offset deltas 0..count-1 and nothing left over.
//! A compressed batch is decompressed for this (bounded by [`super::DECOMPRESSED_BYTES_MAX`]), as
//! Kafka does: its records are what NSQ channels and old consumers will read.
//!
//! Kafka answers a bad count, offset range or record structure with `INVALID_RECORD`, and a
//! CRC mismatch or undecodable compressed data with `CORRUPT_MESSAGE`; [`Refusal`] keeps the two
//! apart. Unlike Kafka, inner offset deltas other than 0..count-1 are refused rather than
//! rewritten: the log stores a producer's batch verbatim and never re-encodes it.

use super::{v2, ConvertError};

/// Why a produced batch is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The batch's count, offset range or records are inconsistent (Kafka `INVALID_RECORD`).
    #[error("invalid record batch at byte {at}: {reason}")]
    InvalidRecord { at: usize, reason: String },
    /// CRC mismatch, truncation, undecodable compression (`CORRUPT_MESSAGE`), or records that
    /// decompress beyond [`super::DECOMPRESSED_BYTES_MAX`] (`TooLarge`).
    #[error("record batch at byte {at}: {source}")]
    Records { at: usize, source: ConvertError },
}

/// Checks every v2 batch of one partition's produce; `Ok` only if all of them pass.
pub fn validate_produced(batches: &[u8]) -> Result<(), Refusal> {
    // A produce must carry at least one batch (the fuzzer found the empty set accepted).
    if batches.is_empty() {
        return Err(Refusal::Records { at: 0, source: super::corrupt("no record batch".to_string()) });
    }
    let mut rest = batches;
    while !rest.is_empty() {
        let at = batches.len() - rest.len();
        let bytes = match v2::next_complete_batch(&mut rest) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let source = super::corrupt(format!("truncated record batch ({} bytes)", rest.len()));
                return Err(Refusal::Records { at, source });
            }
            Err(source) => return Err(Refusal::Records { at, source }),
        };
        validate_batch(bytes).map_err(|e| e.at(at))?;
    }
    Ok(())
}

/// Kafka's check for a compacted topic: the index within its batch of every record without a
/// key (Kafka's `RecordError.batchIndex`), in order, for the Produce response's
/// `record_errors`. Call it after `validate_produced` accepted `batches`; a batch it cannot read
/// is skipped (that one already refused it).
pub fn keyless_records(batches: &[u8]) -> Vec<i32> {
    let mut keyless = Vec::new();
    let mut rest = batches;
    while let Ok(Some(bytes)) = v2::next_complete_batch(&mut rest) {
        let Ok(header) = v2::Header::parse_checked(bytes) else { continue };
        let Ok(payload) = v2::records_payload(bytes, &header) else { continue };
        let Ok(records) = v2::records(&payload, &header) else { continue };
        for (index, record) in records.enumerate() {
            if record.is_ok_and(|r| r.key.is_none()) {
                keyless.push(index as i32);
            }
        }
    }
    keyless
}

/// A refusal before its position in the request is known.
enum BatchFault {
    Invalid(String),
    Records(ConvertError),
}

impl BatchFault {
    fn at(self, at: usize) -> Refusal {
        match self {
            BatchFault::Invalid(reason) => Refusal::InvalidRecord { at, reason },
            BatchFault::Records(source) => Refusal::Records { at, source },
        }
    }
}

fn validate_batch(bytes: &[u8]) -> Result<(), BatchFault> {
    let header = v2::Header::parse_checked(bytes).map_err(BatchFault::Records)?;
    check_count(&header)?;
    if header.is_control() {
        return Err(BatchFault::Invalid("clients may not write control batches".into()));
    }
    let payload = v2::records_payload(bytes, &header).map_err(BatchFault::Records)?;
    // Bounded by `records_count`, which `records` has checked against the payload's size.
    let records = v2::records(&payload, &header).map_err(|e| BatchFault::Invalid(e.to_string()))?;
    for (index, record) in records.enumerate() {
        let record = record.map_err(|e| BatchFault::Invalid(e.to_string()))?;
        let delta = record.offset.wrapping_sub(header.base_offset);
        if delta != index as i64 {
            return Err(BatchFault::Invalid(format!("record {index} has offset delta {delta}, expected {index}")));
        }
    }
    Ok(())
}

/// Kafka's header checks: at least one record, and `last_offset_delta` = count - 1.
fn check_count(header: &v2::Header) -> Result<(), BatchFault> {
    let count = header.records_count;
    if count <= 0 {
        return Err(BatchFault::Invalid(format!("invalid reported count for record batch: {count}")));
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(count) {
        return Err(BatchFault::Invalid(format!(
            "last offset delta {} does not match the count of records {count}",
            header.last_offset_delta
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records without a key are named by their index within their batch.
    #[test]
    fn keyless_records_are_found() {
        use super::super::{encode_batch, new_record};
        use bytes::Bytes;
        let records: Vec<_> = (0..4)
            .map(|i| new_record(i, 0, (i % 2 == 0).then(|| Bytes::from_static(b"k")), Some(Bytes::new()), vec![]))
            .collect();
        let batch = encode_batch(&records, kafka_protocol::records::Compression::Lz4).unwrap();
        assert_eq!(keyless_records(&batch), [1, 3]);
    }
    use crate::convert::{encode_batch, new_record};
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    const RECORDS_COUNT_AT: usize = 57;
    const LAST_OFFSET_DELTA_AT: usize = 23;

    fn batch(values: &[&'static [u8]], compression: Compression) -> Vec<u8> {
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| new_record(i as i64, 1_700_000_000_000, None, Some(Bytes::from_static(v)), Vec::new()))
            .collect();
        encode_batch(&records, compression).unwrap()
    }

    fn reseal(batch: &mut [u8]) {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn set_count(batch: &mut [u8], count: i32, last_delta: i32) {
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        batch[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&last_delta.to_be_bytes());
        reseal(batch);
    }

    fn is_invalid(result: Result<(), Refusal>) -> bool {
        matches!(result, Err(Refusal::InvalidRecord { .. }))
    }

    // A well-formed batch, plain or compressed, passes.
    #[test]
    fn valid_batches_pass() {
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            validate_produced(&batch(&[b"a", b"bb", b"ccc"], compression)).unwrap();
        }
    }

    // A produce with no batch at all is refused, not accepted as nothing (found by the fuzzer).
    #[test]
    fn no_batch_is_refused() {
        assert!(matches!(validate_produced(&[]), Err(Refusal::Records { at: 0, .. })));
    }

    // A count that claims more records than the batch holds is INVALID_RECORD, plain or compressed.
    #[test]
    fn count_larger_than_records_is_invalid() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut b = batch(&[b"one"], compression);
            set_count(&mut b, 1000, 999);
            assert!(is_invalid(validate_produced(&b)), "{compression:?}");
        }
    }

    // Count 0, a negative count, and a last offset delta that disagrees with the count are refused.
    #[test]
    fn header_count_checks() {
        for (count, delta) in [(0, 0), (0, -1), (-3, 0), (1, 5), (2, 0)] {
            let mut b = batch(&[b"one"], Compression::None);
            set_count(&mut b, count, delta);
            assert!(is_invalid(validate_produced(&b)), "count {count} delta {delta}");
        }
    }

    // A count smaller than the records present leaves bytes over: refused.
    #[test]
    fn records_left_over_are_invalid() {
        let mut b = batch(&[b"one", b"two"], Compression::Gzip);
        set_count(&mut b, 1, 0);
        assert!(is_invalid(validate_produced(&b)));
    }

    // A record whose offset delta is not its index is refused (Kafka would rewrite; we store verbatim).
    #[test]
    fn wrong_offset_delta_is_invalid() {
        let mut b = batch(&[b"one", b"two"], Compression::None);
        // Record 0: length varint (1 byte), attributes, timestamp delta 0, offset delta at +3.
        let second = 61 + 1 + (b[61] as usize >> 1);
        assert_eq!(b[second + 3], 2, "record 1's offset delta is zigzag 1");
        b[second + 3] = 0;
        reseal(&mut b);
        assert!(is_invalid(validate_produced(&b)));
    }

    // A CRC mismatch stays CORRUPT_MESSAGE, not INVALID_RECORD.
    #[test]
    fn crc_mismatch_is_corrupt() {
        let mut b = batch(&[b"one"], Compression::None);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(validate_produced(&b), Err(Refusal::Records { source: ConvertError::Corrupt(_), .. })));
    }

    // Every batch of a produce is checked: a bad second batch refuses the whole partition's records.
    #[test]
    fn every_batch_is_checked() {
        let good = batch(&[b"one"], Compression::None);
        let mut bad = batch(&[b"two"], Compression::None);
        set_count(&mut bad, 0, 0);
        let both = [good.clone(), bad].concat();
        assert!(matches!(validate_produced(&both), Err(Refusal::InvalidRecord { at, .. }) if at == good.len()));
    }
}
