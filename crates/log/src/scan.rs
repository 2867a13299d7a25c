//! Walking the batches of a segment file with bounded, chunked positional reads.
//!
//! Every length read from disk is checked against the bytes that are really there
//! before anything is allocated for it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::batch::{self, BatchError, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

/// Smallest `batch_length`: a header and no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

#[derive(Debug)]
pub enum ScanError {
    Io(io::Error),
    /// The batch starting at `position` is not valid.
    Corrupt {
        position: u64,
        reason: BatchError,
    },
}

/// A forward cursor over the batches in `[position, end)` of a segment file.
pub struct Scanner<'a> {
    file: &'a File,
    /// Committed end of the segment: bytes past it are never looked at.
    end: u64,
    position: u64,
    /// Bytes read ahead, starting at file position `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
    chunk_bytes: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a File, position: u64, end: u64, chunk_bytes: usize) -> Self {
        Scanner { file, end, position, buf: Vec::new(), buf_start: 0, chunk_bytes: chunk_bytes.max(BATCH_HEADER_LEN) }
    }

    /// Where the next batch starts.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next batch's checked header (length and magic, not CRC), without moving on.
    pub fn peek_header(&mut self) -> Result<Option<BatchHeader>, ScanError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let at = self.position;
        let available = self.end - at;
        let header_bytes = self.bytes(at, (BATCH_HEADER_LEN as u64).min(available) as usize)?;
        let header = BatchHeader::parse(header_bytes).map_err(|reason| corrupt(at, reason))?;
        check_header(&header, available).map_err(|reason| corrupt(at, reason))?;
        Ok(Some(header))
    }

    /// The next batch's header, moving past the batch without reading its records.
    pub fn next_header(&mut self) -> Result<Option<BatchHeader>, ScanError> {
        let header = self.peek_header()?;
        if let Some(h) = &header {
            self.position += h.total_len() as u64;
        }
        Ok(header)
    }

    /// The next batch, whole and CRC-checked.
    pub fn next_batch(&mut self) -> Result<Option<(BatchHeader, &[u8])>, ScanError> {
        let Some(header) = self.peek_header()? else {
            return Ok(None);
        };
        let at = self.position;
        let len = header.total_len();
        self.position += len as u64;
        let bytes = self.bytes(at, len)?;
        batch::validate(bytes, usize::MAX).map_err(|reason| corrupt(at, reason))?;
        Ok(Some((header, bytes)))
    }

    /// `len` bytes at `at`; the caller has checked they lie before `end`.
    fn bytes(&mut self, at: u64, len: usize) -> Result<&[u8], ScanError> {
        let covered = at >= self.buf_start && at + len as u64 <= self.buf_start + self.buf.len() as u64;
        if !covered {
            let want = len.max(self.chunk_bytes).min((self.end - at) as usize);
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at).map_err(ScanError::Io)?;
            self.buf_start = at;
        }
        let from = (at - self.buf_start) as usize;
        Ok(&self.buf[from..from + len])
    }
}

/// Checks a parsed header against the `available` bytes from its start to the end.
pub fn check_header(header: &BatchHeader, available: u64) -> Result<(), BatchError> {
    if header.batch_length < BATCH_LENGTH_MIN {
        return Err(BatchError::BadLength(header.batch_length));
    }
    if header.total_len() as u64 > available {
        return Err(BatchError::Incomplete { needed: header.total_len(), have: available as usize });
    }
    if header.magic != 2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::BadOffsetDelta(header.last_offset_delta));
    }
    Ok(())
}

fn corrupt(position: u64, reason: BatchError) -> ScanError {
    ScanError::Corrupt { position, reason }
}
