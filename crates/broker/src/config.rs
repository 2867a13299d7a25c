//! Broker-wide settings: where data lives, what this node tells clients, topic defaults.

use crate::clients::ClientLimits;
use crate::group::GroupConfig;
use sluice_log::LogConfig;
use std::path::PathBuf;

/// Settings the broker core needs; the binary builds it from defaults, TOML, env and flags.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Root of all state: `topics/`, `producer_ids`, `cluster_id`.
    pub data_dir: PathBuf,
    /// This node's id in Metadata; fixed at 0 until clustering exists.
    pub node_id: i32,
    /// Host clients are told to connect to (Metadata).
    pub advertised_host: String,
    /// Port clients are told to connect to (Metadata).
    pub advertised_port: u16,
    /// Create unknown topics on Metadata and Produce.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, or of a CreateTopics with `num_partitions = -1`.
    pub default_partitions: u32,
    /// Upper bound on partitions per topic: bounds memory and file handles per topic.
    pub partitions_per_topic_max: u32,
    /// Upper bound on topics (0 = none): each partition holds open files and memory, so a
    /// client auto-creating topics in a loop must hit a clear error, not the fd limit.
    pub topics_max: usize,
    /// Log settings topics start from; per-topic configs override them.
    pub log_defaults: LogConfig,
    /// Consumer-group settings (session timeout bounds, offsets retention).
    pub groups: GroupConfig,
    /// A durable NSQ channel keeps the segments it has not finished past retention while
    /// the partition is at most this large; beyond it retention deletes as usual, so a
    /// stalled channel cannot fill the disk.
    pub retention_hold_bytes_max: u64,
    /// Connections admitted at once, across the Kafka and NSQ listeners.
    pub client_limits: ClientLimits,
    /// Partitions (`topic-N`, or `topic` for all of its partitions) whose lost data the
    /// operator accepts at this start: refused partitions among them serve again and
    /// their recovery point is reset to their log end.
    pub accept_data_loss_partitions: Vec<String>,
}

/// 10 GiB per partition: room for a channel that falls behind for hours at a typical rate,
/// small enough that one stalled channel cannot take a whole disk.
pub const RETENTION_HOLD_BYTES_MAX_DEFAULT: u64 = 10 << 30;

/// Ten thousand single-partition topics are 30,000 files (log and two indexes each); the
/// shared file cache keeps only some open, so this bounds memory and start-up time, not
/// descriptors.
pub const TOPICS_MAX_DEFAULT: usize = 10_000;

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        BrokerConfig {
            data_dir: data_dir.into(),
            node_id: 0,
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            auto_create_topics: true,
            default_partitions: 1,
            partitions_per_topic_max: 10_000,
            topics_max: TOPICS_MAX_DEFAULT,
            log_defaults: LogConfig::default(),
            groups: GroupConfig::default(),
            retention_hold_bytes_max: RETENTION_HOLD_BYTES_MAX_DEFAULT,
            client_limits: ClientLimits::default(),
            accept_data_loss_partitions: Vec::new(),
        }
    }
}
