//! The seam between a partition and its replication. `crates/cluster` (through the binary)
//! implements `Replica` for a partition's Raft group; a partition without one is a single
//! node's log, appended directly.
//!
//! A replicated partition appends only through its `Proposer`: one task per partition that
//! hands proposals to the Raft log in arrival order (so pipelined produce requests keep their
//! order) and checks idempotent batches against the producer state of what is committed. An
//! idempotent batch is proposed only once the one before it has been applied, so its sequence
//! check always sees the committed state, on this leader or on the next (the state is rebuilt
//! on every replica from the batches it applies).
//!
//! Each proposal is answered twice: once the leader's own log holds it (Kafka's acks=1, lost
//! if this leader fails before a majority has it) and once it is committed (acks=all). Readers
//! see it only from the commit on.

use crate::error::{BrokerError, BrokerResult};
use crate::partition::{AppendOutcome, Partition};
use crate::producer_state::SequenceCheck;
use sluice_log::batch::BatchHeader;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Proposals waiting for a partition's proposer; a full queue refuses the produce with a
/// retriable error rather than buffering without bound (each holds a whole request's batches,
/// which the listeners' request-byte budgets bound too). Sixteen Kafka connections' worth of
/// pipelined requests (`INFLIGHT_REQUESTS_MAX_DEFAULT`): requests wait here while the groups
/// before them commit (`GROUPS_UNCOMMITTED_MAX`).
pub const PROPOSALS_QUEUED_MAX: usize = 4096;

/// How this node sees a partition's leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// The leader's node id, if one is known.
    pub leader: Option<i32>,
    /// Kafka's leader epoch: the Raft term of the current leader.
    pub epoch: i32,
    /// This node leads and its term's first entry is applied, so its producer state is whole.
    pub is_leader: bool,
}

/// The future a proposal resolves with: the offsets its batches took, once committed by a
/// majority of the replicas (each durable under its flush policy).
pub type Commit = Pin<Box<dyn Future<Output = Result<(i64, i64), ReplicaError>> + Send>>;

/// Resolves with the offsets a proposal took once the leader's own log holds it; None when
/// that is not known (then only its `Commit` tells).
pub type Written = Pin<Box<dyn Future<Output = Option<(i64, i64)>> + Send>>;

/// A proposal handed to the replicated log.
pub struct Proposed {
    pub written: Written,
    pub committed: Commit,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicaError {
    #[error("not the leader of this partition")]
    NotLeader { leader: Option<i32> },
    #[error("replication failed: {0}")]
    Failed(String),
}

/// One partition's replication, as the broker uses it.
pub trait Replica: Send + Sync + 'static {
    fn role(&self) -> Role;
    /// Hands batches to the replicated log. Proposals enter the log in the order their first
    /// futures complete; `Proposed` then tells when the leader's log holds them and when a
    /// majority does.
    fn propose(&self, batches: Vec<u8>) -> Pin<Box<dyn Future<Output = Result<Proposed, ReplicaError>> + Send + '_>>;
    /// Node ids of the replicas, preferred leader first.
    fn replicas(&self) -> Vec<i32>;
    /// The largest leader epoch at or below `epoch` in this replica's log and the offset
    /// where it ended (Kafka's OffsetForLeaderEpoch), None when the log holds no such epoch.
    fn epoch_end_offset(&self, epoch: i32) -> Option<(i32, i64)>;
    /// Retention wants this replica's records below `offset` gone: the replicated log drops
    /// its entries holding only such records (once a snapshot covers them), and answers the
    /// offset below which its segments may now be deleted (at most `offset`, never past what
    /// this replica has applied). The default releases nothing.
    fn release_below(&self, offset: i64) -> Pin<Box<dyn Future<Output = i64> + Send + '_>> {
        let _ = offset;
        Box::pin(async { i64::MIN })
    }
    /// Confirms with a majority that this node still leads (a restarted leader believes it
    /// leads in its old term until the others answer it) and waits until it has applied
    /// everything committed so far; false if it does not lead. For state served from memory
    /// (a group coordinator's offsets). The default confirms at once.
    fn confirm_leadership(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async { true })
    }
}

impl From<ReplicaError> for BrokerError {
    fn from(e: ReplicaError) -> BrokerError {
        match e {
            ReplicaError::NotLeader { leader } => BrokerError::NotLeader { leader },
            ReplicaError::Failed(reason) => BrokerError::ReplicationFailed(reason),
        }
    }
}

/// A produce or publish waiting for its partition's proposer.
pub(crate) struct Proposal {
    pub batches: Vec<u8>,
    pub headers: Vec<BatchHeader>,
    /// Told once the leader's log holds the batches (acks=1); dropped unanswered if they never
    /// get there, so a waiter also watches `reply`.
    pub written: oneshot::Sender<AppendOutcome>,
    /// Told the outcome once committed (acks=all), or the failure.
    pub reply: oneshot::Sender<BrokerResult<AppendOutcome>>,
}

/// The proposer's queue, owned by the partition.
pub(crate) struct Proposer {
    queue: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts the proposer task; it ends when the partition is dropped.
    pub(crate) fn start(partition: Weak<Partition>, replica: Arc<dyn Replica>) -> Proposer {
        let (queue, proposals) = mpsc::channel(PROPOSALS_QUEUED_MAX);
        tokio::spawn(run(partition, replica, proposals));
        Proposer { queue }
    }

    pub(crate) fn submit(&self, proposal: Proposal) -> BrokerResult<()> {
        self.queue.try_send(proposal).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                BrokerError::ReplicationFailed("too many produce requests waiting for replication".into())
            }
            mpsc::error::TrySendError::Closed(_) => BrokerError::ReplicationFailed("partition closed".into()),
        })
    }
}

async fn run(partition: Weak<Partition>, replica: Arc<dyn Replica>, mut proposals: mpsc::Receiver<Proposal>) {
    // Opens once the leader's log holds the last group handed to Raft (or it failed).
    let mut previous_written: Option<oneshot::Receiver<()>> = None;
    // A proposal taken off the queue that could not join the group before it.
    let mut held: Option<Proposal> = None;
    // One permit per group proposed and not yet committed (`GROUPS_UNCOMMITTED_MAX`).
    let uncommitted = Arc::new(Semaphore::new(GROUPS_UNCOMMITTED_MAX));
    loop {
        let proposal = match held.take() {
            Some(p) => p,
            None => match proposals.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let Some(partition) = partition.upgrade() else { return };
        if is_idempotent(&proposal) {
            // Checked against the committed state; waits for its commit before the next one.
            let Proposal { batches, headers, written, reply } = proposal;
            let outcome = propose_idempotent(&partition, replica.as_ref(), batches, &headers, written).await;
            let _ = reply.send(outcome);
            continue;
        }
        // Requests queue (and join this group) while too many groups wait for their commit.
        let Ok(permit) = Arc::clone(&uncommitted).acquire_owned().await else { return };
        // Group commit on the leader: openraft appends and fsyncs each entry before it takes
        // the next, so every produce request as its own entry costs an fsync round each.
        // Until the previous group is in the leader's log, requests join this one; a full
        // group goes at once (so the bounded queue keeps moving), and so does one followed by
        // an idempotent request.
        let mut gate = previous_written.take();
        let mut group = vec![proposal];
        let mut bytes = group[0].batches.len();
        while bytes < GROUP_BYTES_MAX && group.len() < GROUP_PROPOSALS_MAX {
            let next = match gate.as_mut() {
                Some(written) => tokio::select! {
                    biased;
                    _ = written => {
                        gate = None;
                        continue;
                    }
                    next = proposals.recv() => next,
                },
                None => proposals.try_recv().ok(),
            };
            let Some(next) = next else { break };
            if is_idempotent(&next) || bytes + next.batches.len() > GROUP_BYTES_MAX {
                held = Some(next);
                break;
            }
            bytes += next.batches.len();
            group.push(next);
        }
        let (parts, batches) = split_group(group);
        let (gate, gate_rx) = oneshot::channel();
        previous_written = Some(gate_rx);
        match replica.propose(batches).await {
            Ok(proposed) => {
                let partition = Arc::clone(&partition);
                tokio::spawn(async move {
                    answer_group(&partition, proposed, parts, gate).await;
                    drop(permit);
                });
            }
            Err(e) => {
                for part in parts {
                    let _ = part.reply.send(Err(e.clone().into()));
                }
            }
        }
    }
}

/// Most batch bytes of queued produce requests proposed as one Raft entry (one request may be
/// larger): two of librdkafka's 1 MiB requests, so an AppendEntries (4 MiB at most) still
/// carries two entries.
pub const GROUP_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Most groups proposed and not yet committed. openraft 0.9's core takes every queued client
/// write (appending and fsyncing each in turn) before it looks at its followers' answers, so
/// a proposer that kept it fed (each group goes as soon as the one before is written, which
/// is during that one's fsync) starved the commits: on 2 loaded cores the followers were
/// sent data every ~20 ms and a group took 35 ms to commit though each fsync took 1–3 ms
/// (BENCHMARKS.md "Cluster"). With two, the leader fsyncs one group while its followers
/// fsync the one before, and a commit is never more than one append away.
const GROUPS_UNCOMMITTED_MAX: usize = 2;

/// Most produce requests proposed as one entry: half the queue, so small requests waiting
/// for the previous group's write never fill the queue (which refuses produces when full).
const GROUP_PROPOSALS_MAX: usize = PROPOSALS_QUEUED_MAX / 2;

fn is_idempotent(proposal: &Proposal) -> bool {
    proposal.headers.iter().any(|h| h.producer_id >= 0 && h.base_sequence >= 0)
}

/// One proposal of a group proposed as one entry: how many offsets its batches take, and its
/// two answers.
struct Part {
    records: i64,
    written: oneshot::Sender<AppendOutcome>,
    reply: oneshot::Sender<BrokerResult<AppendOutcome>>,
}

/// The group's batches, concatenated in order (the log gives them consecutive offsets), and
/// each proposal's part.
fn split_group(group: Vec<Proposal>) -> (Vec<Part>, Vec<u8>) {
    let mut parts = Vec::with_capacity(group.len());
    let total: usize = group.iter().map(|p| p.batches.len()).sum();
    let mut iter = group.into_iter();
    let Some(first) = iter.next() else { return (parts, Vec::new()) };
    let Proposal { mut batches, headers, written, reply } = first;
    batches.reserve_exact(total - batches.len());
    parts.push(Part { records: records_in(&headers), written, reply });
    for Proposal { batches: more, headers, written, reply } in iter {
        batches.extend_from_slice(&more);
        parts.push(Part { records: records_in(&headers), written, reply });
    }
    (parts, batches)
}

fn records_in(headers: &[BatchHeader]) -> i64 {
    headers.iter().map(|h| i64::from(h.last_offset_delta) + 1).sum()
}

/// Each part's offsets within the group's `(first, last)`, in order; None when the group's
/// offsets do not add up to its parts (never expected: the log assigns them consecutively).
/// A group of one keeps the offsets as given.
fn part_offsets(counts: &[i64], (first, last): (i64, i64)) -> Option<Vec<(i64, i64)>> {
    if let [_] = counts {
        return Some(vec![(first, last)]);
    }
    if last - first + 1 != counts.iter().sum::<i64>() {
        return None;
    }
    let mut next = first;
    let ranges = counts.iter().map(|&records| {
        let range = (next, next + records - 1);
        next += records;
        range
    });
    Some(ranges.collect())
}

/// Answers every part of a group: acks=1 once the leader's log holds it (the `gate` then opens
/// for the next group), acks=all once committed. A group that fails before its write fails
/// both answers (acks=1 waiters see the reply) and opens the gate.
async fn answer_group(partition: &Partition, proposed: Proposed, parts: Vec<Part>, gate: oneshot::Sender<()>) {
    let Proposed { written: appended, mut committed } = proposed;
    let counts: Vec<i64> = parts.iter().map(|p| p.records).collect();
    let mut early: Option<Vec<AppendOutcome>> = None;
    let mut result = None;
    tokio::select! {
        biased;
        Some(offsets) = appended => {
            let ranges = part_offsets(&counts, offsets);
            early = ranges.map(|ranges| ranges.into_iter().map(|r| partition.outcome(r)).collect());
        }
        r = &mut committed => result = Some(r),
    }
    drop(gate);
    let mut replies = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let written = early.as_ref().map(|outcomes| outcomes[i]);
        if let Some(outcome) = written {
            let _ = part.written.send(outcome);
        }
        replies.push((written, part.reply));
    }
    let result = match result {
        Some(r) => r,
        None => committed.await,
    };
    let ranges = result.map(|offsets| part_offsets(&counts, offsets));
    for (i, (written, reply)) in replies.into_iter().enumerate() {
        let outcome = match &ranges {
            Err(e) => Err(e.clone().into()),
            Ok(None) => Err(BrokerError::ReplicationFailed("committed offsets do not match the batches".into())),
            // Counted as traffic once, when written; the commit confirms the same offsets.
            Ok(Some(ranges)) => Ok(match written {
                Some(early) if (early.base_offset, early.last_offset) == ranges[i] => early,
                _ => partition.outcome(ranges[i]),
            }),
        };
        let _ = reply.send(outcome);
    }
}

/// Tells `written` the outcome once the leader's log holds the proposal, then returns it once
/// committed. A proposal that fails before its append leaves `written` unanswered.
async fn answer(
    partition: &Partition,
    proposed: Proposed,
    written: oneshot::Sender<AppendOutcome>,
) -> BrokerResult<AppendOutcome> {
    let Proposed { written: appended, mut committed } = proposed;
    let early = tokio::select! {
        biased;
        Some(offsets) = appended => partition.outcome(offsets),
        result = &mut committed => return Ok(partition.outcome(result?)),
    };
    let _ = written.send(early);
    let offsets = committed.await?;
    // Counted as traffic once, when written; the commit confirms the same offsets.
    Ok(match (early.base_offset, early.last_offset) == offsets {
        true => early,
        false => partition.outcome(offsets),
    })
}

async fn propose_idempotent(
    partition: &Arc<Partition>,
    replica: &dyn Replica,
    batches: Vec<u8>,
    headers: &[BatchHeader],
    written: oneshot::Sender<AppendOutcome>,
) -> BrokerResult<AppendOutcome> {
    let [header] = headers else {
        return Err(BrokerError::CorruptMessage("an idempotent produce must carry exactly one batch".into()));
    };
    if !replica.role().is_leader {
        return Err(BrokerError::NotLeader { leader: replica.role().leader });
    }
    if let SequenceCheck::Duplicate { first_offset, last_offset } = partition.check_sequence(header)? {
        return Ok(partition.outcome((first_offset, last_offset)));
    }
    let proposed = replica.propose(batches).await?;
    answer(partition, proposed, written).await
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;
