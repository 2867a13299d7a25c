//! The metadata group's state machine: nodes, topics, partition assignments, configs and
//! producer-id blocks, agreed through one Raft group (DESIGN.md, "The cluster").
//!
//! - `command`: `MetaCommand` / `MetaReply`, each command one record of one v2 batch (`batch`).
//! - `state`: `ClusterState` and its pure, deterministic `apply`; `placement` spreads replicas.
//! - `state_machine`: `MetaStateMachine`, openraft's `RaftStateMachine` over that state,
//!   with its snapshots (`snapshot`) and a `watch` of every applied state.
//! - `limits`: every bound a command must stay within.
//! - `security`: Kafka SCRAM credentials and ACL bindings, cluster-wide.

pub mod batch;
pub mod command;
pub mod limits;
pub mod placement;
pub mod security;
pub mod snapshot;
pub mod state;
pub mod state_machine;
mod validate;

#[cfg(test)]
mod raft_tests;
#[cfg(test)]
mod state_machine_tests;
#[cfg(test)]
mod state_tests;

pub use command::{DecodeError, DecodedCommand, EncodeError, MetaCommand, MetaReply};
pub use placement::{assign_replicas, PlacementError};
pub use security::{ScramDeletion, ScramUpsert, SecurityState};
pub use state::{ClusterState, NodeInfo, PartitionState, TopicState, NO_EPOCH};
pub use state_machine::MetaStateMachine;
