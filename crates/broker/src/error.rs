//! Errors of the broker core. Each listener maps them to its protocol's own codes.

use sluice_log::{AppendError, FlushError, OpenError, ReadError};
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BrokerError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("topic already exists")]
    TopicAlreadyExists,
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("batch too large: {size} bytes, limit {max}")]
    MessageTooLarge { size: usize, max: u32 },
    #[error("corrupt records: {0}")]
    CorruptMessage(String),
    /// A batch whose record count, offset range or records are inconsistent (Kafka `INVALID_RECORD`).
    #[error("invalid records: {0}")]
    InvalidRecord(String),
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    #[error("producer epoch {got} is older than current {current}")]
    InvalidProducerEpoch { got: i16, current: i16 },
    #[error("transactions are not supported")]
    TransactionsUnsupported,
    /// Broker-level storage trouble (state files, directories, locks), as text.
    #[error("storage error: {0}")]
    Storage(String),
    /// A partition log failed: the log's own error, and its I/O source, kept whole.
    #[error("storage error on {partition}: {source}")]
    Log {
        /// `<topic>-<index>`.
        partition: String,
        #[source]
        source: LogError,
    },
    /// This node does not lead the partition (Kafka `NOT_LEADER_OR_FOLLOWER`); the leader,
    /// when known.
    #[error("this node does not lead the partition (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    /// An admin change a cluster does not carry yet (Kafka `INVALID_REQUEST`).
    #[error("{0}")]
    NotInCluster(String),
    /// The request names an older leader epoch than the partition's (Kafka
    /// `FENCED_LEADER_EPOCH`: the client's metadata is stale, it refreshes).
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    /// The request names a newer leader epoch than this node knows (Kafka
    /// `UNKNOWN_LEADER_EPOCH`: this node is behind, the client retries).
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    /// The partition's Raft group could not commit the write (Kafka `NOT_ENOUGH_REPLICAS`,
    /// retriable).
    #[error("replication failed: {0}")]
    ReplicationFailed(String),
    /// The topic is being created (or its partition has no leader yet): Kafka
    /// `LEADER_NOT_AVAILABLE`, which clients retry.
    #[error("leader not available")]
    LeaderNotAvailable,
    /// More replicas asked than the cluster has nodes (Kafka `INVALID_REPLICATION_FACTOR`).
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    /// Creating the topic would exceed the broker's topic limit (Kafka `POLICY_VIOLATION`).
    #[error("the broker holds {max} topics, its limit; delete a topic or raise --max-topics")]
    TopicLimitReached { max: usize },
}

/// The error of one partition-log operation, as the log typed it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LogError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Flush(#[from] FlushError),
}

impl BrokerError {
    /// Whether the storage failed (Kafka `KAFKA_STORAGE_ERROR`, NSQ `E_PUB_FAILED`), as
    /// opposed to the request being refused.
    pub fn is_storage(&self) -> bool {
        matches!(self, BrokerError::Storage(_) | BrokerError::Log { .. })
    }
}

pub type BrokerResult<T> = Result<T, BrokerError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A log failure keeps its type and its I/O source all the way up, and counts as a
    /// storage error for the listeners' code mappings.
    #[test]
    fn log_errors_keep_type_and_source() {
        let io = std::io::Error::other("injected fsync failure");
        let error = BrokerError::Log { partition: "t-0".into(), source: LogError::Flush(FlushError::Io(io)) };
        assert!(error.is_storage());
        let Some(LogError::Flush(FlushError::Io(_))) = error.source().and_then(|s| s.downcast_ref::<LogError>()) else {
            panic!("source is not the log's flush error: {error:?}");
        };
        let root = error.source().and_then(|s| s.source()).expect("the io error underneath");
        assert_eq!(root.to_string(), "injected fsync failure");
        assert!(error.to_string().contains("t-0"));
        assert!(BrokerError::Storage("x".into()).is_storage());
        assert!(!BrokerError::CorruptMessage("x".into()).is_storage());
    }
}
