//! The proposer's side of topic changes in a cluster: DeleteTopics, CreatePartitions and
//! config changes become metadata commands, checked first against the metadata as applied
//! here so the caller gets Kafka's answer (unknown topic, fewer partitions, bad config), and
//! answered once this node has applied the change (`topic_sync` does it on every node).

use super::view::placement_error;
use super::ClusterNode;
use sluice_broker::{BrokerError, BrokerResult};
use sluice_cluster::meta::{assign_replicas, MetaCommand, MetaReply};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a change waits to be applied here once the metadata group committed it: the
/// reconciler's work (stopping or starting Raft groups, a first election) on a busy node.
const APPLIED_WAIT: Duration = Duration::from_secs(10);
/// How often the wait looks again.
const APPLIED_POLL: Duration = Duration::from_millis(20);

/// The cluster node behind the broker's view, or the error the broker gets after it stopped.
pub(super) fn stopped_or(node: Option<Arc<ClusterNode>>) -> BrokerResult<Arc<ClusterNode>> {
    node.ok_or_else(|| BrokerError::Storage("the cluster node stopped".into()))
}

impl ClusterNode {
    pub(super) async fn delete_topic(&self, name: &str) -> BrokerResult<()> {
        let id = self.state().topics.get(name).map(|t| t.id).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let command = MetaCommand::DeleteTopic { name: name.to_string() };
        expect_ok(self.propose_meta(&command).await?, BrokerError::Storage)?;
        // Gone here once the local copy of that incarnation is (a re-created one may follow).
        self.wait_applied(|| self.broker.topic(name).is_none_or(|t| t.incarnation() != Some(id))).await;
        Ok(())
    }

    /// Adds `total - current` partitions, their replicas placed as a new topic's (with the
    /// topic's replication factor), and waits until this node serves them.
    pub(super) async fn create_partitions(&self, name: &str, total: u32, validate_only: bool) -> BrokerResult<()> {
        let state = self.state();
        let topic = state.topics.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let current = topic.partitions.len() as u32;
        if total <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic has {current} partitions; the count can only grow"
            )));
        }
        let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let added = (total - current) as i32;
        let new = assign_replicas(&self.nodes(), &state, added, factor as i16).map_err(placement_error)?;
        if validate_only {
            return Ok(());
        }
        let command = MetaCommand::CreatePartitions { name: name.to_string(), new, count_before: Some(current) };
        expect_ok(self.propose_meta(&command).await?, BrokerError::InvalidPartitions)?;
        self.wait_applied(|| self.broker.topic(name).is_some_and(|t| t.partition_count() >= total)).await;
        self.wait_until_served(name).await;
        Ok(())
    }

    /// Replaces the topic's overrides (the broker checked them) and waits until this node's
    /// copy of the topic has them.
    pub(super) async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> BrokerResult<()> {
        if !self.state().topics.contains_key(name) {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        if validate_only {
            return Ok(());
        }
        let command = MetaCommand::SetTopicConfigs { name: name.to_string(), configs: configs.clone() };
        expect_ok(self.propose_meta(&command).await?, BrokerError::InvalidConfig)?;
        self.wait_applied(|| self.broker.topic(name).is_none_or(|t| t.config().overrides == configs)).await;
        Ok(())
    }

    /// DeleteRecords on a replicated partition: the new log start is recorded in the metadata,
    /// which every replica follows (`sluice_broker::replicated_delete_records`).
    pub(super) async fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> BrokerResult<()> {
        let topic_id = self.state().topics.get(topic).map(|t| t.id).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let command =
            MetaCommand::DeleteRecords { topic: topic.to_string(), partition, offset, topic_id: Some(topic_id) };
        match self.propose_meta(&command).await? {
            MetaReply::Ok => Ok(()),
            MetaReply::UnknownTopic => Err(BrokerError::UnknownTopicOrPartition),
            other => Err(BrokerError::Storage(format!("DeleteRecords refused: {other:?}"))),
        }
    }

    /// Waits (bounded) until `applied` holds: the reconciler has caught up with the change.
    async fn wait_applied(&self, applied: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + APPLIED_WAIT;
        while !applied() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(APPLIED_POLL).await;
        }
    }
}

/// The metadata group's answer to a topic change, as the broker's error: `invalid` says
/// what a refused command means for this kind of change.
fn expect_ok(reply: MetaReply, invalid: fn(String) -> BrokerError) -> BrokerResult<()> {
    match reply {
        MetaReply::Ok => Ok(()),
        MetaReply::UnknownTopic => Err(BrokerError::UnknownTopicOrPartition),
        MetaReply::Invalid(why) => Err(invalid(why)),
        other => Err(BrokerError::Storage(format!("unexpected metadata reply {other:?}"))),
    }
}
