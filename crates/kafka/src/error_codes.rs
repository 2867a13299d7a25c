//! Kafka error codes (from Kafka's `Errors` enum) and the mapping from core errors.

use sluice_broker::BrokerError;

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_REQUEST: i16 = 42;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_CONFIG: i16 = 40;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;

pub fn code_of(error: &BrokerError) -> i16 {
    match error {
        BrokerError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        BrokerError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
        BrokerError::TopicAlreadyExists => TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidPartitions(_) => INVALID_PARTITIONS,
        BrokerError::InvalidConfig(_) => INVALID_CONFIG,
        BrokerError::MessageTooLarge { .. } => MESSAGE_TOO_LARGE,
        BrokerError::CorruptMessage(_) => CORRUPT_MESSAGE,
        BrokerError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        BrokerError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        BrokerError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
        BrokerError::TransactionsUnsupported => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        BrokerError::Storage(_) => KAFKA_STORAGE_ERROR,
        _ => UNKNOWN_SERVER_ERROR,
    }
}
