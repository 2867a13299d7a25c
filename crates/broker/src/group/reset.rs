//! Resetting a group's committed offsets by hand (Kafka's `kafka-consumer-groups
//! --reset-offsets`): to the log start, the log end, a timestamp or an offset. As Kafka, only
//! while the group has no members, since live members would overwrite the reset with their
//! next commit; the commit itself is a standalone one (generation -1), which the coordinator
//! accepts only from an empty group, so a member joining meanwhile still wins.

use super::{CommitRequest, GroupError, OffsetToCommit};
use crate::browse::offset_at_or_after;
use crate::error::BrokerError;
use crate::Broker;
use thiserror::Error;

/// Where the committed offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first record at or after this time (ms since the epoch), else the log end.
    Timestamp(i64),
    /// This offset, clamped into the partition's [log start, log end] as Kafka's tool does.
    Offset(i64),
}

#[derive(Debug, Error)]
pub enum ResetError {
    #[error("{0}")]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Group(#[from] GroupError),
}

/// Resets `group_id`'s offsets of `topic` (the partitions given, or all of them) and returns
/// the committed offset of each, in partition order.
pub fn reset_offsets(
    broker: &Broker,
    group_id: &str,
    topic: &str,
    partitions: Option<&[i32]>,
    to: ResetTo,
) -> Result<Vec<(i32, i64)>, ResetError> {
    let log_topic = broker.topic(topic).ok_or(BrokerError::UnknownTopicOrPartition)?;
    let chosen = match partitions {
        Some(list) => list
            .iter()
            .map(|&i| log_topic.partition(i).ok_or(BrokerError::UnknownTopicOrPartition))
            .collect::<Result<Vec<_>, _>>()?,
        None => log_topic.partitions(),
    };
    let groups = broker.groups();
    if !groups.describe(group_id)?.members.is_empty() {
        return Err(GroupError::NonEmptyGroup.into());
    }
    let mut targets = Vec::with_capacity(chosen.len());
    for partition in &chosen {
        let (start, end) = (partition.log_start_offset(), partition.log_end_offset());
        let offset = match to {
            ResetTo::Earliest => start,
            ResetTo::Latest => end,
            ResetTo::Timestamp(ms) => offset_at_or_after(partition, ms)?,
            ResetTo::Offset(offset) => offset.clamp(start, end),
        };
        targets.push((partition.index, offset));
    }
    targets.sort_unstable();
    targets.dedup();
    let standalone =
        CommitRequest { group_id: group_id.to_string(), generation: -1, member_id: String::new(), instance_id: None };
    let offsets: Vec<OffsetToCommit> = targets
        .iter()
        .map(|&(partition, offset)| OffsetToCommit {
            topic: topic.to_string(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        })
        .collect();
    let results = groups.commit_offsets(&standalone, &offsets).map_err(|e| match e {
        // A member joined between the check and the commit.
        GroupError::UnknownMemberId | GroupError::RebalanceInProgress | GroupError::IllegalGeneration => {
            GroupError::NonEmptyGroup
        }
        other => other,
    })?;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e.into());
    }
    Ok(targets)
}
