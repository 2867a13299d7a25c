//! Sluice's cluster layer: consensus is openraft's; what is ours is the mapping between Raft
//! and Kafka's log semantics (DESIGN.md, "The cluster").
//!
//! - `types`: the one openraft type configuration every group uses, and group ids.
//! - `meta`: the metadata group's state machine (nodes, topics, assignments, producer ids).
//! - `storage`: a group's Raft log storage and a partition's state machine over its partition log.

pub mod meta;
pub mod storage;
pub mod types;
