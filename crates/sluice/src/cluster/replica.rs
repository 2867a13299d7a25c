//! A partition's Raft group as the broker sees it (`sluice_broker::replication::Replica`):
//! leadership from openraft's metrics, proposals through `client_write_ff` so they enter the
//! log in the order the partition's proposer hands them over. Each proposal is tagged for the
//! log store's append, which tells it its offsets once the leader's log holds it (acks=1,
//! `sluice_cluster::storage::written`).

use super::failover::PeerDeaths;
use openraft::error::ClientWriteError;
use openraft::{BasicNode, RaftMetrics, ServerState};
use sluice_broker::replication::{Commit, Proposed, Replica, ReplicaError, Role, Written};
use sluice_cluster::storage::LogStore;
use sluice_cluster::types::{Batches, NodeId, Raft};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

pub struct PartitionReplica {
    raft: Raft,
    /// Shares the group's log store with Raft, for the epochs in its side index.
    store: LogStore,
    /// Where this node's current leadership began, to know when it may serve (`role`).
    leading: Mutex<LeadershipStart>,
    /// Set while this leader hands its leadership over (`hand_over`): it serves no writes.
    handing_over: Arc<AtomicBool>,
    /// Peers known dead: never named as the leader (`failover`).
    deaths: Arc<PeerDeaths>,
}

/// The term this node was last seen leading in and its last log index when first seen so.
#[derive(Debug, Default, Clone, Copy)]
struct LeadershipStart {
    term: u64,
    last_log_index: Option<u64>,
}

impl PartitionReplica {
    pub fn new(
        raft: Raft,
        store: LogStore,
        handing_over: Arc<AtomicBool>,
        deaths: Arc<PeerDeaths>,
    ) -> PartitionReplica {
        PartitionReplica { raft, store, leading: Mutex::new(LeadershipStart::default()), handing_over, deaths }
    }

    /// Whether this leader has applied everything its log held when its leadership was first
    /// seen, so its producer state covers every committed batch. An entry of its own term
    /// applied is not enough: openraft restores a restarted leader whose vote was committed
    /// as leader of the same term at once, while it is still re-applying its log (whose later
    /// entries are of that term too).
    fn caught_up_as_leader(&self, m: &RaftMetrics<NodeId, BasicNode>) -> bool {
        let Ok(mut start) = self.leading.lock() else { return false };
        if start.term != m.current_term {
            *start = LeadershipStart { term: m.current_term, last_log_index: m.last_log_index };
        }
        let applied = m.last_applied.filter(|a| a.leader_id.term == m.current_term);
        applied.is_some_and(|a| Some(a.index) >= start.last_log_index)
    }
}

/// Kafka broker ids are i32; node ids are checked to fit when the settings are read.
pub fn broker_id(node: NodeId) -> i32 {
    i32::try_from(node).unwrap_or(i32::MAX)
}

/// Kafka's leader epoch is the Raft term (one leader per term).
fn epoch_of(term: u64) -> i32 {
    i32::try_from(term).unwrap_or(i32::MAX)
}

impl Replica for PartitionReplica {
    fn role(&self) -> Role {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        // A leader serves only once it has applied everything committed before its term (and
        // an entry of its own term): until then its producer state may miss batches.
        // A node restarted as the leader of its old term (openraft 0.9 restores a committed
        // vote of its own) has applied that term's entries, yet no other voter follows it any
        // more: it leads only once a quorum has acknowledged it in this term. Until then it
        // names no leader, so clients ask again instead of reading from it (a sarama consumer
        // kept fetching from such a node).
        let confirmed = m.millis_since_quorum_ack.is_some();
        let is_leader = m.state == ServerState::Leader
            && confirmed
            && self.caught_up_as_leader(&m)
            && !super::hand_over::handing_over(&self.handing_over);
        // A leader whose process is gone is not named: clients then ask again soon; nor is
        // this node while it is not yet a leader that serves.
        let leader = self.deaths.dead_filtered(m.current_leader).filter(|l| *l != m.id || is_leader);
        Role { leader: leader.map(broker_id), epoch: epoch_of(m.current_term), is_leader }
    }

    fn propose(
        &self,
        mut batches: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<Proposed, ReplicaError>> + Send + '_>> {
        Box::pin(async move {
            // Registered before Raft sees the entry, so the append cannot come first.
            let (written, forget) = match self.store.written_waiters().register(&mut batches) {
                Some(r) => (Some(r.written), Some(r.forget)),
                None => (None, None),
            };
            let replied = self
                .raft
                .client_write_ff(Batches(batches.into()))
                .await
                .map_err(|e| ReplicaError::Failed(e.to_string()))?;
            let written: Written = Box::pin(async move {
                match written {
                    Some(appended) => appended.await.ok(),
                    None => None,
                }
            });
            let commit: Commit = Box::pin(async move {
                // Held until the outcome is known: an entry that never reached the log must
                // not leave its waiter behind.
                let _forget = forget;
                let response = replied
                    .await
                    .map_err(|_| ReplicaError::Failed("the partition's Raft group stopped".into()))?
                    .map_err(|e| match e {
                        ClientWriteError::ForwardToLeader(f) => {
                            ReplicaError::NotLeader { leader: f.leader_id.map(broker_id) }
                        }
                        other => ReplicaError::Failed(other.to_string()),
                    })?;
                response.data.offsets.ok_or_else(|| ReplicaError::Failed("the entry held no records".into()))
            });
            Ok(Proposed { written, committed: commit })
        })
    }

    fn epoch_end_offset(&self, epoch: i32) -> Option<(i32, i64)> {
        let (found, end) = self.store.epoch_end_offset(u64::try_from(epoch).ok()?)?;
        Some((epoch_of(found), end))
    }

    fn release_below(&self, offset: i64) -> Pin<Box<dyn Future<Output = i64> + Send + '_>> {
        Box::pin(super::log_release::release_below(&self.raft, &self.store, offset))
    }

    fn confirm_leadership(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.raft.ensure_linearizable().await.is_ok() })
    }

    fn replicas(&self) -> Vec<i32> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config.membership().voter_ids().map(broker_id).collect()
    }
}
