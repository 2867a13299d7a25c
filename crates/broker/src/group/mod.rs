//! Consumer groups: a protocol-agnostic coordinator (join/sync/heartbeat/leave state
//! machine with generations, leader election, protocol selection, static membership),
//! one deadline heap swept by one task for session and rebalance timeouts, and committed
//! offsets persisted in an append-only log under `<data_dir>/groups/`.

pub mod assignment;
pub mod cluster_listing;
mod coordinator;
mod initial_delay;
mod locate;
pub mod offsets;
mod offsets_leadership;
pub mod offsets_partition;
pub mod offsets_record;
pub mod replicated_offsets;
pub mod reset;
mod state;
mod timeouts;

pub use coordinator::{
    CommitRequest, GroupConfig, GroupCoordinator, GroupDescription, GroupListing, JoinReply, JoinRequest, JoinResult,
    JoinedMember, MemberDescription, OffsetToCommit, PartitionLag, SyncReply, SyncRequest, SyncResult,
};
pub use locate::coordinator_of;
pub use offsets::Committed;
pub use state::GroupState;

use thiserror::Error;

/// Why a group operation was refused; each listener maps these to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    #[error("invalid session timeout")]
    InvalidSessionTimeout,
    #[error("member id required")]
    MemberIdRequired,
    #[error("fenced instance id")]
    FencedInstanceId,
    #[error("group id not found")]
    GroupIdNotFound,
    #[error("group is not empty")]
    NonEmptyGroup,
    #[error("group has reached its maximum size")]
    GroupMaxSizeReached,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    #[error("group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("offsets storage failed")]
    Storage,
    /// In a cluster: another node leads the group's offsets partition.
    #[error("not the coordinator of this group")]
    NotCoordinator,
    /// In a cluster: this node just became the group's coordinator and is reading its offsets.
    #[error("coordinator load in progress")]
    CoordinatorLoadInProgress,
}

#[cfg(test)]
mod tests;
