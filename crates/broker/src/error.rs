//! Errors of the broker core. Each listener maps them to its protocol's own codes.

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
    #[error("storage error: {0}")]
    Storage(String),
    /// Creating the topic would exceed the broker's topic limit (Kafka `POLICY_VIOLATION`).
    #[error("the broker holds {max} topics, its limit; delete a topic or raise --max-topics")]
    TopicLimitReached { max: usize },
}

pub type BrokerResult<T> = Result<T, BrokerError>;
