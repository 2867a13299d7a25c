//! Sluice's cluster layer: consensus is openraft's; what is ours is the mapping between Raft
//! and Kafka's log semantics (DESIGN.md, "The cluster").
//!
//! - `types`: the one openraft type configuration every group uses, and group ids.
//! - `storage`: a partition group's Raft log storage and state machine over its partition log.

pub mod storage;
pub mod types;
