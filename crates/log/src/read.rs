//! The read paths. They run on a `Located` snapshot taken under the partition lock and
//! then read with positional reads, without the lock, so appends are not held up.

use std::os::unix::fs::FileExt;

use crate::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::error::ReadError;
use crate::partition::TimestampHit;
use crate::scan::{check_header, ScanError, Scanner};
use crate::segment::SegmentView;

/// Where to start walking a segment: a batch boundary known from the offset index.
pub struct Located {
    pub view: SegmentView,
    pub position: u64,
    /// Base offset of the batch at `position`.
    pub position_offset: i64,
    /// Read-ahead for header walks: about one index interval.
    pub walk_chunk_bytes: usize,
}

/// What `collect` got from one segment.
pub struct Collected {
    /// Offset after the last batch taken.
    pub next_offset: i64,
    /// Whether the batches taken run to the end of the segment, so a read may go on in the
    /// next one.
    pub segment_done: bool,
}

/// Whether a read's first batch may go past the read's byte limit (Kafka's `minOneMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBatch {
    /// Taken whole even when larger than the limit, so a reader always makes progress.
    Whole,
    /// Taken only when it fits the limit, like every later batch: nothing is read otherwise.
    WithinLimit,
}

/// Appends to `out` whole batches from the one containing `target`, keeping `out` within
/// `max_bytes`, except that the read's first batch is taken whole under `FirstBatch::Whole`.
pub fn collect(
    loc: &Located,
    target: i64,
    max_bytes: usize,
    first_batch: FirstBatch,
    out: &mut Vec<u8>,
) -> Result<Collected, ReadError> {
    let (position, first) = find_batch(loc, target)?;
    let first_len = first.total_len();
    let room = match out.is_empty() && first_batch == FirstBatch::Whole {
        true => max_bytes.max(first_len),
        false => max_bytes.saturating_sub(out.len()),
    };
    if first_len > room {
        return Ok(Collected { next_offset: target, segment_done: false });
    }
    let len = (room as u64).min(loc.view.len - position) as usize;
    let mut buf = vec![0u8; len];
    loc.view.file.read_exact_at(&mut buf, position).map_err(ReadError::Io)?;
    let (taken, next_offset) = whole_batches(&buf, loc.view.len - position, first.base_offset)?;
    out.extend_from_slice(&buf[..taken]);
    Ok(Collected { next_offset, segment_done: position + taken as u64 == loc.view.len })
}

/// The length of the prefix of `buf` made of whole valid batches with dense offsets from
/// `expected`, and the offset after them. `available` is how many bytes of the segment
/// follow `buf`'s start. Bad data after good batches ends the prefix: the good batches are
/// served and the next read, starting at the bad one, reports it.
fn whole_batches(buf: &[u8], available: u64, mut expected: i64) -> Result<(usize, i64), ReadError> {
    let mut taken = 0;
    while buf.len() - taken >= BATCH_HEADER_LEN {
        let rest = &buf[taken..];
        match next_whole_batch(rest, available - taken as u64, expected) {
            Ok(Some(header)) => {
                taken += header.total_len();
                expected = header.last_offset() + 1;
            }
            Ok(None) => break,
            Err(_) if taken > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok((taken, expected))
}

/// The valid batch at the start of `rest`, or None if it does not fit in `rest`.
fn next_whole_batch(rest: &[u8], available: u64, expected: i64) -> Result<Option<BatchHeader>, ReadError> {
    let corrupt = |reason| ReadError::Corrupt { offset: expected, reason };
    let header = BatchHeader::parse(rest).map_err(corrupt)?;
    check_header(&header, available).map_err(corrupt)?;
    if header.total_len() > rest.len() {
        return Ok(None);
    }
    check_offset(expected, &header)?;
    batch::validate(&rest[..header.total_len()], usize::MAX).map_err(corrupt)?;
    Ok(Some(header))
}

/// Walks headers from the located position to the batch containing `target`.
fn find_batch(loc: &Located, target: i64) -> Result<(u64, BatchHeader), ReadError> {
    let mut scanner = Scanner::new(&loc.view.file, loc.position, loc.view.len, loc.walk_chunk_bytes);
    let mut expected = loc.position_offset;
    loop {
        let position = scanner.position();
        let Some(header) = scanner.next_header().map_err(|e| scan_error(e, expected))? else {
            return Err(ReadError::Missing { offset: target, segment_end: expected });
        };
        check_offset(expected, &header)?;
        if header.last_offset() >= target {
            return Ok((position, header));
        }
        expected = header.last_offset() + 1;
    }
}

/// The first batch at or after `start_offset` in the segment with `max_timestamp >= timestamp`.
pub fn find_timestamp(loc: &Located, start_offset: i64, timestamp: i64) -> Result<Option<TimestampHit>, ReadError> {
    let mut scanner = Scanner::new(&loc.view.file, loc.position, loc.view.len, loc.walk_chunk_bytes);
    let mut expected = loc.position_offset;
    while let Some(header) = scanner.peek_header().map_err(|e| scan_error(e, expected))? {
        check_offset(expected, &header)?;
        if header.last_offset() >= start_offset && header.max_timestamp >= timestamp {
            let found = scanner.next_batch().map_err(|e| scan_error(e, expected))?;
            return Ok(found.map(|(header, bytes)| TimestampHit { header, batch: bytes.to_vec() }));
        }
        scanner.next_header().map_err(|e| scan_error(e, expected))?;
        expected = header.last_offset() + 1;
    }
    Ok(None)
}

/// Every batch header of a segment, in order.
pub fn headers(view: &SegmentView, chunk_bytes: usize) -> Result<Vec<BatchHeader>, ReadError> {
    let mut scanner = Scanner::new(&view.file, 0, view.len, chunk_bytes);
    let mut expected = view.base_offset;
    let mut headers = Vec::new();
    while let Some(header) = scanner.next_header().map_err(|e| scan_error(e, expected))? {
        check_offset(expected, &header)?;
        expected = header.last_offset() + 1;
        headers.push(header);
    }
    Ok(headers)
}

fn check_offset(expected: i64, header: &BatchHeader) -> Result<(), ReadError> {
    if header.base_offset != expected {
        return Err(ReadError::OffsetMismatch { expected, found: header.base_offset });
    }
    Ok(())
}

fn scan_error(e: ScanError, offset: i64) -> ReadError {
    match e {
        ScanError::Io(e) => ReadError::Io(e),
        ScanError::Corrupt { reason, .. } => ReadError::Corrupt { offset, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::SegmentView;
    use crate::test_batch::batch;
    use std::sync::Arc;

    /// A read past the end of the segment that should hold the offset (a hole) names the
    /// offset asked for and where the segment ends, not the same offset twice.
    #[test]
    fn read_past_segment_end_names_both_offsets() {
        let file = tempfile::tempfile().unwrap();
        let mut bytes = batch(3, 0, b"abc");
        bytes[..8].copy_from_slice(&1966i64.to_be_bytes());
        file.write_all_at(&bytes, 0).unwrap();
        let view = SegmentView { base_offset: 1966, file: Arc::new(file), len: bytes.len() as u64 };
        let loc = Located { view, position: 0, position_offset: 1966, walk_chunk_bytes: 4096 };
        let err = find_batch(&loc, 1975).unwrap_err();
        assert!(matches!(err, ReadError::Missing { offset: 1975, segment_end: 1969 }), "{err:?}");
        assert_eq!(err.to_string(), "offset 1975 is missing: its segment ends at offset 1969");
    }
}
