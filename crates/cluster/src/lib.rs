//! Sluice's cluster layer: consensus is openraft's; what is ours is the mapping between Raft
//! and Kafka's log semantics (DESIGN.md, "The cluster").
//!
//! - `types`: the one openraft type configuration every group uses, and group ids.
//! - `meta`: the metadata group's state machine (nodes, topics, assignments, producer ids).
//! - `storage`: a group's Raft log storage and a partition's state machine over its partition log.
//! - `transport`: node-to-node RPC, one multiplexed TCP connection per peer for every group.

pub mod meta;
pub mod storage;
pub mod transport;
pub mod types;
