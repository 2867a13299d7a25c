//! Conversion between legacy Kafka message sets (magic 0 and 1) and RecordBatch v2.
//!
//! The log stores only RecordBatch v2. Old clients (Produce v0–v2, Fetch v0–v3) speak the
//! legacy message-set formats, so the Kafka listener up-converts what they produce and
//! down-converts what they fetch, as Kafka itself did. NSQ channels read stored batches record
//! by record with [`read_v2_records`]. Everything here is a pure function over byte slices: no
//! I/O, no broker state.
//!
//! Legacy message-set entry (big-endian), Kafka's `LegacyRecord`:
//!
//! | offset | field      | type | note                                             |
//! |-------:|------------|------|--------------------------------------------------|
//! |      0 | offset     | i64  |                                                  |
//! |      8 | size       | i32  | bytes of the message that follows                |
//! |     12 | crc        | u32  | CRC-32 (IEEE) of the rest of the message         |
//! |     16 | magic      | i8   | 0 or 1                                           |
//! |     17 | attributes | i8   | bits 0-2 codec, bit 3 LogAppendTime (magic 1)    |
//! |     18 | timestamp  | i64  | magic 1 only                                     |
//! |      … | key        | i32 length (-1 null) + bytes                            |
//! |      … | value      | i32 length (-1 null) + bytes                            |
//!
//! A compressed "wrapper" message holds a whole inner message set, compressed, as its value.
//! Inner offsets are absolute in magic 0 and relative in magic 1; both are ignored on
//! up-conversion because the broker assigns offsets.
//!
//! What `kafka-protocol` 0.15.1 (`records.rs`) does and does not do, and so what is hand-written:
//! - Legacy decode checks each message's CRC-32, but for a compressed wrapper it parses the
//!   still-compressed value as if it were a message set (no decompression at all), rejects LZ4
//!   in magic 0, and knows nothing of xerial-framed snappy. Hand-written here.
//! - v2 decode reserves `record_count` records and `num_headers` headers straight from the wire
//!   (an allocation an attacker controls), decompresses without a bound, reads the timestamp
//!   delta as a varint instead of a varlong, and rejects null header values (length -1).
//!   Hand-written here.
//! - Legacy encode always writes offset 0 and never sets the LogAppendTime bit. Hand-written
//!   here, because down-conversion needs absolute offsets.
//! - v2 encode (with gzip/snappy/lz4 compression) is sound and is what up-conversion uses.
//!
//! Bounds: every length read from the wire is checked against the bytes actually present, and
//! decompressed output is capped at [`DECOMPRESSED_BYTES_MAX`] before it can grow further.

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, IEEE, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

/// Most bytes one decompression may produce (one legacy wrapper's inner set, one v2 batch's
/// records), and in total for one up-converted message set. Kafka's default `message.max.bytes`
/// is 1 MiB; this leaves room for highly compressible data while stopping decompression bombs.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// Down-converted output stops at a message boundary once it would exceed this; the consumer
/// simply fetches again from the next offset. One message always fits, because a message is
/// never larger than the decompressed records it came from.
pub const DOWNCONVERT_BYTES_MAX: usize = 128 << 20;

/// Most messages one up-converted set may hold. Each becomes a `Record` of about 200 bytes, so
/// this caps memory for a set of tiny messages; real producers batch far fewer.
pub const UPCONVERT_RECORDS_MAX: usize = 1 << 20;

const _: () = assert!(DOWNCONVERT_BYTES_MAX > DECOMPRESSED_BYTES_MAX + legacy::ENTRY_OVERHEAD_MAX);

mod compact;
mod validate;
pub use compact::{retain_records, visit_records, KeyedRecord, Retained};
pub use validate::{keyless_records, validate_produced, Refusal};

/// Why records could not be converted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The bytes are not a valid message set or batch: CRC mismatch, truncation, bad length,
    /// bad varint, undecodable compressed data. Kafka answers `CORRUPT_MESSAGE`.
    #[error("corrupt records: {0}")]
    Corrupt(String),
    /// Well-formed, but not something this conversion handles: unknown magic, a codec the
    /// format does not allow, timestamps the v2 encoder cannot represent.
    #[error("unsupported records: {0}")]
    Unsupported(String),
    /// Decompressed data would exceed [`DECOMPRESSED_BYTES_MAX`], or a message set holds more
    /// than [`UPCONVERT_RECORDS_MAX`] messages.
    #[error("records too large: {0}")]
    TooLarge(String),
    /// The message set holds no messages, so there is no batch to write.
    #[error("message set holds no messages")]
    Empty,
}

/// Magic byte of the first entry in a produce/fetch `records` blob (byte 16 for every format),
/// or None if too short.
pub fn records_magic(records: &[u8]) -> Option<i8> {
    records.get(legacy::MAGIC_AT).map(|&b| b as i8)
}

/// Converts a legacy message set (magic 0 or 1, possibly holding gzip/snappy/lz4 wrapper
/// messages) into ONE RecordBatch v2 with base offset 0 and offset deltas 0..n-1.
///
/// - Every message's CRC-32 is checked, inner messages of wrappers included.
/// - Timestamps: magic 1 keeps each message's CreateTime; LogAppendTime (on the message or on
///   its wrapper) and magic 0 get `now_ms`. The batch is written as CreateTime.
/// - Compression: the batch is re-compressed with the codec of the set's FIRST entry (none if
///   that entry is uncompressed); snappy is written raw (unframed), as the v2 format expects.
/// - Truncated or garbage input is an error, never a panic; nested compression is rejected.
pub fn upconvert_message_set(set: &[u8], now_ms: i64) -> Result<Vec<u8>, ConvertError> {
    // Said plainly rather than as the CRC mismatch a v2 batch would otherwise show as.
    if let Some(magic) = records_magic(set).filter(|&m| m > 1) {
        return Err(unsupported(format!("magic {magic} is not a legacy message set")));
    }
    let mut acc = Upconversion { records: Vec::new(), compression: None, decompressed_bytes: 0, now_ms };
    let mut rest = set;
    while !rest.is_empty() {
        let (_offset, bytes) = legacy::next_entry(&mut rest)?;
        let message = legacy::parse_message(bytes)?;
        acc.add(&message)?;
    }
    if acc.records.is_empty() {
        return Err(ConvertError::Empty);
    }
    encode_v2(&acc.records, acc.compression.unwrap_or(Compression::None))
}

/// Converts concatenated stored v2 batches into a legacy message set of `magic` (0 or 1),
/// uncompressed, each message at its absolute offset.
///
/// - Only records with offset >= `from_offset` are emitted; whole batches before it are
///   skipped without being decompressed.
/// - Control batches (transaction markers) are skipped; headers are dropped.
/// - Magic 1 keeps timestamps; a LogAppendTime batch gives every message its max timestamp
///   and the LogAppendTime attribute, as Kafka does.
/// - A partial trailing batch (as a size-limited log read returns) is dropped; a complete batch
///   with a bad CRC-32C or malformed records is an error.
/// - Output stops at a message boundary before it exceeds [`DOWNCONVERT_BYTES_MAX`].
pub fn downconvert_batches(batches: &[u8], magic: i8, from_offset: i64) -> Result<Vec<u8>, ConvertError> {
    downconvert_capped(batches, magic, from_offset, DOWNCONVERT_BYTES_MAX)
}

/// Given one v2 batch, the offset and timestamp of the first record whose timestamp >=
/// `target_ms` (for ListOffsets by timestamp). Bytes after the first batch are ignored.
/// Control batches are searched like any other, as Kafka does.
pub fn first_record_at_or_after(batch: &[u8], target_ms: i64) -> Result<Option<(i64, i64)>, ConvertError> {
    let mut rest = batch;
    let Some(bytes) = v2::next_complete_batch(&mut rest)? else {
        return Err(corrupt(format!("truncated record batch ({} bytes)", batch.len())));
    };
    let header = v2::Header::parse_checked(bytes)?;
    let payload = v2::records_payload(bytes, &header)?;
    for record in v2::records(&payload, &header)? {
        let record = record?;
        if record.timestamp >= target_ms {
            return Ok(Some((record.offset, record.timestamp)));
        }
    }
    Ok(None)
}

/// One record of a stored v2 batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    /// CreateTime of the record, or the batch's max timestamp for a LogAppendTime batch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// In record order; a key that is not UTF-8 (Kafka writes UTF-8) is converted lossily.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one complete stored batch yields to [`read_v2_records`]. The offsets come from the
/// batch header, so a reader advances past the batch even when its records are unreadable.
#[derive(Debug)]
pub struct BatchRecords {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Records with offset >= `from_offset` (none for a control batch), or why this batch
    /// could not be read: bad magic or CRC-32C, malformed records, a decompression bomb.
    pub records: Result<Vec<StoredRecord>, ConvertError>,
}

/// Reads the complete v2 batches in `batches` one at a time; a partial trailing batch (as a
/// size-limited log read returns) ends the iteration.
///
/// - Each batch's CRC-32C is checked and decompression is bounded by [`DECOMPRESSED_BYTES_MAX`];
///   a batch that fails either is reported in its own [`BatchRecords::records`], so one bad
///   batch does not hide the others.
/// - Control batches (transaction markers) yield no records; records before `from_offset` are
///   dropped (whole batches before it are not decompressed).
/// - An `Err` item means the framing itself is broken (a batch length out of range): nothing
///   after it can be located, and the iteration ends.
pub fn read_v2_records(
    batches: &[u8],
    from_offset: i64,
) -> impl Iterator<Item = Result<BatchRecords, ConvertError>> + '_ {
    let mut rest = batches;
    std::iter::from_fn(move || match v2::next_complete_batch(&mut rest) {
        Ok(Some(bytes)) => Some(read_batch(bytes, from_offset)),
        Ok(None) => None,
        Err(e) => {
            rest = &[];
            Some(Err(e))
        }
    })
}

/// One complete batch for [`read_v2_records`]: `Err` only if its header cannot be read at all.
fn read_batch(bytes: &[u8], from_offset: i64) -> Result<BatchRecords, ConvertError> {
    let header = v2::Header::parse(bytes)?;
    let (base_offset, last_offset) = (header.base_offset, header.last_offset());
    let records = v2::Header::parse_checked(bytes).and_then(|header| {
        if header.is_control() || header.last_offset() < from_offset {
            return Ok(Vec::new());
        }
        let payload = v2::records_payload(bytes, &header)?;
        let mut out = Vec::new();
        for record in v2::records(&payload, &header)? {
            let record = record?;
            if record.offset >= from_offset {
                out.push(record.to_stored());
            }
        }
        Ok(out)
    });
    Ok(BatchRecords { base_offset, last_offset, records })
}

fn corrupt(message: impl Into<String>) -> ConvertError {
    ConvertError::Corrupt(message.into())
}

fn unsupported(message: impl Into<String>) -> ConvertError {
    ConvertError::Unsupported(message.into())
}

/// Records gathered from a legacy message set on their way into one v2 batch.
struct Upconversion {
    records: Vec<Record>,
    /// Codec of the set's first entry; the output batch is compressed with it.
    compression: Option<Compression>,
    /// Decompressed bytes so far, bounded by `DECOMPRESSED_BYTES_MAX` across all wrappers.
    decompressed_bytes: usize,
    now_ms: i64,
}

impl Upconversion {
    fn add(&mut self, message: &legacy::Message<'_>) -> Result<(), ConvertError> {
        let compression = legacy::compression(message)?;
        self.compression.get_or_insert(compression);
        if compression == Compression::None {
            let timestamp = message.timestamp_or(self.now_ms);
            return self.push(timestamp, message, None);
        }
        self.add_wrapper(message, compression)
    }

    fn add_wrapper(&mut self, wrapper: &legacy::Message<'_>, compression: Compression) -> Result<(), ConvertError> {
        let compressed = wrapper.value.ok_or_else(|| corrupt("compressed wrapper message has a null value"))?;
        let budget = DECOMPRESSED_BYTES_MAX.saturating_sub(self.decompressed_bytes);
        // Kafka 0.8/0.9 wrote LZ4 frames with a wrong header checksum; Kafka ignores it in magic 0.
        let lz4_legacy_checksum = wrapper.magic == 0;
        let inner = Bytes::from(codec::decompress(compression, compressed, budget, lz4_legacy_checksum)?);
        self.decompressed_bytes = self.decompressed_bytes.saturating_add(inner.len());
        if inner.is_empty() {
            return Err(corrupt("compressed wrapper message holds no messages"));
        }
        let mut rest: &[u8] = &inner;
        while !rest.is_empty() {
            let (_offset, bytes) = legacy::next_entry(&mut rest)?;
            let message = legacy::parse_message(bytes)?;
            if message.magic != wrapper.magic {
                return Err(corrupt(format!(
                    "inner message magic {} differs from wrapper magic {}",
                    message.magic, wrapper.magic
                )));
            }
            if message.codec != 0 {
                return Err(corrupt("compressed message nested inside a compressed message"));
            }
            let timestamp = if wrapper.magic == 1 && wrapper.log_append_time {
                self.now_ms
            } else {
                message.timestamp_or(self.now_ms)
            };
            self.push(timestamp, &message, Some(&inner))?;
        }
        Ok(())
    }

    /// Adds one record; `source` is the decompressed buffer `message` borrows from, if any,
    /// so keys and values share it instead of being copied.
    fn push(
        &mut self,
        timestamp: i64,
        message: &legacy::Message<'_>,
        source: Option<&Bytes>,
    ) -> Result<(), ConvertError> {
        if self.records.len() >= UPCONVERT_RECORDS_MAX {
            return Err(ConvertError::TooLarge(format!(
                "message set holds more than {UPCONVERT_RECORDS_MAX} messages"
            )));
        }
        let share = |bytes: &[u8]| match source {
            Some(buffer) => buffer.slice_ref(bytes),
            None => Bytes::copy_from_slice(bytes),
        };
        let offset = self.records.len() as i64;
        self.records.push(new_record(offset, timestamp, message.key.map(share), message.value.map(share), Vec::new()));
        Ok(())
    }
}

/// A record of a batch the broker builds itself (up-conversion, NSQ publish): CreateTime,
/// no producer id, at `offset` within the batch (0..n-1; the log assigns the base).
pub fn new_record(
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(&'static str, Option<Bytes>)>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset,
        // The encoder starts a new batch whenever `offset - sequence` changes between
        // records; keeping it constant at 1 gives one batch whose base sequence is -1.
        sequence: (offset as i32).wrapping_add(NO_SEQUENCE),
        timestamp,
        key,
        value,
        headers: headers.into_iter().map(|(k, v)| (StrBytes::from_static_str(k), v)).collect(),
    }
}

/// Encodes records made by `new_record` (offsets 0..n-1) as exactly one v2 batch.
pub fn encode_batch(records: &[Record], compression: Compression) -> Result<Vec<u8>, ConvertError> {
    encode_v2(records, compression)
}

/// Encodes `records` (offsets 0..n-1) as one v2 batch with `kafka-protocol`'s encoder.
fn encode_v2(records: &[Record], compression: Compression) -> Result<Vec<u8>, ConvertError> {
    // The encoder stores timestamp deltas as i32 varints (the format allows varlongs).
    let min = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    if (max as i128) - (min as i128) > i32::MAX as i128 {
        return Err(unsupported(format!("timestamps {min} and {max} are too far apart for one batch")));
    }
    let options = RecordEncodeOptions { version: 2, compression };
    let mut out = Vec::new();
    RecordBatchEncoder::encode(&mut out, records, &options)
        .map_err(|e| unsupported(format!("cannot encode record batch: {e:#}")))?;
    // Post-condition: exactly one batch, holding every record.
    let mut rest: &[u8] = &out;
    let one = v2::next_complete_batch(&mut rest)?.map(v2::Header::parse);
    match one {
        Some(Ok(h)) if rest.is_empty() && h.records_count as usize == records.len() => Ok(out),
        _ => Err(unsupported("encoder did not produce exactly one batch")),
    }
}

fn downconvert_capped(
    batches: &[u8],
    magic: i8,
    from_offset: i64,
    output_bytes_max: usize,
) -> Result<Vec<u8>, ConvertError> {
    if magic != 0 && magic != 1 {
        return Err(unsupported(format!("cannot down-convert to magic {magic}")));
    }
    let mut out = Vec::new();
    let mut rest = batches;
    while let Some(bytes) = v2::next_complete_batch(&mut rest)? {
        let header = v2::Header::parse_checked(bytes)?;
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        let payload = v2::records_payload(bytes, &header)?;
        for record in v2::records(&payload, &header)? {
            let record = record?;
            if record.offset < from_offset {
                continue;
            }
            let message = legacy::Outgoing {
                magic,
                offset: record.offset,
                timestamp: record.timestamp,
                log_append_time: header.is_log_append_time(),
                key: record.key,
                value: record.value,
            };
            let size = message.entry_size()?;
            if !out.is_empty() && out.len().saturating_add(size) > output_bytes_max {
                return Ok(out);
            }
            message.write(&mut out)?;
        }
    }
    Ok(out)
}

/// A cursor over wire bytes: every read checks that the bytes are there.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ConvertError> {
        if self.bytes.len() < n {
            return Err(corrupt(format!("truncated {what}: need {n} bytes, have {}", self.bytes.len())));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ConvertError> {
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| corrupt(format!("truncated {what}")))
    }

    fn i8(&mut self, what: &str) -> Result<i8, ConvertError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32, ConvertError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &str) -> Result<i64, ConvertError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// Unsigned LEB128 of at most `bytes_max` bytes.
    fn unsigned_varint(&mut self, bytes_max: u32, what: &str) -> Result<u64, ConvertError> {
        let mut value = 0u64;
        for i in 0..bytes_max {
            let [b] = self.array::<1>(what)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(format!("{what}: varint longer than {bytes_max} bytes")))
    }

    /// Zigzag varint as Kafka's `ByteUtils.readVarint` (at most 5 bytes).
    fn varint(&mut self, what: &str) -> Result<i32, ConvertError> {
        let raw = self.unsigned_varint(5, what)? as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    /// Zigzag varlong as Kafka's `ByteUtils.readVarlong` (at most 10 bytes).
    fn varlong(&mut self, what: &str) -> Result<i64, ConvertError> {
        let raw = self.unsigned_varint(10, what)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// Bytes with a length prefix already read: -1 is null, other negatives are corrupt.
    fn sized(&mut self, len: i64, what: &str) -> Result<Option<&'a [u8]>, ConvertError> {
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(corrupt(format!("{what}: negative length {n}"))),
            n => {
                let n = usize::try_from(n).map_err(|_| corrupt(format!("{what}: length {n}")))?;
                self.take(n, what).map(Some)
            }
        }
    }
}

/// The legacy message-set formats, magic 0 and 1.
mod legacy {
    use super::{corrupt, unsupported, Compression, ConvertError, Cursor, IEEE};

    /// Offset and size precede every message.
    pub(super) const LOG_OVERHEAD: usize = 12;
    /// Magic's position in an entry (12 + crc); byte 16 in every Kafka format.
    pub(super) const MAGIC_AT: usize = LOG_OVERHEAD + 4;
    /// crc, magic, attributes, key length, value length.
    const MESSAGE_SIZE_MIN_V0: usize = 4 + 1 + 1 + 4 + 4;
    /// Magic 1 adds an i64 timestamp.
    const MESSAGE_SIZE_MIN_V1: usize = MESSAGE_SIZE_MIN_V0 + 8;
    /// Largest fixed part of an entry: the writer's size bound adds key and value to it.
    pub(super) const ENTRY_OVERHEAD_MAX: usize = LOG_OVERHEAD + MESSAGE_SIZE_MIN_V1;
    const ATTR_CODEC_MASK: i8 = 0x07;
    const ATTR_LOG_APPEND_TIME: i8 = 0x08;

    const _: () = assert!(MAGIC_AT == 16);

    /// One parsed (CRC-checked) legacy message, borrowing its key and value.
    pub(super) struct Message<'a> {
        pub(super) magic: i8,
        pub(super) codec: i8,
        pub(super) log_append_time: bool,
        /// None in magic 0.
        pub(super) timestamp: Option<i64>,
        pub(super) key: Option<&'a [u8]>,
        pub(super) value: Option<&'a [u8]>,
    }

    impl Message<'_> {
        /// The message's own CreateTime, or `now_ms` when it has none or asks for LogAppendTime.
        pub(super) fn timestamp_or(&self, now_ms: i64) -> i64 {
            match self.timestamp {
                Some(ts) if !self.log_append_time => ts,
                _ => now_ms,
            }
        }
    }

    /// Splits the next entry off `rest`: its offset and its message bytes. A partial entry is
    /// an error: up-conversion serves produce requests, where a truncated set is corrupt.
    pub(super) fn next_entry<'a>(rest: &mut &'a [u8]) -> Result<(i64, &'a [u8]), ConvertError> {
        let mut cursor = Cursor { bytes: rest };
        let offset = cursor.i64("message offset")?;
        let size = cursor.i32("message size")?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&n| n >= MESSAGE_SIZE_MIN_V0)
            .ok_or_else(|| corrupt(format!("message size {size} is out of range")))?;
        let message = cursor.take(size, "message")?;
        *rest = cursor.bytes;
        Ok((offset, message))
    }

    /// Checks the CRC-32 of one message, then parses it; trailing bytes are corrupt.
    pub(super) fn parse_message(bytes: &[u8]) -> Result<Message<'_>, ConvertError> {
        let mut cursor = Cursor { bytes };
        let stored_crc = u32::from_be_bytes(cursor.array("message crc")?);
        let computed_crc = IEEE.checksum(cursor.bytes);
        if stored_crc != computed_crc {
            return Err(corrupt(format!(
                "message crc mismatch: stored {stored_crc:#010x}, computed {computed_crc:#010x}"
            )));
        }
        let magic = cursor.i8("message magic")?;
        if magic != 0 && magic != 1 {
            return Err(unsupported(format!("message magic {magic} in a message set")));
        }
        if magic == 1 && bytes.len() < MESSAGE_SIZE_MIN_V1 {
            return Err(corrupt(format!("magic 1 message of {} bytes", bytes.len())));
        }
        let attributes = cursor.i8("message attributes")?;
        let timestamp = if magic == 1 { Some(cursor.i64("message timestamp")?) } else { None };
        let key_len = cursor.i32("message key length")?;
        let key = cursor.sized(key_len.into(), "message key")?;
        let value_len = cursor.i32("message value length")?;
        let value = cursor.sized(value_len.into(), "message value")?;
        if !cursor.bytes.is_empty() {
            return Err(corrupt(format!("{} bytes after the message value", cursor.bytes.len())));
        }
        Ok(Message {
            magic,
            codec: attributes & ATTR_CODEC_MASK,
            log_append_time: magic == 1 && attributes & ATTR_LOG_APPEND_TIME != 0,
            timestamp,
            key,
            value,
        })
    }

    /// The codec a legacy message declares; zstd and codecs 5-7 do not exist before v2.
    pub(super) fn compression(message: &Message<'_>) -> Result<Compression, ConvertError> {
        match message.codec {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            other => Err(unsupported(format!("compression codec {other} in a magic {} message", message.magic))),
        }
    }

    /// One uncompressed message to write.
    pub(super) struct Outgoing<'a> {
        pub(super) magic: i8,
        pub(super) offset: i64,
        pub(super) timestamp: i64,
        pub(super) log_append_time: bool,
        pub(super) key: Option<&'a [u8]>,
        pub(super) value: Option<&'a [u8]>,
    }

    impl Outgoing<'_> {
        fn message_size(&self) -> usize {
            let fixed = if self.magic == 1 { MESSAGE_SIZE_MIN_V1 } else { MESSAGE_SIZE_MIN_V0 };
            fixed + self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len)
        }

        /// Bytes `write` will append, or an error if the message cannot be represented.
        pub(super) fn entry_size(&self) -> Result<usize, ConvertError> {
            let size = self.message_size();
            i32::try_from(size).map_err(|_| unsupported(format!("message of {size} bytes")))?;
            Ok(LOG_OVERHEAD + size)
        }

        pub(super) fn write(&self, out: &mut Vec<u8>) -> Result<(), ConvertError> {
            let size = self.message_size();
            let size_i32 = i32::try_from(size).map_err(|_| unsupported(format!("message of {size} bytes")))?;
            out.reserve(LOG_OVERHEAD + size);
            out.extend_from_slice(&self.offset.to_be_bytes());
            out.extend_from_slice(&size_i32.to_be_bytes());
            let crc_at = out.len();
            out.extend_from_slice(&[0; 4]);
            out.push(self.magic as u8);
            let attributes = if self.magic == 1 && self.log_append_time { ATTR_LOG_APPEND_TIME } else { 0 };
            out.push(attributes as u8);
            if self.magic == 1 {
                out.extend_from_slice(&self.timestamp.to_be_bytes());
            }
            write_bytes(out, self.key)?;
            write_bytes(out, self.value)?;
            let crc = IEEE.checksum(&out[crc_at + 4..]);
            out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
            debug_assert_eq!(out.len() - crc_at, size);
            Ok(())
        }
    }

    fn write_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), ConvertError> {
        let Some(bytes) = bytes else {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        };
        let len = i32::try_from(bytes.len()).map_err(|_| unsupported(format!("field of {} bytes", bytes.len())))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    }
}

/// RecordBatch v2, read by hand: see crates/log/src/batch.rs for the header layout (this crate
/// must not depend on the log, so the offsets are repeated here).
mod v2 {
    use super::DECOMPRESSED_BYTES_MAX;
    use super::{codec, corrupt, unsupported, Bytes, Compression, ConvertError, Cow, Cursor, StoredRecord};

    const BATCH_LENGTH_AT: usize = 8;
    const MAGIC_AT: usize = 16;
    const CRC_AT: usize = 17;
    const ATTRIBUTES_AT: usize = 21;
    const BATCH_HEADER_LEN: usize = 61;
    /// base_offset and batch_length precede what batch_length counts.
    const LOG_OVERHEAD: usize = 12;
    const ATTR_COMPRESSION_MASK: i16 = 0x07;
    const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
    const ATTR_CONTROL: i16 = 0x20;
    /// Smallest record: length, attributes, timestamp delta, offset delta, key length, value
    /// length and header count, one byte each.
    const RECORD_BYTES_MIN: usize = 7;

    const _: () = assert!(CRC_AT + 4 == ATTRIBUTES_AT);
    const _: () = assert!(BATCH_LENGTH_AT + 4 == LOG_OVERHEAD);

    /// The fixed header of one v2 batch.
    pub(super) struct Header {
        pub(super) base_offset: i64,
        pub(super) attributes: i16,
        pub(super) last_offset_delta: i32,
        pub(super) base_timestamp: i64,
        pub(super) max_timestamp: i64,
        pub(super) records_count: i32,
    }

    impl Header {
        /// Reads the header of a complete batch, checking only that it is there.
        pub(super) fn parse(batch: &[u8]) -> Result<Header, ConvertError> {
            let mut c = Cursor { bytes: batch };
            let base_offset = c.i64("base offset")?;
            let _batch_length = c.i32("batch length")?;
            let _leader_epoch = c.i32("leader epoch")?;
            let _magic = c.i8("magic")?;
            let _crc = c.array::<4>("crc")?;
            let attributes = i16::from_be_bytes(c.array("attributes")?);
            let last_offset_delta = c.i32("last offset delta")?;
            let base_timestamp = c.i64("base timestamp")?;
            let max_timestamp = c.i64("max timestamp")?;
            let _producer = c.take(8 + 2 + 4, "producer fields")?;
            let records_count = c.i32("records count")?;
            debug_assert_eq!(batch.len() - c.bytes.len(), BATCH_HEADER_LEN);
            Ok(Header { base_offset, attributes, last_offset_delta, base_timestamp, max_timestamp, records_count })
        }

        /// Reads the header after checking the magic and the CRC-32C of a complete batch.
        pub(super) fn parse_checked(batch: &[u8]) -> Result<Header, ConvertError> {
            let magic = batch.get(MAGIC_AT).map_or(-1, |&b| b as i8);
            if magic != 2 {
                return Err(unsupported(format!("stored batch has magic {magic}, not 2")));
            }
            let (Some(crc), Some(covered)) = (batch.get(CRC_AT..ATTRIBUTES_AT), batch.get(ATTRIBUTES_AT..)) else {
                return Err(corrupt("truncated batch header"));
            };
            let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
            let computed = crc32c::crc32c(covered);
            if stored != computed {
                return Err(corrupt(format!("batch crc mismatch: stored {stored:#010x}, computed {computed:#010x}")));
            }
            Header::parse(batch)
        }

        pub(super) fn last_offset(&self) -> i64 {
            self.base_offset.saturating_add(self.last_offset_delta.into())
        }

        pub(super) fn is_control(&self) -> bool {
            self.attributes & ATTR_CONTROL != 0
        }

        pub(super) fn is_log_append_time(&self) -> bool {
            self.attributes & ATTR_TIMESTAMP_TYPE != 0
        }

        pub(super) fn compression(&self) -> Result<Compression, ConvertError> {
            match self.attributes & ATTR_COMPRESSION_MASK {
                0 => Ok(Compression::None),
                1 => Ok(Compression::Gzip),
                2 => Ok(Compression::Snappy),
                3 => Ok(Compression::Lz4),
                4 => Ok(Compression::Zstd),
                other => Err(unsupported(format!("batch compression codec {other}"))),
            }
        }
    }

    /// Splits the next complete batch off `rest`. None when what is left is a partial batch
    /// (or nothing): a size-limited log read ends that way and the tail is dropped.
    pub(super) fn next_complete_batch<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ConvertError> {
        let Some(length) = rest.get(BATCH_LENGTH_AT..LOG_OVERHEAD) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let total = usize::try_from(length)
            .ok()
            .filter(|&n| n >= BATCH_HEADER_LEN - LOG_OVERHEAD)
            .map(|n| n + LOG_OVERHEAD)
            .ok_or_else(|| corrupt(format!("batch length {length} is out of range")))?;
        if rest.len() < total {
            return Ok(None);
        }
        let (batch, tail) = rest.split_at(total);
        *rest = tail;
        Ok(Some(batch))
    }

    /// The batch's records, decompressed if need be (bounded by `DECOMPRESSED_BYTES_MAX`).
    pub(super) fn records_payload<'a>(batch: &'a [u8], header: &Header) -> Result<Cow<'a, [u8]>, ConvertError> {
        let compressed = batch.get(BATCH_HEADER_LEN..).ok_or_else(|| corrupt("truncated batch header"))?;
        match header.compression()? {
            Compression::None => Ok(Cow::Borrowed(compressed)),
            c => codec::decompress(c, compressed, DECOMPRESSED_BYTES_MAX, false).map(Cow::Owned),
        }
    }

    /// One record, borrowed from the batch's (decompressed) records.
    pub(super) struct RecordRef<'a> {
        pub(super) offset: i64,
        pub(super) timestamp: i64,
        pub(super) key: Option<&'a [u8]>,
        pub(super) value: Option<&'a [u8]>,
        /// (key, value) in record order; the legacy formats have no headers and drop them.
        pub(super) headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    }

    impl RecordRef<'_> {
        pub(super) fn to_stored(&self) -> StoredRecord {
            let copy = |b: Option<&[u8]>| b.map(Bytes::copy_from_slice);
            StoredRecord {
                offset: self.offset,
                timestamp: self.timestamp,
                key: copy(self.key),
                value: copy(self.value),
                headers: self
                    .headers
                    .iter()
                    .map(|&(k, v)| (String::from_utf8_lossy(k).into_owned(), copy(v)))
                    .collect(),
            }
        }
    }

    /// The records of a batch, parsed one at a time: exactly `records_count` of them must fill
    /// `payload`, anything else is corrupt. Only a record with headers allocates (a `Vec` that
    /// grows with headers actually parsed, never reserved from the count on the wire).
    pub(super) fn records<'a, 'h>(payload: &'a [u8], header: &'h Header) -> Result<Records<'a, 'h>, ConvertError> {
        let left =
            usize::try_from(header.records_count).ok().filter(|&n| n <= payload.len() / RECORD_BYTES_MIN).ok_or_else(
                || corrupt(format!("{} records cannot fit in {} bytes", header.records_count, payload.len())),
            )?;
        Ok(Records { cursor: Cursor { bytes: payload }, header, left })
    }

    pub(super) struct Records<'a, 'h> {
        cursor: Cursor<'a>,
        header: &'h Header,
        /// Records still to parse; the loop is bounded by it and by the bytes left.
        left: usize,
    }

    impl Records<'_, '_> {
        /// Bytes of the payload not parsed yet: a record's raw span is the difference
        /// before and after it (compaction copies kept records verbatim).
        pub(super) fn remaining_len(&self) -> usize {
            self.cursor.bytes.len()
        }
    }

    impl<'a> Iterator for Records<'a, '_> {
        type Item = Result<RecordRef<'a>, ConvertError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.left == 0 {
                if self.cursor.bytes.is_empty() {
                    return None;
                }
                let trailing = self.cursor.bytes.len();
                self.cursor.bytes = &[];
                return Some(Err(corrupt(format!(
                    "{trailing} bytes after the last of {} records",
                    self.header.records_count
                ))));
            }
            self.left -= 1;
            let record = parse_record(&mut self.cursor, self.header);
            if record.is_err() {
                self.left = 0;
                self.cursor.bytes = &[];
            }
            Some(record)
        }
    }

    fn parse_record<'a>(outer: &mut Cursor<'a>, header: &Header) -> Result<RecordRef<'a>, ConvertError> {
        let length = outer.varint("record length")?;
        let body = outer.sized(length.into(), "record")?.ok_or_else(|| corrupt("record length -1"))?;
        let mut c = Cursor { bytes: body };
        let _attributes = c.i8("record attributes")?;
        let timestamp_delta = c.varlong("record timestamp delta")?;
        let offset_delta = c.varint("record offset delta")?;
        let key_len = c.varint("record key length")?;
        let key = c.sized(key_len.into(), "record key")?;
        let value_len = c.varint("record value length")?;
        let value = c.sized(value_len.into(), "record value")?;
        let headers = c.varint("record header count")?;
        if headers < 0 {
            return Err(corrupt(format!("record header count {headers}")));
        }
        // Each header takes at least two bytes, so `c` runs out before a bogus count does harm.
        let mut header_pairs = Vec::new();
        for _ in 0..headers {
            let key_len = c.varint("header key length")?;
            if key_len < 0 {
                return Err(corrupt(format!("header key length {key_len}")));
            }
            let key = c.sized(key_len.into(), "header key")?.unwrap_or_default();
            let value_len = c.varint("header value length")?;
            header_pairs.push((key, c.sized(value_len.into(), "header value")?));
        }
        if !c.bytes.is_empty() {
            return Err(corrupt(format!("{} bytes after a record", c.bytes.len())));
        }
        let offset =
            header.base_offset.checked_add(offset_delta.into()).ok_or_else(|| corrupt("record offset overflows"))?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.checked_add(timestamp_delta).ok_or_else(|| corrupt("record timestamp overflows"))?
        };
        Ok(RecordRef { offset, timestamp, key, value, headers: header_pairs })
    }
}

/// Bounded decompression for every codec either format uses.
mod codec {
    use super::{corrupt, Compression, ConvertError, Read};

    /// xerial snappy-java stream header: magic, then version and compatible version (i32 each).
    const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER_LEN: usize = XERIAL_MAGIC.len() + 4 + 4;
    const LZ4_FRAME_MAGIC: [u8; 4] = 0x184D_2204u32.to_le_bytes();
    const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
    const LZ4_FLG_DICT_ID: u8 = 0x01;

    /// Decompresses `input`, failing with `TooLarge` beyond `limit` bytes of output.
    /// `lz4_legacy_checksum` accepts the wrong LZ4 frame header checksum Kafka 0.8/0.9 wrote.
    pub(super) fn decompress(
        compression: Compression,
        input: &[u8],
        limit: usize,
        lz4_legacy_checksum: bool,
    ) -> Result<Vec<u8>, ConvertError> {
        match compression {
            Compression::None => bounded(input, limit, "uncompressed"),
            Compression::Gzip => bounded(flate2::read::MultiGzDecoder::new(input), limit, "gzip"),
            Compression::Snappy if input.starts_with(XERIAL_MAGIC) => xerial_snappy(input, limit),
            Compression::Snappy => raw_snappy(input, limit),
            Compression::Lz4 if lz4_legacy_checksum => {
                let mut frame = input.to_vec();
                fix_lz4_header_checksum(&mut frame);
                lz4(&frame, limit)
            }
            Compression::Lz4 => lz4(input, limit),
            Compression::Zstd => {
                let decoder =
                    zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(format!("zstd: {e}")))?;
                bounded(decoder, limit, "zstd")
            }
        }
    }

    /// Whether compressed records use snappy-java's framing (the Java client writes it;
    /// librdkafka writes raw snappy): a rewrite keeps the framing it found.
    pub(super) fn is_xerial_snappy(input: &[u8]) -> bool {
        input.starts_with(XERIAL_MAGIC)
    }

    /// Block size of snappy-java's stream (its default), so Java consumers read it as their own.
    const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

    /// Compresses `input` with `compression` (snappy as xerial frames when `xerial`), as a
    /// compaction rewrite does with the codec the batch came with.
    pub(super) fn compress(compression: Compression, input: &[u8], xerial: bool) -> Result<Vec<u8>, ConvertError> {
        use std::io::Write;
        let failed = |codec: &str, e: &dyn std::fmt::Display| corrupt(format!("{codec} compression: {e}"));
        match compression {
            Compression::None => Ok(input.to_vec()),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(input).map_err(|e| failed("gzip", &e))?;
                encoder.finish().map_err(|e| failed("gzip", &e))
            }
            Compression::Snappy if xerial => {
                let mut out = XERIAL_MAGIC.to_vec();
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
                    let block = snap::raw::Encoder::new().compress_vec(chunk).map_err(|e| failed("snappy", &e))?;
                    out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                Ok(out)
            }
            Compression::Snappy => snap::raw::Encoder::new().compress_vec(input).map_err(|e| failed("snappy", &e)),
            Compression::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(input).map_err(|e| failed("lz4", &e))?;
                encoder.finish().map_err(|e| failed("lz4", &e))
            }
            Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(|e| failed("zstd", &e)),
        }
    }

    fn bounded(reader: impl Read, limit: usize, codec: &str) -> Result<Vec<u8>, ConvertError> {
        let mut out = Vec::new();
        let probe = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        reader.take(probe).read_to_end(&mut out).map_err(|e| corrupt(format!("{codec} data: {e}")))?;
        if out.len() > limit {
            return Err(too_large(codec, limit));
        }
        Ok(out)
    }

    fn too_large(codec: &str, limit: usize) -> ConvertError {
        ConvertError::TooLarge(format!("{codec} data decompresses to more than {limit} bytes"))
    }

    fn lz4(frame: &[u8], limit: usize) -> Result<Vec<u8>, ConvertError> {
        bounded(lz4_flex::frame::FrameDecoder::new(frame), limit, "lz4")
    }

    /// Raw snappy: the declared length is checked against `limit` before allocating.
    fn raw_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, ConvertError> {
        let len = snap::raw::decompress_len(input).map_err(|e| corrupt(format!("snappy data: {e}")))?;
        if len > limit {
            return Err(too_large("snappy", limit));
        }
        let mut out = vec![0; len];
        let written =
            snap::raw::Decoder::new().decompress(input, &mut out).map_err(|e| corrupt(format!("snappy data: {e}")))?;
        out.truncate(written);
        Ok(out)
    }

    /// snappy-java's stream: the header, then blocks of (i32 length, raw snappy block).
    fn xerial_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, ConvertError> {
        let mut rest = input.get(XERIAL_HEADER_LEN..).ok_or_else(|| corrupt("truncated xerial snappy header"))?;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut cursor = super::Cursor { bytes: rest };
            let len = cursor.i32("xerial snappy block length")?;
            let block = cursor
                .sized(len.into(), "xerial snappy block")?
                .ok_or_else(|| corrupt("xerial snappy block length -1"))?;
            rest = cursor.bytes;
            let chunk = raw_snappy(block, limit.saturating_sub(out.len()))?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Rewrites an LZ4 frame's header checksum to the correct one. Kafka 0.8/0.9 (and
    /// kafka-python for magic 0) hashed the magic number too; Kafka ignores the byte for magic 0,
    /// and the message CRC-32 still guards the data. Anything unexpected is left for the decoder.
    fn fix_lz4_header_checksum(frame: &mut [u8]) {
        if !frame.starts_with(&LZ4_FRAME_MAGIC) {
            return;
        }
        let Some(&flg) = frame.get(4) else { return };
        let mut descriptor_end = 6;
        if flg & LZ4_FLG_CONTENT_SIZE != 0 {
            descriptor_end += 8;
        }
        if flg & LZ4_FLG_DICT_ID != 0 {
            descriptor_end += 4;
        }
        let Some(descriptor) = frame.get(4..descriptor_end) else {
            return;
        };
        let checksum = (xxh32_short(descriptor) >> 8) as u8;
        if let Some(slot) = frame.get_mut(descriptor_end) {
            *slot = checksum;
        }
    }

    const XXH_PRIME_1: u32 = 0x9E37_79B1;
    const XXH_PRIME_2: u32 = 0x85EB_CA77;
    const XXH_PRIME_3: u32 = 0xC2B2_AE3D;
    const XXH_PRIME_4: u32 = 0x27D4_EB2F;
    const XXH_PRIME_5: u32 = 0x1656_67B1;
    /// An LZ4 frame descriptor is at most 14 bytes, so only xxHash32's short-input path is needed.
    const XXH_SHORT_LEN_MAX: usize = 15;

    /// xxHash32 with seed 0 for inputs shorter than 16 bytes; longer inputs hash to 0 (never
    /// called with them: the descriptor is at most 14 bytes).
    pub(super) fn xxh32_short(input: &[u8]) -> u32 {
        if input.len() > XXH_SHORT_LEN_MAX {
            return 0;
        }
        let mut h = XXH_PRIME_5.wrapping_add(input.len() as u32);
        let mut words = input.chunks_exact(4);
        for word in &mut words {
            let k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            h = h.wrapping_add(k.wrapping_mul(XXH_PRIME_3));
            h = h.rotate_left(17).wrapping_mul(XXH_PRIME_4);
        }
        for &b in words.remainder() {
            h = h.wrapping_add(u32::from(b).wrapping_mul(XXH_PRIME_5));
            h = h.rotate_left(11).wrapping_mul(XXH_PRIME_1);
        }
        h ^= h >> 15;
        h = h.wrapping_mul(XXH_PRIME_2);
        h ^= h >> 13;
        h = h.wrapping_mul(XXH_PRIME_3);
        h ^= h >> 16;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{RecordBatchDecoder, RecordCompression};
    use proptest::prelude::*;
    use std::io::Write;

    const NOW_MS: i64 = 1_700_000_000_000;

    #[derive(Clone, Debug, PartialEq)]
    struct Msg {
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        ts: i64,
    }

    fn msg(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> Msg {
        Msg { key: key.map(<[u8]>::to_vec), value: value.map(<[u8]>::to_vec), ts }
    }

    fn sample() -> Vec<Msg> {
        let long = b"value-".repeat(40);
        vec![
            msg(Some(b"k0"), Some(b"v0"), NOW_MS - 5000),
            msg(None, Some(&long), NOW_MS - 4000),
            msg(Some(b"k2"), None, NOW_MS - 6000),
            msg(Some(b""), Some(b""), NOW_MS - 3000),
        ]
    }

    /// Test encoder for one legacy message, from the CRC on.
    fn message(magic: i8, attributes: i8, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![magic as u8, attributes as u8];
        if magic == 1 {
            body.extend(ts.to_be_bytes());
        }
        for field in [key, value] {
            match field {
                None => body.extend((-1i32).to_be_bytes()),
                Some(b) => {
                    body.extend((b.len() as i32).to_be_bytes());
                    body.extend(b);
                }
            }
        }
        let mut out = IEEE.checksum(&body).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn entry(offset: i64, message: &[u8]) -> Vec<u8> {
        let mut out = offset.to_be_bytes().to_vec();
        out.extend((message.len() as i32).to_be_bytes());
        out.extend(message);
        out
    }

    fn plain_set(magic: i8, msgs: &[Msg]) -> Vec<u8> {
        msgs.iter()
            .enumerate()
            .flat_map(|(i, m)| entry(i as i64, &message(magic, 0, m.ts, m.key.as_deref(), m.value.as_deref())))
            .collect()
    }

    /// One wrapper holding `msgs`, inner offsets 0..n-1 as producers write them (absolute in
    /// magic 0 for a fresh set, relative in magic 1), wrapper at the last inner offset.
    fn wrapped_set(magic: i8, codec: i8, msgs: &[Msg], compress: fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let inner = plain_set(magic, msgs);
        let ts = msgs.iter().map(|m| m.ts).max().unwrap_or(0);
        let wrapper = message(magic, codec, ts, None, Some(&compress(&inner)));
        entry(msgs.len() as i64 - 1, &wrapper)
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn snappy_raw(b: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(b).unwrap()
    }

    /// snappy-java framing with small blocks, so several blocks are exercised.
    fn snappy_xerial(b: &[u8]) -> Vec<u8> {
        let mut out = b"\x82SNAPPY\x00".to_vec();
        out.extend(1i32.to_be_bytes());
        out.extend(1i32.to_be_bytes());
        for chunk in b.chunks(64) {
            let block = snappy_raw(chunk);
            out.extend((block.len() as i32).to_be_bytes());
            out.extend(block);
        }
        out
    }

    fn lz4(b: &[u8]) -> Vec<u8> {
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    /// An LZ4 frame with the header checksum Kafka 0.8/0.9 wrote: xxHash32 over magic+FLG+BD.
    fn lz4_kafka08(b: &[u8]) -> Vec<u8> {
        let mut frame = lz4(b);
        frame[6] = (codec::xxh32_short(&frame[0..6]) >> 8) as u8;
        frame
    }

    type Compressor = fn(&[u8]) -> Vec<u8>;
    const LEGACY_CODECS: [(&str, i8, Compressor, Compression); 4] = [
        ("gzip", 1, gzip, Compression::Gzip),
        ("snappy-raw", 2, snappy_raw, Compression::Snappy),
        ("snappy-xerial", 2, snappy_xerial, Compression::Snappy),
        ("lz4", 3, lz4, Compression::Lz4),
    ];

    /// (offset, timestamp, key, value) of every record kafka-protocol decodes from `bytes`.
    /// (offset, timestamp, key, value) of one record as a client sees it.
    type Row = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

    fn kp_decode(bytes: &[u8]) -> Vec<Row> {
        let mut buf = Bytes::copy_from_slice(bytes);
        RecordBatchDecoder::decode_all(&mut buf)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records)
            .map(|r| (r.offset, r.timestamp, r.key.map(|b| b.to_vec()), r.value.map(|b| b.to_vec())))
            .collect()
    }

    fn kp_record(offset: i64, m: &Msg) -> Record {
        Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: (offset as i32).wrapping_sub(1),
            timestamp: m.ts,
            key: m.key.clone().map(Bytes::from),
            value: m.value.clone().map(Bytes::from),
            headers: Default::default(),
        }
    }

    /// A stored v2 batch at `base_offset`, encoded by kafka-protocol.
    fn v2_batch(base_offset: i64, msgs: &[Msg], compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = msgs.iter().enumerate().map(|(i, m)| kp_record(base_offset + i as i64, m)).collect();
        encode_records(&records, compression)
    }

    fn encode_records(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        out.to_vec()
    }

    fn set_base_offset(batch: &mut [u8], base_offset: i64) {
        batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    }

    fn set_attributes(batch: &mut [u8], attributes: i16) {
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn expected(msgs: &[Msg], base: i64, ts: impl Fn(&Msg) -> i64) -> Vec<Row> {
        msgs.iter().enumerate().map(|(i, m)| (base + i as i64, ts(m), m.key.clone(), m.value.clone())).collect()
    }

    /// Up-converts, checks the result is one v2 batch at offset 0 with `compression`, then
    /// down-converts it as if the log had placed it at `base`; returns what kafka-protocol reads.
    fn up_then_down(set: &[u8], magic: i8, compression: Compression, base: i64) -> Vec<Row> {
        let mut batch = upconvert_message_set(set, NOW_MS).unwrap();
        let mut buf = Bytes::copy_from_slice(&batch);
        let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
        assert_eq!(sets.len(), 1, "exactly one batch");
        assert_eq!(sets[0].version, 2);
        assert_eq!(sets[0].compression, RecordCompression::RecordBatch(compression));
        let offsets: Vec<i64> = sets[0].records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
        assert!(sets[0].records.iter().all(|r| r.sequence == -1 + r.offset as i32 && r.producer_id == -1));
        set_base_offset(&mut batch, base);
        kp_decode(&downconvert_batches(&batch, magic, base).unwrap())
    }

    #[test]
    fn records_magic_reads_byte_16() {
        // Proves the magic is read from byte 16 for every format and short input is None.
        assert_eq!(records_magic(&[0; 16]), None);
        assert_eq!(records_magic(&plain_set(0, &sample())), Some(0));
        assert_eq!(records_magic(&plain_set(1, &sample())), Some(1));
        assert_eq!(records_magic(&v2_batch(0, &sample(), Compression::None)), Some(2));
    }

    #[test]
    fn uncompressed_round_trip_both_magics() {
        // Proves plain magic 0/1 sets survive up- then down-conversion with keys, values,
        // absolute offsets, and timestamps (magic 1 kept, magic 0 stamped now).
        let msgs = sample();
        let got = up_then_down(&plain_set(0, &msgs), 0, Compression::None, 1000);
        assert_eq!(got, expected(&msgs, 1000, |_| -1));
        let got = up_then_down(&plain_set(1, &msgs), 1, Compression::None, 1000);
        assert_eq!(got, expected(&msgs, 1000, |m| m.ts));
        // magic 0 produced, magic 1 fetched: the stamp is now_ms.
        let mut batch = upconvert_message_set(&plain_set(0, &msgs), NOW_MS).unwrap();
        set_base_offset(&mut batch, 7);
        assert_eq!(kp_decode(&downconvert_batches(&batch, 1, 0).unwrap()), expected(&msgs, 7, |_| NOW_MS));
    }

    #[test]
    fn kafka_protocol_encoded_legacy_sets_upconvert() {
        // Proves sets written by an independent encoder (kafka-protocol, offsets all 0) convert.
        let msgs = sample();
        let records: Vec<Record> = msgs.iter().map(|m| Record { sequence: -1, ..kp_record(0, m) }).collect();
        for (magic, compression) in [
            (0, Compression::None),
            (0, Compression::Gzip),
            (0, Compression::Snappy),
            (1, Compression::None),
            (1, Compression::Gzip),
            (1, Compression::Snappy),
            (1, Compression::Lz4),
        ] {
            let mut set = BytesMut::new();
            RecordBatchEncoder::encode(&mut set, &records, &RecordEncodeOptions { version: magic, compression })
                .unwrap();
            let ts = |m: &Msg| if magic == 1 { m.ts } else { -1 };
            let got = up_then_down(&set, magic, compression, 40);
            assert_eq!(got, expected(&msgs, 40, ts), "magic {magic} {compression:?}");
        }
    }

    #[test]
    fn compressed_round_trip_every_legacy_codec() {
        // Proves gzip, raw and xerial snappy, and lz4 wrappers in magic 0 and 1 round-trip, and
        // the batch is re-compressed with the same codec.
        let msgs = sample();
        for magic in [0, 1] {
            for (name, codec, compress, compression) in LEGACY_CODECS {
                let compress = if magic == 0 && codec == 3 { lz4_kafka08 } else { compress };
                let set = wrapped_set(magic, codec, &msgs, compress);
                let ts = |m: &Msg| if magic == 1 { m.ts } else { -1 };
                let got = up_then_down(&set, magic, compression, 1 << 40);
                assert_eq!(got, expected(&msgs, 1 << 40, ts), "magic {magic} {name}");
            }
        }
    }

    #[test]
    fn mixed_set_takes_first_entry_codec() {
        // Proves plain and compressed entries mix, renumbered in order, codec of the first entry.
        let a = sample();
        let b: Vec<Msg> = sample().into_iter().map(|m| Msg { ts: m.ts + 1, ..m }).collect();
        let mut set = plain_set(1, &a[..1]);
        set.extend(wrapped_set(1, 1, &b, gzip));
        set.extend(plain_set(1, &a[1..]));
        let all: Vec<Msg> = a[..1].iter().chain(&b).chain(&a[1..]).cloned().collect();
        assert_eq!(up_then_down(&set, 1, Compression::None, 0), expected(&all, 0, |m| m.ts));
        let mut set = wrapped_set(1, 2, &b, snappy_xerial);
        set.extend(plain_set(1, &a));
        let all: Vec<Msg> = b.iter().chain(&a).cloned().collect();
        assert_eq!(up_then_down(&set, 1, Compression::Snappy, 0), expected(&all, 0, |m| m.ts));
    }

    #[test]
    fn log_append_time_gets_now() {
        // Proves LogAppendTime on a message or a magic 1 wrapper stamps now_ms.
        let m = message(1, 0x08, 5, Some(b"k"), Some(b"v"));
        let batch = upconvert_message_set(&entry(0, &m), NOW_MS).unwrap();
        assert_eq!(kp_decode(&batch)[0].1, NOW_MS);
        let inner = plain_set(1, &sample());
        let wrapper = message(1, 0x08 | 1, 5, None, Some(&gzip(&inner)));
        let batch = upconvert_message_set(&entry(3, &wrapper), NOW_MS).unwrap();
        assert!(kp_decode(&batch).iter().all(|r| r.1 == NOW_MS));
    }

    #[test]
    fn lz4_kafka08_header_checksum_only_for_magic_0() {
        // Proves the wrong LZ4 header checksum of Kafka 0.8 is accepted in magic 0 only.
        let msgs = sample();
        let set = wrapped_set(1, 3, &msgs, lz4_kafka08);
        assert!(matches!(upconvert_message_set(&set, NOW_MS), Err(ConvertError::Corrupt(_))));
        assert!(upconvert_message_set(&wrapped_set(0, 3, &msgs, lz4), NOW_MS).is_ok());
    }

    #[test]
    fn xxh32_matches_reference_and_lz4_flex() {
        // Proves the short xxHash32 matches published vectors and lz4_flex's header checksum.
        assert_eq!(codec::xxh32_short(b""), 0x02CC_5D05);
        assert_eq!(codec::xxh32_short(b"a"), 0x550D_7456);
        assert_eq!(codec::xxh32_short(b"abc"), 0x32D1_53FF);
        let mut info = lz4_flex::frame::FrameInfo::new();
        info.content_size = Some(3);
        let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        e.write_all(b"abc").unwrap();
        let frame = e.finish().unwrap();
        assert_eq!(frame[14], (codec::xxh32_short(&frame[4..14]) >> 8) as u8);
    }

    #[test]
    fn crc_mismatch_is_corrupt() {
        // Proves a flipped byte in a message, or in an inner message of a wrapper, is rejected.
        let mut set = plain_set(1, &sample());
        let last = set.len() - 1;
        set[last] ^= 1;
        let result = upconvert_message_set(&set, NOW_MS);
        assert!(matches!(result, Err(ConvertError::Corrupt(e)) if e.contains("crc")));
        let mut inner = plain_set(0, &sample());
        let last = inner.len() - 1;
        inner[last] ^= 1;
        let set = entry(0, &message(0, 1, 0, None, Some(&gzip(&inner))));
        let result = upconvert_message_set(&set, NOW_MS);
        assert!(matches!(result, Err(ConvertError::Corrupt(e)) if e.contains("crc")));
    }

    #[test]
    fn truncated_legacy_set_is_an_error() {
        // Proves every prefix that cuts an entry is rejected, and the empty set is Empty.
        assert!(matches!(upconvert_message_set(&[], NOW_MS), Err(ConvertError::Empty)));
        for set in [plain_set(1, &sample()), wrapped_set(0, 2, &sample(), snappy_xerial)] {
            let mut entry_ends = Vec::new();
            let mut at = 0;
            while at < set.len() {
                at += 12 + i32::from_be_bytes(set[at + 8..at + 12].try_into().unwrap()) as usize;
                entry_ends.push(at);
            }
            for len in 1..set.len() {
                let result = upconvert_message_set(&set[..len], NOW_MS);
                assert_eq!(result.is_ok(), entry_ends.contains(&len), "prefix {len}");
            }
        }
    }

    #[test]
    fn invalid_legacy_sets_are_rejected() {
        // Proves nested compression, zstd in a legacy set, magic 2 and null wrappers are refused.
        let inner = wrapped_set(1, 1, &sample(), gzip);
        let nested = entry(0, &message(1, 1, 0, None, Some(&gzip(&inner))));
        assert!(matches!(upconvert_message_set(&nested, NOW_MS), Err(ConvertError::Corrupt(_))));
        let zstd = entry(0, &message(1, 4, 0, None, Some(b"x")));
        assert!(matches!(upconvert_message_set(&zstd, NOW_MS), Err(ConvertError::Unsupported(_))));
        let v2 = v2_batch(0, &sample(), Compression::None);
        let result = upconvert_message_set(&v2, NOW_MS);
        assert!(matches!(result, Err(ConvertError::Unsupported(_))));
        let null = entry(0, &message(0, 1, 0, None, None));
        assert!(matches!(upconvert_message_set(&null, NOW_MS), Err(ConvertError::Corrupt(_))));
        let mixed_magic = entry(0, &message(1, 1, 0, None, Some(&gzip(&plain_set(0, &sample())))));
        assert!(matches!(upconvert_message_set(&mixed_magic, NOW_MS), Err(ConvertError::Corrupt(_))));
    }

    #[test]
    fn decompression_bombs_are_too_large() {
        // Proves gzip output and a snappy declared length are capped before memory is spent.
        let zeros = vec![0u8; DECOMPRESSED_BYTES_MAX + 1];
        let set = entry(0, &message(0, 1, 0, None, Some(&gzip(&zeros))));
        assert!(matches!(upconvert_message_set(&set, NOW_MS), Err(ConvertError::TooLarge(_))));
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let set = entry(0, &message(1, 2, 0, None, Some(&claim)));
        assert!(matches!(upconvert_message_set(&set, NOW_MS), Err(ConvertError::TooLarge(_))));
    }

    #[test]
    fn downconvert_every_v2_codec() {
        // Proves stored batches in every codec, with headers, down-convert to both magics.
        let msgs = sample();
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let mut records: Vec<Record> = msgs.iter().enumerate().map(|(i, m)| kp_record(500 + i as i64, m)).collect();
            records[0].headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"hv")));
            records[1].headers.insert(StrBytes::from_static_str("null"), None);
            let batch = encode_records(&records, compression);
            assert_eq!(
                kp_decode(&downconvert_batches(&batch, 0, 0).unwrap()),
                expected(&msgs, 500, |_| -1),
                "{compression:?}"
            );
            assert_eq!(
                kp_decode(&downconvert_batches(&batch, 1, 0).unwrap()),
                expected(&msgs, 500, |m| m.ts),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn from_offset_filters_records_and_batches() {
        // Proves records before from_offset are dropped, inside a batch and whole batches.
        let msgs = sample();
        let mut log = v2_batch(10, &msgs, Compression::Gzip);
        log.extend(v2_batch(14, &msgs, Compression::None));
        log.extend(v2_batch(18, &msgs, Compression::Lz4));
        let got = kp_decode(&downconvert_batches(&log, 1, 16).unwrap());
        let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
        assert_eq!(offsets, (16..22).collect::<Vec<_>>());
        assert_eq!(got[0].3, msgs[2].value);
        assert!(downconvert_batches(&log, 1, 22).unwrap().is_empty());
        assert_eq!(kp_decode(&downconvert_batches(&log, 0, -5).unwrap()).len(), 12);
    }

    #[test]
    fn control_batches_are_skipped() {
        // Proves transaction markers never reach a legacy consumer.
        let msgs = sample();
        let mut log = v2_batch(0, &msgs, Compression::None);
        let mut marker = kp_record(4, &msg(Some(&[0, 0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0]), 0));
        marker.control = true;
        marker.transactional = true;
        marker.sequence = 3;
        log.extend(encode_records(&[marker], Compression::None));
        log.extend(v2_batch(5, &msgs, Compression::None));
        let offsets: Vec<i64> = kp_decode(&downconvert_batches(&log, 1, 0).unwrap()).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 5, 6, 7, 8]);
    }

    #[test]
    fn partial_trailing_batch_is_dropped() {
        // Proves a log read cut anywhere in the last batch yields exactly the complete batches.
        let msgs = sample();
        let first = v2_batch(0, &msgs, Compression::Snappy);
        let second = v2_batch(4, &msgs, Compression::Zstd);
        let whole = downconvert_batches(&first, 1, 0).unwrap();
        for cut in 0..second.len() {
            let mut log = first.clone();
            log.extend(&second[..cut]);
            assert_eq!(downconvert_batches(&log, 1, 0).unwrap(), whole, "cut {cut}");
        }
    }

    #[test]
    fn corrupt_stored_batch_is_an_error() {
        // Proves a complete batch with a bad CRC-32C or a non-v2 magic is reported, not skipped.
        let mut batch = v2_batch(0, &sample(), Compression::None);
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(matches!(downconvert_batches(&batch, 1, 0), Err(ConvertError::Corrupt(_))));
        let legacy = plain_set(1, &sample());
        assert!(downconvert_batches(&legacy, 1, 0).is_err());
        assert!(matches!(downconvert_batches(&[], 2, 0), Err(ConvertError::Unsupported(_))));
    }

    #[test]
    fn log_append_time_batch_downconverts_with_max_timestamp() {
        // Proves LogAppendTime batches give every magic 1 message the batch max timestamp.
        let msgs = sample();
        let mut batch = v2_batch(0, &msgs, Compression::None);
        set_attributes(&mut batch, 0x08);
        let max = msgs.iter().map(|m| m.ts).max().unwrap();
        let out = downconvert_batches(&batch, 1, 0).unwrap();
        assert!(kp_decode(&out).iter().all(|r| r.1 == max));
        assert_eq!(out[17] & 0x08, 0x08, "LogAppendTime attribute");
        assert_eq!(first_record_at_or_after(&batch, max).unwrap(), Some((0, max)));
    }

    #[test]
    fn output_stops_at_message_boundary() {
        // Proves the output cap ends on a whole message and always lets one through.
        let msgs = sample();
        let batch = v2_batch(0, &msgs, Compression::None);
        let all = downconvert_batches(&batch, 1, 0).unwrap();
        let first_len = 12 + 22 + 2 + 2;
        assert_eq!(downconvert_capped(&batch, 1, 0, 1).unwrap(), all[..first_len].to_vec());
        assert_eq!(downconvert_capped(&batch, 1, 0, all.len()).unwrap(), all);
        assert_eq!(kp_decode(&downconvert_capped(&batch, 1, 0, all.len() - 1).unwrap()).len(), 3);
    }

    #[test]
    fn first_record_at_or_after_finds_timestamps() {
        // Proves the search returns the first record at or after the target, in any codec.
        let msgs = vec![msg(None, Some(b"a"), 10), msg(None, Some(b"b"), 30), msg(None, Some(b"c"), 20)];
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = v2_batch(100, &msgs, compression);
            assert_eq!(first_record_at_or_after(&batch, 0).unwrap(), Some((100, 10)));
            assert_eq!(first_record_at_or_after(&batch, 15).unwrap(), Some((101, 30)));
            assert_eq!(first_record_at_or_after(&batch, 30).unwrap(), Some((101, 30)));
            assert_eq!(first_record_at_or_after(&batch, 31).unwrap(), None);
            assert!(first_record_at_or_after(&batch[..batch.len() - 1], 0).is_err());
        }
    }

    #[test]
    fn timestamps_too_far_apart_are_unsupported() {
        // Proves a set the v2 encoder cannot hold is an error, not a wrong batch.
        let msgs = vec![msg(None, Some(b"a"), -1), msg(None, Some(b"b"), NOW_MS)];
        assert!(matches!(upconvert_message_set(&plain_set(1, &msgs), NOW_MS), Err(ConvertError::Unsupported(_))));
    }

    /// A legacy entry whose CRC is right but whose body is arbitrary, to reach the parser.
    /// Offsets and records of every batch `read_v2_records` yields; a framing error panics.
    fn read_all(batches: &[u8], from_offset: i64) -> Vec<(i64, i64, Result<Vec<StoredRecord>, ConvertError>)> {
        read_v2_records(batches, from_offset)
            .map(|b| b.map(|b| (b.base_offset, b.last_offset, b.records)).expect("framing"))
            .collect()
    }

    #[test]
    fn read_v2_records_keeps_headers_including_null_values() {
        // Proves headers survive with a null value (which kafka-protocol's decoder rejects).
        let mut record = kp_record(7, &msg(Some(b"k"), Some(b"v"), NOW_MS));
        record.headers.insert(StrBytes::from_static_str("null"), None);
        record.headers.insert(StrBytes::from_static_str("set"), Some(Bytes::from_static(b"x")));
        let batch = encode_records(&[record], Compression::Gzip);
        let got = read_all(&batch, 0);
        assert_eq!(got.len(), 1);
        let (base, last, records) = &got[0];
        assert_eq!((*base, *last), (7, 7));
        let want = StoredRecord {
            offset: 7,
            timestamp: NOW_MS,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("null".to_string(), None), ("set".to_string(), Some(Bytes::from_static(b"x")))],
        };
        assert_eq!(records.as_ref().expect("records"), &vec![want]);
    }

    #[test]
    fn read_v2_records_matches_every_codec() {
        // Proves every codec reads back the records as written, from_offset filtering inside a batch.
        let msgs = sample();
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let got = read_all(&v2_batch(10, &msgs, compression), 11);
            let (_, _, records) = &got[0];
            let rows: Vec<Row> = records
                .as_ref()
                .expect("records")
                .iter()
                .map(|r| {
                    (
                        r.offset,
                        r.timestamp,
                        r.key.as_deref().map(<[u8]>::to_vec),
                        r.value.as_deref().map(<[u8]>::to_vec),
                    )
                })
                .collect();
            assert_eq!(rows, expected(&msgs, 10, |m| m.ts)[1..].to_vec(), "{compression:?}");
        }
    }

    #[test]
    fn read_v2_records_reports_a_bad_batch_and_goes_on() {
        // Proves a corrupt batch and a decompression bomb are reported with their offsets, the
        // batches around them still read, a control batch yields nothing, a partial tail is dropped.
        let msgs = sample();
        let mut log = v2_batch(0, &msgs, Compression::None);
        let mut corrupt_batch = v2_batch(4, &msgs, Compression::None);
        let last = corrupt_batch.len() - 1;
        corrupt_batch[last] ^= 1;
        log.extend(corrupt_batch);
        let mut marker = kp_record(8, &msg(Some(&[0, 0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0]), 0));
        marker.control = true;
        marker.transactional = true;
        marker.sequence = 7;
        log.extend(encode_records(&[marker], Compression::None));
        let mut bomb = crc_valid_batch(1, 1, &gzip(&vec![0u8; DECOMPRESSED_BYTES_MAX + 1]));
        set_base_offset(&mut bomb, 9);
        log.extend(bomb);
        log.extend(v2_batch(10, &msgs, Compression::Lz4));
        let tail = v2_batch(14, &msgs, Compression::None);
        log.extend(&tail[..tail.len() - 1]);
        let got = read_all(&log, 0);
        let summary: Vec<(i64, i64, Result<usize, bool>)> = got
            .iter()
            .map(|(b, l, r)| (*b, *l, r.as_ref().map(Vec::len).map_err(|e| matches!(e, ConvertError::TooLarge(_)))))
            .collect();
        assert_eq!(summary, vec![(0, 3, Ok(4)), (4, 7, Err(false)), (8, 8, Ok(0)), (9, 9, Err(true)), (10, 13, Ok(4))]);
    }

    #[test]
    fn read_v2_records_stops_at_broken_framing() {
        // Proves a batch length out of range is one error after the batches before it, then the end.
        let mut log = v2_batch(0, &sample(), Compression::None);
        let mut broken = v2_batch(4, &sample(), Compression::None);
        broken[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        log.extend(broken);
        let got: Vec<_> = read_v2_records(&log, 0).collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], Ok(BatchRecords { base_offset: 0, last_offset: 3, records: Ok(_) })));
        assert!(matches!(got[1], Err(ConvertError::Corrupt(_))));
    }

    fn crc_valid_entry(magic: i8, attributes: i8, body: &[u8]) -> Vec<u8> {
        let mut content = vec![magic as u8, attributes as u8];
        content.extend(body);
        let mut m = IEEE.checksum(&content).to_be_bytes().to_vec();
        m.extend(content);
        entry(0, &m)
    }

    /// A v2 batch whose CRC is right but whose records are arbitrary, to reach the parser.
    fn crc_valid_batch(attributes: i16, count: i32, records: &[u8]) -> Vec<u8> {
        let mut b = v2_batch(0, &[msg(None, None, 0)], Compression::None);
        b.truncate(61);
        b.extend(records);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        set_attributes(&mut b, attributes);
        b
    }

    fn msg_strategy() -> impl Strategy<Value = Msg> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            NOW_MS - 1_000_000..NOW_MS,
        )
            .prop_map(|(key, value, ts)| Msg { key, value, ts })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            target in any::<i64>(),
        ) {
            let _ = records_magic(&bytes);
            let _ = upconvert_message_set(&bytes, NOW_MS);
            let _ = downconvert_batches(&bytes, 0, 0);
            let _ = downconvert_batches(&bytes, 1, target);
            let _ = first_record_at_or_after(&bytes, target);
            let _ = read_v2_records(&bytes, target).count();
        }

        #[test]
        fn crc_valid_garbage_never_panics(
            magic in 0i8..=1,
            attributes in any::<i8>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            v2_attributes in any::<i16>(),
            count in any::<i32>(),
        ) {
            let _ = upconvert_message_set(&crc_valid_entry(magic, attributes, &body), NOW_MS);
            for codec in 1..=3 {
                // A null key, then the garbage as the "compressed" value.
                let value = [&[0xff; 4][..], &(body.len() as i32).to_be_bytes(), &body].concat();
                let wrapper = crc_valid_entry(magic, codec, &value);
                let _ = upconvert_message_set(&wrapper, NOW_MS);
            }
            let batch = crc_valid_batch(v2_attributes, count, &body);
            let _ = downconvert_batches(&batch, magic, 0);
            let _ = first_record_at_or_after(&batch, 0);
            let _ = read_v2_records(&batch, 0).count();
        }

        #[test]
        fn mangled_valid_inputs_never_panic(
            which in 0usize..6,
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let msgs = sample();
            let inputs = [
                wrapped_set(0, 1, &msgs, gzip),
                wrapped_set(1, 2, &msgs, snappy_xerial),
                wrapped_set(1, 3, &msgs, lz4),
                v2_batch(3, &msgs, Compression::Zstd),
                v2_batch(3, &msgs, Compression::Snappy),
                v2_batch(3, &msgs, Compression::Lz4),
            ];
            let mut input = inputs[which].clone();
            input.truncate(cut.index(input.len() + 1));
            if !input.is_empty() {
                let i = flip.index(input.len());
                input[i] ^= 1 << bit;
            }
            let _ = upconvert_message_set(&input, NOW_MS);
            let _ = downconvert_batches(&input, 1, 0);
            let _ = first_record_at_or_after(&input, 0);
            let _ = read_v2_records(&input, 0).count();
        }

        #[test]
        fn up_down_round_trip(
            msgs in proptest::collection::vec(msg_strategy(), 1..20),
            codec in 0usize..5,
            base in 0i64..1 << 50,
        ) {
            let set = match codec {
                0 => plain_set(1, &msgs),
                n => wrapped_set(1, LEGACY_CODECS[n - 1].1, &msgs, LEGACY_CODECS[n - 1].2),
            };
            let mut batch = upconvert_message_set(&set, NOW_MS).unwrap();
            set_base_offset(&mut batch, base);
            let got = kp_decode(&downconvert_batches(&batch, 1, base).unwrap());
            prop_assert_eq!(got, expected(&msgs, base, |m| m.ts));
        }
    }
}
