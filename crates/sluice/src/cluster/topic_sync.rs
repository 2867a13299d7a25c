//! Makes this node's copy of each topic follow the metadata: a deleted topic's Raft groups are
//! stopped and its data, committed offsets and NSQ channels removed; a new topic is created
//! with the metadata's id of it (its incarnation, never reused), new partitions are added,
//! and config changes reach the topic's logs.
//!
//! The incarnation, recorded with the local topic, is what keeps a re-created topic apart
//! from the one deleted: a node that was down (or behind) while a topic was deleted and
//! created again finds its local copy of another incarnation, removes it and starts the new
//! topic empty, never taking the old log as the new topic's Raft log. The partition groups'
//! ids carry the incarnation too (`GroupId::Partition::topic_id`), so until then the old
//! groups cannot reach the new ones.

use super::ClusterNode;
use anyhow::Context as _;
use sluice_broker::topic::Incarnation;
use sluice_broker::{BrokerError, Topic};
use sluice_cluster::meta::{ClusterState, TopicState};
use sluice_cluster::types::{GroupId, Raft};
use std::sync::Arc;

impl ClusterNode {
    /// Removes every local cluster topic the metadata no longer holds, or holds as another
    /// incarnation. Only a topic whose creation the metadata has applied is judged (ids are
    /// handed out in creation order): a state behind the local copy (a restart's replay up
    /// to the last saved commit) never deletes it. Topics without an incarnation that the
    /// metadata does not know (a node's single-node topics) are left alone.
    pub(super) async fn remove_stale_topics(&self, state: &ClusterState) -> anyhow::Result<()> {
        for topic in self.broker.topics() {
            let Some(local) = topic.incarnation() else { continue };
            let current = state.topics.get(&*topic.name).map(|t| t.id);
            if local < state.next_topic_id && current != Some(local) {
                self.remove_local_topic(&topic.name, current).await?;
            }
        }
        Ok(())
    }

    /// Stops the topic's partition groups of any incarnation but `keep`, then deletes the
    /// local topic as a single node does (data, committed offsets, NSQ channels). The groups
    /// stop first, so none writes into a directory a re-created topic may take.
    async fn remove_local_topic(&self, name: &str, keep: Option<u64>) -> anyhow::Result<()> {
        for raft in self.take_groups(name, keep)? {
            let _ = raft.shutdown().await;
        }
        let (broker, topic) = (Arc::clone(&self.broker), name.to_string());
        tokio::task::spawn_blocking(move || match broker.delete_local_topic(&topic) {
            Ok(()) | Err(BrokerError::UnknownTopicOrPartition) => Ok(()),
            Err(e) => Err(e),
        })
        .await?
        .with_context(|| format!("cannot delete topic {name} here"))?;
        tracing::info!(topic = name, "topic removed here, as the metadata group deleted it");
        Ok(())
    }

    /// Removes from the registry (so the transport no longer reaches them) the partition
    /// groups of topic `name` whose incarnation is not `keep`.
    fn take_groups(&self, name: &str, keep: Option<u64>) -> anyhow::Result<Vec<Raft>> {
        let mut groups = self.groups.write().map_err(|_| anyhow::anyhow!("group registry poisoned"))?;
        let stale: Vec<GroupId> = groups
            .keys()
            .filter(
                |g| matches!(g, GroupId::Partition { topic, topic_id, .. } if topic == name && Some(*topic_id) != keep),
            )
            .cloned()
            .collect();
        Ok(stale.iter().filter_map(|g| groups.remove(g)).collect())
    }

    /// Creates the topic here, or brings the local copy to the metadata's partition count
    /// and configs. A copy from before incarnations were recorded takes the metadata's.
    /// False when the local copy is of a newer incarnation than this node's metadata knows
    /// (its metadata is behind): nothing is done, and no partition group may start over it.
    pub(super) async fn sync_local_topic(
        &self,
        name: &str,
        topic: &TopicState,
        state: &ClusterState,
    ) -> anyhow::Result<bool> {
        let count = topic.partitions.len() as u32;
        let Some(local) = self.broker.topic(name) else {
            let id = Incarnation::new(state.cluster_id.as_deref().unwrap_or_default(), topic.id);
            let (broker, name, configs) = (Arc::clone(&self.broker), name.to_string(), topic.configs.clone());
            return tokio::task::spawn_blocking(move || {
                match broker.create_local_cluster_topic(&name, count, configs, id) {
                    Ok(_) | Err(BrokerError::TopicAlreadyExists) => Ok(()),
                    Err(e) => Err(e),
                }
                .with_context(|| format!("cannot create topic {name} here"))
            })
            .await?
            .map(|()| true);
        };
        match local.incarnation() {
            Some(id) if id == topic.id => {}
            Some(_) => return Ok(false),
            None => {
                let id = topic.id;
                blocking(&local, move |t| t.record_incarnation(id)).await?;
            }
        }
        if local.partition_count() < count {
            let (broker, topic_name) = (Arc::clone(&self.broker), name.to_string());
            tokio::task::spawn_blocking(move || broker.add_local_partitions(&topic_name, count))
                .await?
                .with_context(|| format!("cannot add partitions to topic {name} here"))?;
            tracing::info!(topic = name, partitions = count, "partitions added here");
        }
        if local.config().overrides != topic.configs {
            self.apply_configs(&local, topic).await;
        }
        Ok(true)
    }

    /// Applies the metadata's config overrides to the local topic and its logs. A config
    /// this node cannot take (the proposer checked it against its own defaults) is reported
    /// at each metadata change, without holding up the other topics.
    async fn apply_configs(&self, local: &Arc<Topic>, topic: &TopicState) {
        let defaults = self.broker.config().log_defaults.clone();
        let overrides = topic.configs.clone();
        let applied = blocking(local, move |t| {
            let config = sluice_broker::TopicConfig::from_overrides(overrides)?;
            t.set_config(config, &defaults)
        })
        .await;
        match applied {
            Ok(()) => tracing::info!(topic = %local.name, "topic configs applied here"),
            Err(e) => tracing::error!(topic = %local.name, error = %e, "cannot apply the topic's configs here"),
        }
    }
}

/// Runs a disk-touching step of a topic on a blocking thread.
async fn blocking(
    topic: &Arc<Topic>,
    step: impl FnOnce(&Topic) -> Result<(), BrokerError> + Send + 'static,
) -> anyhow::Result<()> {
    let topic = Arc::clone(topic);
    let name = topic.name.to_string();
    tokio::task::spawn_blocking(move || step(&topic)).await?.with_context(|| format!("topic {name}"))
}
