//! Sluice broker core: topics, partitions, idempotent producer state and background
//! upkeep. Protocol-agnostic: the Kafka and NSQ listeners both call these functions and
//! map `BrokerError` to their own error codes; neither touches storage directly.

pub mod accept;
mod broker;
pub mod browse;
pub mod channel;
pub mod clients;
pub mod cluster_view;
pub mod compactor;
pub mod config;
pub mod delete_records;
pub mod error;
pub mod group;
pub mod health;
pub mod maintenance;
pub mod metrics;
pub mod names;
pub mod partition;
pub mod producer_ids;
pub mod producer_state;
pub mod reassignment;
mod replicated_delete_records;
mod replicated_retention;
pub mod replication;
pub mod topic;
mod topic_admin;
pub mod topic_config;

pub use broker::{Broker, RetentionHolder};
pub use config::BrokerConfig;
pub use error::{BrokerError, BrokerResult, LogError};
pub use partition::{AppendOutcome, Durability, Partition, Submitted, Traffic};
/// Re-exported so listeners need not depend on the storage crate.
pub use sluice_log::{batch, BatchHeader, Durable, FirstBatch, FlushPolicy, LogConfig, ReadResult, TimestampHit};
pub use topic::Topic;
pub use topic_config::{config_kind, ConfigEntry, ConfigKind, TopicConfig, ACCEPTED_KEYS, TOPIC_CONFIG_KEYS};
