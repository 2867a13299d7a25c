//! Checking an append before anything is written, and assigning its offsets.

use crate::batch::{self, BatchError, BatchHeader, BATCH_LENGTH_AT, LOG_OVERHEAD};
use crate::error::AppendError;
use crate::layout::RELATIVE_OFFSET_LIMIT;

/// Start position in the buffer and header of each batch of an append.
pub type Batches = Vec<(usize, BatchHeader)>;

/// How an append checks each batch's record count against its offset range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// A producer's batch: exactly `last_offset_delta` + 1 records, at least one.
    Exact,
    /// A batch read from a compacted log (a Raft leader's, sent to a follower): at most that.
    Compacted,
}

/// Validates every batch of `bytes` (length against `batch_bytes_max` first, then magic,
/// CRC-32C and the record count against the offset range). Trailing bytes that are not a whole valid batch fail the whole append.
pub fn validate_all(bytes: &[u8], batch_bytes_max: u32, counts: Counts) -> Result<Batches, AppendError> {
    if bytes.is_empty() {
        return Err(AppendError::Empty);
    }
    let mut batches = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        check_declared_length(rest, batch_bytes_max)?;
        let header =
            batch::validate(rest, batch_bytes_max as usize).map_err(|reason| AppendError::Corrupt { at, reason })?;
        let counted = match counts {
            Counts::Exact => batch::check_record_count(&header),
            Counts::Compacted => batch::check_compacted_record_count(&header),
        };
        counted.map_err(|reason| AppendError::Corrupt { at, reason })?;
        batches.push((at, header));
        at += header.total_len();
    }
    Ok(batches)
}

/// Refuses an oversized batch by its declared length, before its bytes are trusted.
fn check_declared_length(rest: &[u8], batch_bytes_max: u32) -> Result<(), AppendError> {
    let Some(field) = rest.get(BATCH_LENGTH_AT..LOG_OVERHEAD) else {
        return Ok(()); // too short: `validate` reports it as incomplete
    };
    let declared = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    let size = LOG_OVERHEAD as i64 + declared as i64;
    if declared >= 0 && size > batch_bytes_max as i64 {
        return Err(AppendError::TooLarge { size: size as usize, max: batch_bytes_max });
    }
    Ok(())
}

/// The last offset the append will take if it starts at `first`. Refuses appends whose
/// offsets would not fit one segment (relative offsets are `u32`).
pub fn last_offset(batches: &Batches, first: i64) -> Result<i64, AppendError> {
    let mut next = first;
    for (at, header) in batches {
        let last = next + header.last_offset_delta as i64;
        if last - first > RELATIVE_OFFSET_LIMIT {
            return Err(AppendError::Corrupt { at: *at, reason: BatchError::BadOffsetDelta(header.last_offset_delta) });
        }
        next = last + 1;
    }
    Ok(next - 1)
}

/// Rewrites each batch's base offset, consecutively from `first`.
pub fn assign_offsets(bytes: &mut [u8], batches: &mut Batches, first: i64) {
    let mut next = first;
    for (at, header) in batches.iter_mut() {
        batch::set_base_offset(&mut bytes[*at..], next);
        header.base_offset = next;
        next = header.last_offset() + 1;
    }
}

/// Rewrites each batch's partition leader epoch.
pub fn assign_leader_epoch(bytes: &mut [u8], batches: &mut Batches, epoch: i32) {
    for (at, header) in batches.iter_mut() {
        batch::set_leader_epoch(&mut bytes[*at..], epoch);
        header.partition_leader_epoch = epoch;
    }
}
