//! `PartitionLog`: the public face of one partition's directory of segments.

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::{AppendError, FlushError, OpenError, ReadError};
use std::path::{Path, PathBuf};

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest `max_timestamp` among the appended batches.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Concatenated whole batches, starting with the batch that contains the requested offset.
    pub bytes: Vec<u8>,
    pub log_start_offset: i64,
    /// Next offset to be assigned (Kafka's high watermark on a single node).
    pub log_end_offset: i64,
}

/// The first batch whose `max_timestamp` is at or after a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampHit {
    pub header: BatchHeader,
    /// The whole batch, so the caller can find the exact record (it may be compressed).
    pub batch: Vec<u8>,
}

/// What recovery found and repaired on open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    /// Bytes cut from the tail of the last segment (torn write or corruption).
    pub truncated_bytes: u64,
    /// Index files rebuilt because they were missing or damaged.
    pub indexes_rebuilt: usize,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
}

pub struct PartitionLog {
    dir: PathBuf,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering the last segment.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog, OpenError> {
        let _ = config;
        Ok(PartitionLog { dir: dir.into() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        todo!()
    }

    /// Validates `batches` (one or more concatenated v2 batches), assigns consecutive
    /// offsets from the log end by rewriting each `base_offset`, and writes them.
    /// Nothing is written unless every batch is valid. Does not fsync: see `sync_through`.
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, AppendError> {
        let _ = batches;
        todo!()
    }

    /// Whole batches from the one containing `offset`, at most `max_bytes` in total except
    /// that the first batch is always returned whole. `offset == log_end` gives no bytes.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, ReadError> {
        let _ = (offset, max_bytes);
        todo!()
    }

    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }

    /// The first batch whose `max_timestamp >= timestamp_ms`, or None if there is none.
    pub fn find_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampHit>, ReadError> {
        let _ = timestamp_ms;
        todo!()
    }

    /// Headers of every batch in the newest `segments` segments, oldest first
    /// (used to rebuild idempotent producer state after a restart).
    pub fn recent_batch_headers(&self, segments: usize) -> Result<Vec<BatchHeader>, ReadError> {
        let _ = segments;
        todo!()
    }

    pub fn size_bytes(&self) -> u64 {
        todo!()
    }

    pub fn segment_count(&self) -> usize {
        todo!()
    }

    pub fn config(&self) -> LogConfig {
        todo!()
    }

    pub fn set_config(&self, config: LogConfig) {
        let _ = config;
        todo!()
    }

    /// Deletes whole segments (never the active one) past retention; rolls an aged active segment.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, FlushError> {
        let _ = now_ms;
        todo!()
    }

    /// Blocks until every record below `offset` is fsynced. Concurrent callers share fsyncs
    /// (group commit): one caller syncs while the others wait for its result.
    pub fn sync_through(&self, offset: i64) -> Result<(), FlushError> {
        let _ = offset;
        todo!()
    }

    /// fsyncs everything appended so far.
    pub fn flush(&self) -> Result<(), FlushError> {
        todo!()
    }

    /// Offset below which every record is known to be fsynced.
    pub fn durable_offset(&self) -> i64 {
        todo!()
    }

    /// Flushes and closes the log.
    pub fn close(self) -> Result<(), FlushError> {
        todo!()
    }

    /// Closes the log and removes its directory.
    pub fn delete(self) -> std::io::Result<()> {
        todo!()
    }
}
