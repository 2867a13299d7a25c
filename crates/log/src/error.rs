//! One error enum per operation, so a signature shows exactly what can fail.

use crate::batch::BatchError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("unexpected file in log directory: {0}")]
    BadFileName(PathBuf),
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The bytes are not a sequence of valid v2 batches (Kafka `CORRUPT_MESSAGE`).
    #[error("corrupt batch at byte {at}: {reason}")]
    Corrupt { at: usize, reason: BatchError },
    /// One batch exceeds `batch_bytes_max` (Kafka `MESSAGE_TOO_LARGE`).
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: u32 },
    /// Nothing to append.
    #[error("empty append")]
    Empty,
    /// Writing failed; the log was rolled back to its previous end and stays usable.
    #[error("write failed: {0}")]
    Io(#[source] std::io::Error),
    /// An earlier fsync failed; the log refuses writes until reopened.
    #[error("log is poisoned by an earlier failed fsync")]
    Poisoned,
    /// Recovery found acknowledged data missing; refused until the operator accepts it.
    #[error("partition refused: {0}")]
    Damaged(String),
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Kafka `OFFSET_OUT_OF_RANGE`.
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error("read failed: {0}")]
    Io(#[source] std::io::Error),
    /// Stored bytes failed validation: never served.
    #[error("corrupt data at offset {offset}: {reason}")]
    Corrupt { offset: i64, reason: BatchError },
    /// Stored batches are valid but not where their offsets say (a damaged index or
    /// segment): never served.
    #[error("stored offsets out of order: expected a batch at offset {expected}, found one at {found}")]
    OffsetMismatch { expected: i64, found: i64 },
    /// The segment that should hold `offset` ends before it (a hole in the log).
    #[error("offset {offset} is missing: its segment ends at offset {segment_end}")]
    Missing { offset: i64, segment_end: i64 },
    /// Recovery found acknowledged data missing; refused until the operator accepts it.
    #[error("partition refused: {0}")]
    Damaged(String),
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FlushError {
    #[error("fsync failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("log is poisoned by an earlier failed fsync")]
    Poisoned,
}

/// Why `truncate_suffix` or `reset_to` did nothing (or, for `Io`, failed part way: the log is
/// then poisoned and refused until reopened, and recovery settles it from the files).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TruncateError {
    #[error("offset {offset} is below the log start {log_start}")]
    BelowLogStart { offset: i64, log_start: i64 },
    /// The cut would split the batch starting at `batch_base`: the log holds whole batches.
    #[error("offset {offset} is inside the batch at {batch_base}, not at a batch boundary")]
    NotBatchBoundary { offset: i64, batch_base: i64 },
    #[error("truncation i/o failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("reopening the cut segment failed: {0}")]
    Open(#[source] OpenError),
    #[error("log is poisoned by an earlier failed fsync")]
    Poisoned,
}

/// Why a compaction pass stopped. The log itself is unchanged by a failed pass: only
/// segments fully rewritten and fsynced are ever swapped in.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CompactError {
    #[error("compaction i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// A stored batch could not be read record by record: the segment is left as it is.
    #[error("segment {segment} cannot be compacted: batch at offset {offset}: {reason}")]
    Corrupt { segment: i64, offset: i64, reason: String },
}
