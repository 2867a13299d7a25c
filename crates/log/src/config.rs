//! Per-partition log settings. Each limit carries its unit last.

use std::time::Duration;

/// When appended bytes are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync before an `acks=all` acknowledgement; concurrent producers share one fsync
    /// (group commit). Survives `kill -9` and power loss.
    Always,
    /// fsync at least every interval; survives `kill -9` (page cache), may lose up to one
    /// interval on power loss.
    Interval(Duration),
    /// never fsync on the write path; the OS writes back. Survives `kill -9`, not power loss.
    Os,
}

/// Settings of one partition log. Changing them at run time goes through `PartitionLog::set_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this size (Kafka `segment.bytes`).
    pub segment_bytes_max: u64,
    /// Roll to a new segment once the active one is older than this (Kafka `segment.ms`).
    pub segment_age_max: Duration,
    /// Bytes of batches between two sparse index entries (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Delete oldest segments while the log is larger than this (Kafka `retention.bytes`, None = -1).
    pub retention_bytes_max: Option<u64>,
    /// Delete segments whose newest record is older than this (Kafka `retention.ms`, None = -1).
    pub retention_age_max: Option<Duration>,
    /// Largest single batch accepted (Kafka `max.message.bytes`).
    pub batch_bytes_max: u32,
    /// When appended data is fsynced.
    pub flush: FlushPolicy,
    /// Compact closed segments (Kafka `cleanup.policy` holding `compact`), or None.
    pub compaction: Option<Compaction>,
}

/// How a compacted log is cleaned (see `compact.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// A segment whose newest record is younger than this is not compacted yet (Kafka
    /// `min.compaction.lag.ms`), nor is any segment after it.
    pub lag_min: Duration,
    /// A dirty record older than this is compacted even below the dirty ratio, and the active
    /// segment rolls at this age so it can be (Kafka `max.compaction.lag.ms`, KIP-354);
    /// `None` is Kafka's default of never forcing a pass.
    pub lag_max: Option<Duration>,
    /// How long a tombstone (null value) stays after the segment holding it was compacted
    /// (Kafka `delete.retention.ms`), so a reader behind sees the deletion.
    pub tombstone_retention: Duration,
    /// A pass runs only once the dirty (never compacted) closed segments are at least this
    /// share of the compactable ones, in thousandths (Kafka `min.cleanable.dirty.ratio`,
    /// 0.5 = 500): each pass rewrites the whole compacted part, so this bounds its I/O to
    /// a multiple of what was written since the last pass.
    pub dirty_per_mille_min: u16,
}

impl LogConfig {
    /// The age at which the active segment rolls: `segment.ms`, or a compacted topic's
    /// `max.compaction.lag.ms` if shorter, as Kafka rolls (only closed segments are compacted).
    pub fn roll_age_max(&self) -> Duration {
        match self.compaction.and_then(|c| c.lag_max) {
            Some(lag_max) => self.segment_age_max.min(lag_max),
            None => self.segment_age_max,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 1 << 30,
            segment_age_max: Duration::from_secs(7 * 24 * 3600),
            index_interval_bytes: 4096,
            retention_bytes_max: None,
            retention_age_max: Some(Duration::from_secs(7 * 24 * 3600)),
            batch_bytes_max: 1024 * 1024 + 12,
            flush: FlushPolicy::Always,
            compaction: None,
        }
    }
}
