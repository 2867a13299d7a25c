//! Kafka error codes (from Kafka's `Errors` enum) and the mapping from core errors.

use sluice_broker::group::GroupError;
use sluice_broker::BrokerError;

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_REQUEST: i16 = 42;
pub const POLICY_VIOLATION: i16 = 44;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_CONFIG: i16 = 40;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
pub const INVALID_RECORD: i16 = 87;
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
pub const ELECTION_NOT_NEEDED: i16 = 84;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub const SECURITY_DISABLED: i16 = 54;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;

/// Kafka's code for a refused reassignment, election or node removal.
pub fn admin_code(error: &sluice_broker::reassignment::AdminError) -> i16 {
    use sluice_broker::reassignment::AdminError;
    match error {
        AdminError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        AdminError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
        AdminError::NoReassignmentInProgress => NO_REASSIGNMENT_IN_PROGRESS,
        AdminError::ElectionNotNeeded => ELECTION_NOT_NEEDED,
        AdminError::PreferredLeaderNotAvailable(_) => PREFERRED_LEADER_NOT_AVAILABLE,
        AdminError::Refused(_) => INVALID_REQUEST,
        AdminError::Unavailable(_) => REQUEST_TIMED_OUT,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// Kafka's code for a refused group operation.
pub fn group_code(error: &GroupError) -> i16 {
    match error {
        GroupError::InvalidGroupId => INVALID_GROUP_ID,
        GroupError::CoordinatorNotAvailable => COORDINATOR_NOT_AVAILABLE,
        GroupError::UnknownMemberId => UNKNOWN_MEMBER_ID,
        GroupError::IllegalGeneration => ILLEGAL_GENERATION,
        GroupError::RebalanceInProgress => REBALANCE_IN_PROGRESS,
        GroupError::InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL,
        GroupError::InvalidSessionTimeout => INVALID_SESSION_TIMEOUT,
        GroupError::MemberIdRequired => MEMBER_ID_REQUIRED,
        GroupError::FencedInstanceId => FENCED_INSTANCE_ID,
        GroupError::GroupIdNotFound => GROUP_ID_NOT_FOUND,
        GroupError::NonEmptyGroup => NON_EMPTY_GROUP,
        GroupError::GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED,
        GroupError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        GroupError::OffsetMetadataTooLarge => OFFSET_METADATA_TOO_LARGE,
        GroupError::GroupSubscribedToTopic => GROUP_SUBSCRIBED_TO_TOPIC,
        GroupError::Storage => KAFKA_STORAGE_ERROR,
        GroupError::NotCoordinator => NOT_COORDINATOR,
        GroupError::CoordinatorLoadInProgress => COORDINATOR_LOAD_IN_PROGRESS,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// `Some(code)` of an optional group error, `NONE` when there is none.
pub fn group_code_of(error: Option<GroupError>) -> i16 {
    error.as_ref().map_or(NONE, group_code)
}

pub fn code_of(error: &BrokerError) -> i16 {
    match error {
        BrokerError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        BrokerError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
        BrokerError::TopicAlreadyExists => TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidPartitions(_) => INVALID_PARTITIONS,
        BrokerError::InvalidConfig(_) => INVALID_CONFIG,
        BrokerError::MessageTooLarge { .. } => MESSAGE_TOO_LARGE,
        BrokerError::CorruptMessage(_) => CORRUPT_MESSAGE,
        BrokerError::InvalidRecord(_) => INVALID_RECORD,
        BrokerError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        BrokerError::OutOfOrderSequence { .. } => OUT_OF_ORDER_SEQUENCE_NUMBER,
        BrokerError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
        BrokerError::TransactionsUnsupported => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        BrokerError::Storage(_) | BrokerError::Log { .. } => KAFKA_STORAGE_ERROR,
        BrokerError::TopicLimitReached { .. } => POLICY_VIOLATION,
        BrokerError::NotLeader { .. } => NOT_LEADER_OR_FOLLOWER,
        BrokerError::NotInCluster(_) => INVALID_REQUEST,
        BrokerError::FencedLeaderEpoch { .. } => FENCED_LEADER_EPOCH,
        BrokerError::UnknownLeaderEpoch { .. } => UNKNOWN_LEADER_EPOCH,
        BrokerError::ReplicationFailed(_) => NOT_ENOUGH_REPLICAS,
        BrokerError::LeaderNotAvailable => LEADER_NOT_AVAILABLE,
        BrokerError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
        _ => UNKNOWN_SERVER_ERROR,
    }
}
