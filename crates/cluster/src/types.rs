//! The openraft type configuration shared by every Raft group of a node.
//!
//! One configuration serves both kinds of group: the metadata group and each partition's group.
//! Every entry's application data is one or more Kafka RecordBatch v2 batches, so both kinds are
//! stored by the same log storage (the metadata group's commands are records of an internal
//! partition, as KRaft's `__cluster_metadata`).

use std::fmt;
// declare_raft_types! names `Cursor` unqualified for its default SnapshotData (Cursor<Vec<u8>>).
use std::io::Cursor;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A node's id, as given by `--node-id`; Kafka's broker id.
pub type NodeId = u64;

/// What a Raft entry carries: RecordBatch v2 bytes, whole batches, stored verbatim in the
/// partition's segments. The leader's log assigns `base_offset` and writes
/// `partitionLeaderEpoch` (both outside the CRC) when it appends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batches(pub Bytes);

impl fmt::Debug for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batches({} bytes)", self.0.len())
    }
}

impl fmt::Display for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What applying one entry produced: the Kafka offsets its batches took (both inclusive), or,
/// for an entry that holds no records (a blank or membership entry), `None`. The metadata
/// group's state machine adds its command's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Applied {
    pub offsets: Option<(i64, i64)>,
    /// A metadata command's reply, serialized by the metadata state machine (`meta`).
    pub reply: Option<Vec<u8>>,
}

openraft::declare_raft_types!(
    /// Sluice's Raft types: node ids are Kafka broker ids, a node is its cluster address.
    pub TypeConfig:
        D = Batches,
        R = Applied,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

/// A running Raft group.
pub type Raft = openraft::Raft<TypeConfig>;

/// Which Raft group a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupId {
    /// The metadata group: nodes, topics, assignments, configs, producer-id blocks.
    Meta,
    /// One partition's group over its replicas. `topic_id` is the metadata group's id of the
    /// topic (never reused): a re-created topic's partitions are other groups, so a node still
    /// running the deleted topic's group (behind on the metadata, or just restarted) can never
    /// lead, vote in or write to the new one.
    Partition { topic: String, partition: i32, topic_id: u64 },
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupId::Meta => write!(f, "metadata"),
            GroupId::Partition { topic, partition, .. } => write!(f, "{topic}-{partition}"),
        }
    }
}
