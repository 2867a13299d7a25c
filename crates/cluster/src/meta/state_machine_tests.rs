//! `MetaStateMachine` driven directly through openraft's `RaftStateMachine`, with entries
//! built by hand: replies, membership, the state watch, and snapshots built and installed.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Cursor;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, StoredMembership};

use super::command::{MetaCommand, MetaReply};
use super::state_machine::MetaStateMachine;
use super::state_tests::{create, register};
use crate::types::{Applied, Batches, NodeId, TypeConfig};

/// Every test here finishes in milliseconds; the bound turns a hang into a failure.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, work).await.expect("test timed out")
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command(index: u64, command: MetaCommand) -> Entry<TypeConfig> {
    Entry { log_id: log_id(1, index), payload: EntryPayload::Normal(command.encode(1_000).unwrap()) }
}

fn voters(ids: &[NodeId]) -> Membership<NodeId, openraft::BasicNode> {
    Membership::new(vec![ids.iter().copied().collect::<BTreeSet<_>>()], ())
}

fn reply(applied: &Applied) -> MetaReply {
    MetaReply::from_applied(applied).expect("a command has a reply")
}

/// Blank, membership, three registrations, a topic, and a producer-id block.
fn opening_entries() -> Vec<Entry<TypeConfig>> {
    let mut entries = vec![
        Entry { log_id: log_id(1, 1), payload: EntryPayload::Blank },
        Entry { log_id: log_id(1, 2), payload: EntryPayload::Membership(voters(&[1, 2, 3])) },
    ];
    entries.extend((1..=3).map(|n| command(2 + n, register(n, 0))));
    entries.push(command(6, create("t", vec![vec![1, 2], vec![2, 3], vec![3, 1]])));
    entries.push(command(7, MetaCommand::AllocateProducerIds { count: 1000 }));
    entries
}

#[tokio::test]
async fn applying_entries_answers_each_and_publishes_the_state() {
    // Proves blank and membership entries give empty Applied and update membership only, each
    // command's reply and offsets come back, and the watch sees the new state.
    bounded(async {
        let mut machine = MetaStateMachine::new();
        let mut watch = machine.state_watch();
        let applied = machine.apply(opening_entries()).await.unwrap();
        assert_eq!(applied.len(), 7);
        assert_eq!(applied[0], Applied::default());
        assert_eq!(applied[1], Applied::default());
        assert_eq!(reply(&applied[2]), MetaReply::Ok);
        assert_eq!(applied[2].offsets, Some((0, 0)));
        assert_eq!(reply(&applied[5]), MetaReply::TopicCreated);
        assert_eq!(reply(&applied[6]), MetaReply::ProducerIds { first: 0, count: 1000 });

        let (last, membership) = machine.applied_state().await.unwrap();
        assert_eq!(last, Some(log_id(1, 7)));
        assert_eq!(membership, StoredMembership::new(Some(log_id(1, 2)), voters(&[1, 2, 3])));

        assert!(watch.has_changed().unwrap());
        let seen = watch.borrow_and_update().clone();
        assert_eq!(seen.topics["t"].partitions.len(), 3);
        assert_eq!(*seen, *machine.state());

        // A blank entry alone changes no state, so nothing new is published.
        machine.apply([Entry { log_id: log_id(2, 8), payload: EntryPayload::Blank }]).await.unwrap();
        assert!(!watch.has_changed().unwrap());
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id(2, 8)));
    })
    .await
}

#[tokio::test]
async fn an_undecodable_entry_is_answered_invalid_and_changes_nothing() {
    // Proves malformed entry data neither fails the state machine (which would stop the
    // node) nor changes the state, and the log position still advances.
    bounded(async {
        let mut machine = MetaStateMachine::new();
        machine.apply(opening_entries()).await.unwrap();
        let before = machine.state();
        let garbage = Entry { log_id: log_id(1, 8), payload: EntryPayload::Normal(Batches(vec![0xAB; 80].into())) };
        let applied = machine.apply([garbage]).await.unwrap();
        assert!(matches!(reply(&applied[0]), MetaReply::Invalid(_)));
        assert_eq!(applied[0].offsets, None);
        assert_eq!(*machine.state(), *before);
        assert_eq!(machine.applied_state().await.unwrap().0, Some(log_id(1, 8)));
    })
    .await
}

#[tokio::test]
async fn a_snapshot_installed_into_a_fresh_machine_gives_the_same_state() {
    // Proves build → install reproduces state, last applied and membership, the installed
    // snapshot becomes current, and producer-id blocks continue without overlap after it.
    bounded(async {
        let mut source = MetaStateMachine::new();
        source.apply(opening_entries()).await.unwrap();
        let snapshot = source.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 7)));
        assert_eq!(source.get_current_snapshot().await.unwrap().map(|s| s.meta), Some(snapshot.meta.clone()));

        let mut target = MetaStateMachine::new();
        let mut watch = target.state_watch();
        let mut received = target.begin_receiving_snapshot().await.unwrap();
        received.get_mut().extend_from_slice(snapshot.snapshot.get_ref());
        target.install_snapshot(&snapshot.meta, received).await.unwrap();

        assert_eq!(*target.state(), *source.state());
        assert_eq!(target.applied_state().await.unwrap(), source.applied_state().await.unwrap());
        assert!(watch.has_changed().unwrap());
        assert_eq!(**watch.borrow_and_update(), *source.state());
        let current = target.get_current_snapshot().await.unwrap().expect("installed snapshot is current");
        assert_eq!(current.meta, snapshot.meta);
        assert_eq!(current.snapshot.get_ref(), snapshot.snapshot.get_ref());

        let next = command(8, MetaCommand::AllocateProducerIds { count: 10 });
        let applied = target.apply([next]).await.unwrap();
        assert_eq!(reply(&applied[0]), MetaReply::ProducerIds { first: 1000, count: 10 });

        let restored = MetaStateMachine::from_snapshot(&snapshot.meta, snapshot.snapshot.into_inner()).unwrap();
        assert_eq!(*restored.state(), *source.state());
    })
    .await
}

#[tokio::test]
async fn snapshots_that_do_not_match_their_meta_are_refused() {
    // Proves install checks the bytes: garbage, or data of another log position, is an error
    // and leaves the machine as it was.
    bounded(async {
        let mut source = MetaStateMachine::new();
        source.apply(opening_entries()).await.unwrap();
        let snapshot = source.get_snapshot_builder().await.build_snapshot().await.unwrap();

        let mut target = MetaStateMachine::new();
        let garbage = Box::new(Cursor::new(b"{not json".to_vec()));
        assert!(target.install_snapshot(&snapshot.meta, garbage).await.is_err());
        let mut other_meta = snapshot.meta.clone();
        other_meta.last_log_id = Some(log_id(1, 99));
        let data = Box::new(Cursor::new(snapshot.snapshot.get_ref().clone()));
        assert!(target.install_snapshot(&other_meta, data).await.is_err());
        assert_eq!(target.applied_state().await.unwrap().0, None);
        assert!(target.state().topics.is_empty());
        assert!(target.get_current_snapshot().await.unwrap().is_none());
    })
    .await
}

#[tokio::test]
async fn a_snapshot_built_from_an_older_state_does_not_replace_a_newer_install() {
    // Proves a builder taken before an install, finishing after it, leaves the installed
    // (newer) snapshot as the current one, as openraft expects after install_snapshot.
    bounded(async {
        let mut leader = MetaStateMachine::new();
        leader.apply(opening_entries()).await.unwrap();
        let newer = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();

        let mut follower = MetaStateMachine::new();
        follower.apply(opening_entries().into_iter().take(3)).await.unwrap();
        let mut stale_builder = follower.get_snapshot_builder().await;
        follower.install_snapshot(&newer.meta, newer.snapshot).await.unwrap();
        let stale = stale_builder.build_snapshot().await.unwrap();
        assert_eq!(stale.meta.last_log_id, Some(log_id(1, 3)));
        let current = follower.get_current_snapshot().await.unwrap().expect("a current snapshot");
        assert_eq!(current.meta, newer.meta);
    })
    .await
}
