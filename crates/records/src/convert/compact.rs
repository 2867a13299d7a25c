//! Record-level compaction of one stored v2 batch (Kafka's `LogCleaner` rewrite): the records
//! a cleaner keeps are copied verbatim into a new batch with the same base offset, last offset
//! delta, timestamps, producer fields and attributes, so offsets, the next offset and
//! idempotent producer state stay what they were. Only `batch_length`, `records_count` and the
//! CRC change (and the max timestamp, to the kept records' largest); a compressed batch is decompressed (bounded by [`super::DECOMPRESSED_BYTES_MAX`])
//! and its kept records recompressed with the same codec.
//!
//! Control batches (transaction markers) and transactional batches are never rewritten: Sluice
//! does not track aborted transactions, so their records are neither removed nor counted as a
//! key's latest value.

use super::{codec, corrupt, v2, ConvertError};

/// What a compactor sees of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedRecord<'a> {
    pub offset: i64,
    /// None for a record without a key (never produced into a compacted topic, but a topic
    /// may have been switched to compaction after keyless records were written).
    pub key: Option<&'a [u8]>,
    /// A null value: the key's deletion marker.
    pub tombstone: bool,
}

/// The outcome of [`retain_records`].
#[derive(Debug, PartialEq, Eq)]
pub enum Retained {
    /// Every record is kept: the stored batch stays as it is.
    Whole,
    /// The batch rewritten with the kept records (possibly none: an empty batch that still
    /// spans the original offsets).
    Rewritten { batch: Vec<u8>, records: usize },
}

const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const BATCH_HEADER_LEN: usize = 61;
const LOG_OVERHEAD: usize = 12;
const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Calls `visit` for each record of one complete stored batch, in order (none for a control
/// or transactional batch). The CRC is checked first.
pub fn visit_records(batch: &[u8], visit: &mut dyn FnMut(KeyedRecord<'_>)) -> Result<(), ConvertError> {
    let header = v2::Header::parse_checked(batch)?;
    if !compactable(&header) {
        return Ok(());
    }
    let payload = v2::records_payload(batch, &header)?;
    for record in v2::records(&payload, &header)? {
        let record = record?;
        visit(KeyedRecord { offset: record.offset, key: record.key, tombstone: record.value.is_none() });
    }
    Ok(())
}

/// Rewrites one complete stored batch keeping the records `keep` accepts.
pub fn retain_records(batch: &[u8], keep: &mut dyn FnMut(KeyedRecord<'_>) -> bool) -> Result<Retained, ConvertError> {
    let header = v2::Header::parse_checked(batch)?;
    if !compactable(&header) {
        return Ok(Retained::Whole);
    }
    let payload = v2::records_payload(batch, &header)?;
    let mut kept = Vec::with_capacity(payload.len());
    let (mut kept_count, mut total) = (0usize, 0usize);
    let mut kept_max_timestamp = i64::MIN;
    let mut records = v2::records(&payload, &header)?;
    loop {
        let start = payload.len() - records.remaining_len();
        let Some(record) = records.next() else { break };
        let record = record?;
        total += 1;
        let end = payload.len() - records.remaining_len();
        if keep(KeyedRecord { offset: record.offset, key: record.key, tombstone: record.value.is_none() }) {
            kept.extend_from_slice(&payload[start..end]);
            kept_count += 1;
            kept_max_timestamp = kept_max_timestamp.max(record.timestamp);
        }
    }
    if kept_count == total {
        return Ok(Retained::Whole);
    }
    let xerial = batch.get(BATCH_HEADER_LEN..).is_some_and(codec::is_xerial_snappy);
    let records_bytes = match kept_count {
        0 => Vec::new(),
        _ => codec::compress(header.compression()?, &kept, xerial)?,
    };
    let mut rewritten = rebuild(batch, &records_bytes, kept_count)?;
    if kept_count > 0 && !header.is_log_append_time() {
        // As Kafka's cleaner: the batch's max timestamp is its kept records' (ListOffsets by
        // time and the time index then point at a record that is still there).
        rewritten[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&kept_max_timestamp.to_be_bytes());
    }
    if kept_count == 0 {
        // As Kafka's empty batch header: no codec, since there is nothing to decompress.
        let attributes = header.attributes & !ATTR_COMPRESSION_MASK;
        rewritten[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    let crc = crc32c::crc32c(&rewritten[ATTRIBUTES_AT..]);
    rewritten[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Retained::Rewritten { batch: rewritten, records: kept_count })
}

fn compactable(header: &v2::Header) -> bool {
    header.attributes & (ATTR_CONTROL | ATTR_TRANSACTIONAL) == 0
}

/// The original header with the new length, count and CRC, followed by `records_bytes`.
fn rebuild(original: &[u8], records_bytes: &[u8], count: usize) -> Result<Vec<u8>, ConvertError> {
    let too_large = || corrupt("compacted batch does not fit a batch length");
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records_bytes.len());
    out.extend_from_slice(original.get(..BATCH_HEADER_LEN).ok_or_else(|| corrupt("truncated batch header"))?);
    out.extend_from_slice(records_bytes);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| too_large())?;
    let count = i32::try_from(count).map_err(|_| too_large())?;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{encode_batch, new_record, read_v2_records};
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    fn batch(compression: Compression, base_offset: i64) -> Vec<u8> {
        let records: Vec<_> = (0..6)
            .map(|i| {
                let key = Some(Bytes::from(format!("k{}", i % 3)));
                let value = (i != 4).then(|| Bytes::from(format!("v{i}")));
                new_record(i, 1000 + i, key, value, vec![("h", Some(Bytes::from_static(b"x")))])
            })
            .collect();
        let mut b = encode_batch(&records, compression).unwrap();
        b[..8].copy_from_slice(&base_offset.to_be_bytes());
        b
    }

    /// For every codec: the kept records read back with their offsets, keys, values and
    /// timestamps; the batch keeps its base offset and last offset delta, and its CRC is valid.
    #[test]
    fn keeps_chosen_records_for_every_codec() {
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let original = batch(compression, 100);
            let mut seen = Vec::new();
            visit_records(&original, &mut |r| seen.push((r.offset, r.key.map(<[u8]>::to_vec), r.tombstone))).unwrap();
            assert_eq!(seen.len(), 6);
            assert!(seen[4].2, "record 4 is a tombstone");
            let Retained::Rewritten { batch: cleaned, records } =
                retain_records(&original, &mut |r| r.offset >= 103).unwrap()
            else {
                panic!("records were dropped")
            };
            assert_eq!(records, 3);
            assert_eq!(&cleaned[..8], &original[..8], "base offset");
            assert_eq!(&cleaned[21..35], &original[21..35], "attributes, delta, base timestamp");
            assert_eq!(&cleaned[43..57], &original[43..57], "producer fields");
            assert_eq!(i64::from_be_bytes(cleaned[35..43].try_into().unwrap()), 1005, "kept records' max timestamp");
            let read: Vec<_> = read_v2_records(&cleaned, 0).collect();
            let records = read[0].as_ref().unwrap().records.as_ref().unwrap();
            let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [103, 104, 105], "{compression:?}");
            assert_eq!(records[0].value.as_deref(), Some(&b"v3"[..]));
            assert_eq!(records[1].value, None);
            assert_eq!(records[2].timestamp, 1005);
            assert_eq!(read[0].as_ref().unwrap().last_offset, 105);
        }
    }

    /// Keeping everything leaves the batch alone; keeping nothing leaves an empty batch that
    /// still spans the same offsets.
    #[test]
    fn whole_and_empty() {
        let original = batch(Compression::Gzip, 7);
        assert_eq!(retain_records(&original, &mut |_| true).unwrap(), Retained::Whole);
        let Retained::Rewritten { batch: empty, records: 0 } = retain_records(&original, &mut |_| false).unwrap()
        else {
            panic!("expected an empty batch")
        };
        assert_eq!(empty.len(), BATCH_HEADER_LEN);
        let read: Vec<_> = read_v2_records(&empty, 0).collect();
        let read = read[0].as_ref().unwrap();
        assert_eq!((read.base_offset, read.last_offset), (7, 12));
        assert!(read.records.as_ref().unwrap().is_empty());
    }

    /// A damaged batch is an error, never a panic.
    #[test]
    fn corrupt_batch_is_an_error() {
        let mut b = batch(Compression::None, 0);
        b[70] ^= 0xff;
        assert!(retain_records(&b, &mut |_| true).is_err());
        assert!(visit_records(&b[..30], &mut |_| {}).is_err());
    }
}
