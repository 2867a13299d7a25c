//! The proposer's two answers, against a scripted `Replica`: acks=1 waiters get the outcome
//! when the leader's log holds the batches, acks=all waiters only at the commit, and a
//! proposal that fails before its write fails both.

use super::*;
use crate::partition::{Durability, Submitted};
use sluice_log::batch::{
    BASE_SEQUENCE_AT, BATCH_HEADER_LEN, BATCH_LENGTH_AT, LOG_OVERHEAD, MAGIC_AT, PRODUCER_ID_AT, RECORDS_COUNT_AT,
};
use sluice_log::LogConfig;
use std::sync::Mutex;
use std::time::Duration;

/// Bound on every wait, so a hang fails instead of blocking the suite.
const WAIT: Duration = Duration::from_secs(10);

type Signal = oneshot::Receiver<(i64, i64)>;
/// Fires a `Signal` with the offsets.
type Fire = oneshot::Sender<(i64, i64)>;

/// A leader whose one proposal is written and committed when the test says.
struct Scripted {
    signals: Mutex<Option<(Signal, Signal)>>,
}

impl Replica for Scripted {
    fn role(&self) -> Role {
        Role { leader: Some(1), epoch: 1, is_leader: true }
    }

    fn propose(&self, _: Vec<u8>) -> Pin<Box<dyn Future<Output = Result<Proposed, ReplicaError>> + Send + '_>> {
        let signals = self.signals.lock().unwrap().take();
        Box::pin(async move {
            let (written, committed) = signals.ok_or_else(|| ReplicaError::Failed("one proposal only".into()))?;
            Ok(Proposed {
                written: Box::pin(async move { written.await.ok() }),
                committed: Box::pin(
                    async move { committed.await.map_err(|_| ReplicaError::NotLeader { leader: Some(2) }) },
                ),
            })
        })
    }

    fn replicas(&self) -> Vec<i32> {
        vec![1, 2, 3]
    }

    fn epoch_end_offset(&self, _: i32) -> Option<(i32, i64)> {
        None
    }
}

/// A header-only, non-idempotent v2 batch of one record (what `submit` parses; the record
/// count must match the last offset delta, as Kafka checks a producer's batch).
fn batch() -> Vec<u8> {
    let mut b = vec![0u8; BATCH_HEADER_LEN];
    b[RECORDS_COUNT_AT..][..4].copy_from_slice(&1i32.to_be_bytes());
    b[BATCH_LENGTH_AT..][..4].copy_from_slice(&((BATCH_HEADER_LEN - LOG_OVERHEAD) as i32).to_be_bytes());
    b[MAGIC_AT] = 2;
    b[PRODUCER_ID_AT..][..8].copy_from_slice(&(-1i64).to_be_bytes());
    b[BASE_SEQUENCE_AT..][..4].copy_from_slice(&(-1i32).to_be_bytes());
    b
}

/// A replicated partition over a scripted replica, and the senders that script it.
fn replicated(dir: &std::path::Path) -> (Arc<Partition>, Fire, Fire) {
    let partition = Arc::new(Partition::open(dir, "t".into(), 0, LogConfig::default()).unwrap());
    let (write, written) = oneshot::channel();
    let (commit, committed) = oneshot::channel();
    partition.attach_replica(Arc::new(Scripted { signals: Mutex::new(Some((written, committed))) })).unwrap();
    (partition, write, commit)
}

#[tokio::test]
async fn acks_one_is_answered_at_the_write_and_acks_all_at_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (partition, write, commit) = replicated(dir.path());
    let Ok(Submitted::Replicating { written, mut committed }) = partition.submit(batch()) else {
        panic!("a replicated partition proposes");
    };
    write.send((5, 7)).unwrap();
    let early = tokio::time::timeout(WAIT, written).await.unwrap().unwrap();
    assert_eq!((early.base_offset, early.last_offset), (5, 7));
    assert!(committed.try_recv().is_err(), "acks=all is not answered before the commit");
    commit.send((5, 7)).unwrap();
    let late = tokio::time::timeout(WAIT, committed).await.unwrap().unwrap().unwrap();
    assert_eq!(late, early);
    assert_eq!(partition.log_end_offset(), 0, "visibility is the state machine's, not the proposer's");
}

#[tokio::test]
async fn a_proposal_lost_before_its_write_fails_acks_one_too() {
    let dir = tempfile::tempdir().unwrap();
    let (partition, write, commit) = replicated(dir.path());
    let submitted = partition.submit(batch()).unwrap();
    drop((write, commit));
    let outcome = tokio::time::timeout(WAIT, submitted.wait(&partition, Durability::Written)).await.unwrap();
    assert!(matches!(outcome, Err(BrokerError::NotLeader { leader: Some(2) })), "{outcome:?}");
}

/// A leader that records every proposal and gives it the next offsets; the first proposal's
/// write waits for the test's signal, and so does every commit when `hold_commits` is set.
struct Recording {
    proposals: Mutex<Vec<usize>>,
    next: Mutex<i64>,
    hold_first: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    hold_commits: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Replica for Recording {
    fn role(&self) -> Role {
        Role { leader: Some(1), epoch: 1, is_leader: true }
    }

    fn propose(&self, batches: Vec<u8>) -> Pin<Box<dyn Future<Output = Result<Proposed, ReplicaError>> + Send + '_>> {
        // The test's batches are header-only, of one record each.
        let count = batches.len() / BATCH_HEADER_LEN;
        let records = count as i64;
        self.proposals.lock().unwrap().push(count);
        let mut next = self.next.lock().unwrap();
        let offsets = (*next, *next + records - 1);
        *next += records;
        let hold = self.hold_first.lock().unwrap().take();
        let released = move |hold: Option<tokio::sync::watch::Receiver<bool>>| async move {
            if let Some(mut hold) = hold {
                let _ = hold.wait_for(|released| *released).await;
            }
        };
        let (written, committed) = (released(hold.clone()), released(hold));
        let commit_held = released(self.hold_commits.clone());
        Box::pin(async move {
            Ok(Proposed {
                written: Box::pin(async move {
                    written.await;
                    Some(offsets)
                }),
                committed: Box::pin(async move {
                    committed.await;
                    commit_held.await;
                    Ok(offsets)
                }),
            })
        })
    }

    fn replicas(&self) -> Vec<i32> {
        vec![1, 2, 3]
    }

    fn epoch_end_offset(&self, _: i32) -> Option<(i32, i64)> {
        None
    }
}

/// Produce requests that queue while the previous entry is being written go to Raft as one
/// entry (group commit), and each is still answered with its own offsets.
#[tokio::test]
async fn requests_queued_during_a_write_are_proposed_as_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let partition = Arc::new(Partition::open(dir.path(), "t".into(), 0, LogConfig::default()).unwrap());
    let (release, hold) = tokio::sync::watch::channel(false);
    let replica = Arc::new(Recording {
        proposals: Mutex::new(Vec::new()),
        next: Mutex::new(10),
        hold_first: Mutex::new(Some(hold)),
        hold_commits: None,
    });
    partition.attach_replica(replica.clone()).unwrap();
    let first = partition.submit(batch()).unwrap();
    // The first is proposed alone; wait until it is, then queue two more behind its write.
    for _ in 0..1000 {
        if !replica.proposals.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = partition.submit(batch()).unwrap();
    let third = partition.submit(batch()).unwrap();
    release.send(true).unwrap();
    let mut offsets = Vec::new();
    for submitted in [first, second, third] {
        let outcome = tokio::time::timeout(WAIT, submitted.wait(&partition, Durability::Committed)).await.unwrap();
        let outcome = outcome.unwrap();
        offsets.push((outcome.base_offset, outcome.last_offset));
    }
    assert_eq!(offsets, vec![(10, 10), (11, 11), (12, 12)]);
    assert_eq!(*replica.proposals.lock().unwrap(), vec![1, 2], "one entry alone, then the two queued ones together");
}

/// The proposer keeps at most `GROUPS_UNCOMMITTED_MAX` groups waiting for their commit (so
/// openraft's core, which takes every queued write before its followers' answers, gets to
/// commit): requests that arrive meanwhile wait, and go as one entry once a commit frees a
/// place. Each is still answered with its own offsets.
#[tokio::test]
async fn requests_wait_while_two_groups_wait_for_their_commit() {
    let dir = tempfile::tempdir().unwrap();
    let partition = Arc::new(Partition::open(dir.path(), "t".into(), 0, LogConfig::default()).unwrap());
    let (release, held) = tokio::sync::watch::channel(false);
    let replica = Arc::new(Recording {
        proposals: Mutex::new(Vec::new()),
        next: Mutex::new(10),
        hold_first: Mutex::new(None),
        hold_commits: Some(held),
    });
    partition.attach_replica(replica.clone()).unwrap();
    let proposed = |n: usize| {
        let replica = replica.clone();
        async move {
            for _ in 0..1000 {
                if replica.proposals.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("{n} proposals were not made");
        }
    };
    let mut submitted = vec![partition.submit(batch()).unwrap()];
    proposed(1).await;
    submitted.push(partition.submit(batch()).unwrap());
    proposed(2).await;
    // Both groups wait for their commit: the third request waits in the queue (the test's
    // runtime is one thread, so the proposer runs at each yield) and the fourth joins it.
    submitted.push(partition.submit(batch()).unwrap());
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(replica.proposals.lock().unwrap().len(), 2, "a third group waits for a commit");
    submitted.push(partition.submit(batch()).unwrap());
    release.send(true).unwrap();
    let mut offsets = Vec::new();
    for submitted in submitted {
        let outcome = tokio::time::timeout(WAIT, submitted.wait(&partition, Durability::Committed)).await.unwrap();
        let outcome = outcome.unwrap();
        offsets.push((outcome.base_offset, outcome.last_offset));
    }
    assert_eq!(offsets, vec![(10, 10), (11, 11), (12, 12), (13, 13)]);
    assert_eq!(*replica.proposals.lock().unwrap(), vec![1, 1, 2], "the two queued requests as one entry");
}
