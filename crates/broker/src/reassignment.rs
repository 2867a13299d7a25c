//! Moving partition replicas between nodes and the operator's cluster changes that build on
//! it (Kafka's AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders; Sluice's
//! `topic reassign`, `cluster add-node`, `cluster remove-node` and `cluster drain`). The binary's cluster runtime does the work;
//! these are the shapes the listeners translate to their protocols.

use serde::{Deserialize, Serialize};

/// A partition move under way: `replicas` is the set it is moving to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    /// The replicas today (Kafka lists the union while in flight; `adding` and `removing`
    /// tell the two sets apart).
    pub replicas: Vec<i32>,
    /// Where it is moving.
    pub target: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl Reassignment {
    pub fn new(topic: String, partition: i32, replicas: Vec<i32>, target: Vec<i32>) -> Reassignment {
        let adding = target.iter().filter(|n| !replicas.contains(n)).copied().collect();
        let removing = replicas.iter().filter(|n| !target.contains(n)).copied().collect();
        Reassignment { topic, partition, replicas, target, adding, removing }
    }
}

/// What draining a node of leadership did (`cluster drain`, and a clustered node's SIGTERM).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drained {
    /// Partitions (`topic-index`) whose leadership moved off the node.
    pub moved: Vec<String>,
    /// Partitions it still leads: no other replica in sync, or no election won in time.
    pub kept: Vec<String>,
}

/// Why a reassignment, election or node removal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// Kafka `INVALID_REPLICA_ASSIGNMENT`: an empty, duplicated or unknown replica.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// Kafka `NO_REASSIGNMENT_IN_PROGRESS`: a cancel of a partition that is not moving.
    #[error("no reassignment in progress")]
    NoReassignmentInProgress,
    /// Kafka `ELECTION_NOT_NEEDED`: the preferred replica already leads.
    #[error("the preferred replica already leads")]
    ElectionNotNeeded,
    /// Kafka `PREFERRED_LEADER_NOT_AVAILABLE`: it is down or not caught up.
    #[error("preferred leader not available: {0}")]
    PreferredLeaderNotAvailable(String),
    /// Kafka `INVALID_REQUEST`: refused as a whole (e.g. removing a node that would leave a
    /// partition short of replicas).
    #[error("{0}")]
    Refused(String),
    /// The metadata group could not be reached in time (retriable).
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}
