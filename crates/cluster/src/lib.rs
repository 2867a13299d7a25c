//! Sluice's cluster layer: consensus is openraft's; what is ours is the mapping between Raft
//! and Kafka's log semantics (DESIGN.md, "The cluster").
//!
//! - `types`: the one openraft type configuration every group uses, and group ids.
//! - `transport`: node-to-node RPCs of every group over one shared connection per peer.

pub mod transport;
pub mod types;
