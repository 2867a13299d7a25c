//! Makes the local broker follow the metadata state: every topic the metadata group holds
//! exists here, and every partition replica assigned to this node runs its Raft group over
//! the partition's log. Each partition group's new leader reports itself to the metadata
//! group, so nodes that do not replicate the partition can name its leader.

use super::replica::PartitionReplica;
use super::ClusterNode;
use anyhow::Context as _;
use openraft::{BasicNode, ServerState};
use sluice_broker::Partition;
use sluice_cluster::meta::{ClusterState, MetaCommand};
use sluice_cluster::storage::{self, ApplyObserver};
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use tokio::sync::watch;

impl ClusterNode {
    /// Reconciles after every applied metadata change until shutdown.
    pub(super) async fn follow_metadata(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut state = self.state.clone();
        loop {
            let current = state.borrow_and_update().clone();
            if let Err(e) = self.reconcile(&current).await {
                tracing::warn!(error = %e, "cannot follow the metadata yet");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                _ = stopped.changed() => return,
            }
        }
    }

    async fn reconcile(self: &Arc<Self>, state: &ClusterState) -> anyhow::Result<()> {
        self.remove_stale_topics(state).await?;
        for (name, topic) in &state.topics {
            if !self.sync_local_topic(name, topic, state).await? {
                continue;
            }
            for (index, partition) in topic.partitions.iter().enumerate() {
                let group = GroupId::Partition { topic: name.clone(), partition: index as i32, topic_id: topic.id };
                if super::reassign::hosts(partition, self.node_id) && self.group(&group).is_none() {
                    self.start_partition(&group, &partition.replicas, state)
                        .await
                        .with_context(|| format!("cannot start the Raft group of {name}-{index}"))?;
                }
            }
        }
        self.follow_moves(state);
        self.drop_replicas(state).await
    }

    /// Opens the partition's Raft storage over its log and starts its group; a new group is
    /// initialized by every replica with the same voters (so they agree), and its preferred
    /// leader (the first replica) calls the first election, which keeps leaders balanced.
    async fn start_partition(
        self: &Arc<Self>,
        group: &GroupId,
        replicas: &[NodeId],
        state: &ClusterState,
    ) -> anyhow::Result<()> {
        let GroupId::Partition { topic, partition: index, topic_id } = group else {
            anyhow::bail!("{group} is not a partition group");
        };
        let (topic, index, topic_id) = (topic.as_str(), *index, *topic_id);
        let partition = self.broker.partition(topic, index)?;
        partition.forget_restored_producers()?;
        let group = group.clone();
        let dir = partition.log().dir().join(sluice_log::RAFT_DIR);
        sluice_log::durable_dir::create_dir_all(&dir)?;
        let log = partition.log_handle();
        let observer: Arc<dyn ApplyObserver> = Arc::new(Applied(Arc::downgrade(&partition)));
        let (store, machine) = tokio::task::spawn_blocking(move || storage::open_group_storage(&dir, log, observer))
            .await?
            .context("cannot open the partition's Raft storage")?;
        let committed = machine.committed_watch();
        let network = self.transport.network(group.clone());
        let raft = Raft::new(self.node_id, Arc::clone(&self.raft_config), network, store.clone(), machine).await?;
        self.groups
            .write()
            .map_err(|_| anyhow::anyhow!("group registry poisoned"))?
            .insert(group.clone(), raft.clone());
        let handing_over = self.hand_overs.flag(&group);
        let replica = PartitionReplica::new(raft.clone(), store, handing_over, Arc::clone(&self.deaths));
        partition.attach_replica(Arc::new(replica))?;
        tokio::spawn(follow_committed(Arc::downgrade(&partition), committed));
        if raft.is_initialized().await? {
            super::catch_up::hold_elections_until_caught_up(raft.clone(), Arc::clone(&self.deaths));
        } else if replicas.contains(&self.node_id) {
            // A move's new replica is not initialized: it learns the group from its leader.
            let voters: BTreeMap<NodeId, BasicNode> = replicas
                .iter()
                .filter_map(|id| state.nodes.get(id).map(|n| (*id, BasicNode { addr: n.cluster_addr.clone() })))
                .collect();
            if voters.len() == replicas.len()
                && raft.initialize(voters).await.is_ok()
                && replicas.first() == Some(&self.node_id)
            {
                let _ = raft.trigger().elect().await;
            }
        }
        tokio::spawn(Arc::clone(self).track_isr(topic.to_string(), index, topic_id, raft.clone()));
        tokio::spawn(Arc::clone(self).report_leadership(topic.to_string(), index, topic_id, raft));
        Ok(())
    }

    /// Publishes this node as the partition's leader in the metadata group once per term, when
    /// its term's first entry is applied (Kafka's leader epoch becomes visible then).
    async fn report_leadership(self: Arc<Self>, topic: String, partition: i32, topic_id: u64, raft: Raft) {
        let mut metrics = raft.metrics();
        let mut reported_term = 0;
        loop {
            let won = {
                let m = metrics.borrow_and_update();
                let own_term_applied = m.last_applied.is_some_and(|a| a.leader_id.term == m.current_term);
                (m.state == ServerState::Leader && own_term_applied && m.current_term != reported_term)
                    .then_some(m.current_term)
            };
            if let Some(term) = won {
                let epoch = i32::try_from(term).unwrap_or(i32::MAX);
                let (leader, topic_id) = (self.node_id, Some(topic_id));
                let report = MetaCommand::ReportLeader { topic: topic.clone(), partition, leader, epoch, topic_id };
                match self.propose_meta(&report).await {
                    Ok(_) => reported_term = term,
                    Err(e) => tracing::warn!(topic, partition, error = %e, "cannot report partition leadership"),
                }
                tracing::info!(topic, partition, epoch, "leads the partition");
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Feeds the group's committed offset to the partition (its visible end).
async fn follow_committed(partition: Weak<Partition>, mut committed: watch::Receiver<i64>) {
    loop {
        let next = *committed.borrow_and_update();
        let Some(p) = partition.upgrade() else { return };
        p.set_committed(next);
        drop(p);
        if committed.changed().await.is_err() {
            return;
        }
    }
}

/// What the partition's state machine tells the broker about applied batches.
struct Applied(Weak<Partition>);

impl ApplyObserver for Applied {
    fn applied(&self, batches: &[u8], first_offset: i64, _last_offset: i64) {
        if let Some(p) = self.0.upgrade() {
            p.on_applied(batches, first_offset);
        }
    }

    fn reset(&self, next_offset: i64) {
        if let Some(p) = self.0.upgrade() {
            p.set_committed(next_offset);
        }
    }
}
