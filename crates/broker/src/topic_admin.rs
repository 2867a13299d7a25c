//! Topic changes made where the topics live: on this node alone, or, in a cluster, through
//! the metadata group so every node applies them (each listener's admin call lands here).

use crate::broker::Broker;
use crate::error::{BrokerError, BrokerResult};
use std::collections::BTreeMap;

impl Broker {
    /// Deletes the topic, its data, committed offsets and NSQ channels: here on a single
    /// node, on every node in a cluster (answered once this node has removed it).
    pub async fn delete_topic_anywhere(&self, name: &str) -> BrokerResult<()> {
        if crate::group::offsets_partition::is_internal_topic(name) {
            // Deleting it would drop every group's committed offsets.
            return Err(BrokerError::InvalidTopic(format!("{name} is an internal topic and cannot be deleted")));
        }
        match self.cluster() {
            None => self.delete_topic(name),
            Some(cluster) => cluster.delete_topic(name).await,
        }
    }

    /// Grows the topic to `total` partitions (never shrinks, as Kafka); `validate_only`
    /// checks without changing anything.
    pub async fn create_partitions_anywhere(&self, name: &str, total: u32, validate_only: bool) -> BrokerResult<()> {
        if crate::group::offsets_partition::is_internal_topic(name) {
            // Groups map to its partitions by their count: more would move every group.
            return Err(BrokerError::InvalidPartitions(format!("{name} is an internal topic; its count is fixed")));
        }
        let max = self.config().partitions_per_topic_max;
        if total > max {
            return Err(BrokerError::InvalidPartitions(format!("at most {max} partitions per topic")));
        }
        match self.cluster() {
            Some(cluster) => cluster.create_partitions(name, total, validate_only).await,
            None => {
                let current = self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?.partition_count();
                if total <= current {
                    return Err(BrokerError::InvalidPartitions(format!(
                        "topic has {current} partitions; the count can only grow"
                    )));
                }
                if validate_only {
                    return Ok(());
                }
                self.create_partitions(name, total)
            }
        }
    }

    /// Replaces the topic's config overrides, checked first (`InvalidConfig`; nothing
    /// changes on error); `validate_only` checks without changing anything.
    pub async fn set_topic_config_anywhere(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> BrokerResult<()> {
        let Some(cluster) = self.cluster() else {
            return self.set_topic_config(name, overrides, validate_only);
        };
        self.check_topic_config(overrides.clone())?;
        cluster.set_topic_configs(name, overrides, validate_only).await
    }
}
