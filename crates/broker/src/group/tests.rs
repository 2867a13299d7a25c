//! State-machine tests of the coordinator, driving time through `fire_due` instead of sleeping.

use super::*;
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

fn coordinator(retention: Duration) -> (tempfile::TempDir, GroupCoordinator) {
    let dir = tempfile::tempdir().unwrap();
    // No initial rebalance delay, as Kafka's own coordinator tests: a first join completes at once.
    let config =
        GroupConfig { offsets_retention: retention, initial_rebalance_delay: Duration::ZERO, ..GroupConfig::default() };
    let c = GroupCoordinator::open(dir.path(), config).unwrap();
    (dir, c)
}

fn delayed_coordinator(delay: Duration) -> (tempfile::TempDir, GroupCoordinator) {
    let dir = tempfile::tempdir().unwrap();
    let config = GroupConfig { initial_rebalance_delay: delay, ..GroupConfig::default() };
    let c = GroupCoordinator::open(dir.path(), config).unwrap();
    (dir, c)
}

fn req(group: &str, member: &str, session_ms: u64, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "test".into(),
        client_host: String::new(),
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        session_timeout: Duration::from_millis(session_ms),
        rebalance_timeout: Duration::from_millis(10_000),
        require_known_member_id: false,
    }
}

fn now(reply: JoinReply) -> JoinResult {
    match reply {
        JoinReply::Now(r) => r,
        JoinReply::Wait(mut rx) => rx.try_recv().expect("join should have completed at once"),
    }
}

fn pending(reply: JoinReply) -> oneshot::Receiver<JoinResult> {
    match reply {
        JoinReply::Wait(rx) => rx,
        JoinReply::Now(r) => panic!("join answered at once: {r:?}"),
    }
}

fn sync_req(group: &str, generation: i32, member: &str, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        group_id: group.into(),
        generation,
        member_id: member.into(),
        instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments.iter().map(|(m, a)| (m.to_string(), Bytes::from(a.to_string()))).collect(),
    }
}

fn sync_now(reply: SyncReply) -> SyncResult {
    match reply {
        SyncReply::Now(r) => r,
        SyncReply::Wait(mut rx) => rx.try_recv().expect("sync should have completed"),
    }
}

/// One member, joined and synced: returns its id.
fn stable_single(c: &GroupCoordinator, group: &str, session_ms: u64) -> String {
    let r = now(c.join(req(group, "", session_ms, &["range"])));
    assert_eq!((r.error, r.generation), (None, 1));
    let s = sync_now(c.sync(sync_req(group, 1, &r.member_id, &[(&r.member_id, "a0")])));
    assert_eq!(s.error, None);
    r.member_id
}

#[test]
fn first_member_leads_generation_one() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let r = now(c.join(req("g", "", 10_000, &["range", "roundrobin"])));
    assert_eq!(r.generation, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    let s = sync_now(c.sync(sync_req("g", 1, &r.member_id, &[(&r.member_id, "mine")])));
    assert_eq!(&s.assignment[..], b"mine");
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
}

#[test]
fn second_member_triggers_rebalance_and_both_get_the_next_generation() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 10_000);
    let mut b_rx = pending(c.join(req("g", "", 10_000, &["roundrobin", "range"])));
    assert_eq!(c.heartbeat("g", 1, &a, None), Err(GroupError::RebalanceInProgress));
    let ra = now(c.join(req("g", &a, 10_000, &["range", "roundrobin"])));
    let rb = b_rx.try_recv().expect("b completed");
    assert_eq!((ra.generation, rb.generation), (2, 2));
    assert_eq!(ra.leader, a, "the leader stays leader");
    assert_eq!((ra.members.len(), rb.members.len()), (2, 0));
    // One vote each: the tie goes to the first candidate in order.
    assert_eq!(ra.protocol_name, rb.protocol_name);
    // The follower syncs first and waits for the leader's assignment.
    let mut follower = match c.sync(sync_req("g", 2, &rb.member_id, &[])) {
        SyncReply::Wait(rx) => rx,
        SyncReply::Now(r) => panic!("follower answered before the leader synced: {r:?}"),
    };
    let leader = sync_now(c.sync(sync_req("g", 2, &a, &[(&a, "pa"), (&rb.member_id, "pb")])));
    assert_eq!(&leader.assignment[..], b"pa");
    assert_eq!(&follower.try_recv().unwrap().assignment[..], b"pb");
    assert_eq!(c.heartbeat("g", 2, &a, None), Ok(()));
    assert_eq!(c.heartbeat("g", 1, &a, None), Err(GroupError::IllegalGeneration));
}

#[test]
fn silent_member_is_evicted_by_the_sweep_after_its_session_timeout() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 6_000);
    let mut b_rx = pending(c.join(req("g", "", 30_000, &["range"])));
    let ra = now(c.join(req("g", &a, 6_000, &["range"])));
    let rb = b_rx.try_recv().unwrap();
    let _ = sync_now(c.sync(sync_req("g", 2, &ra.leader, &[(&a, "x"), (&rb.member_id, "y")])));
    let t0 = Instant::now();
    c.fire_due(t0 + Duration::from_millis(3_000));
    assert_eq!(c.describe("g").unwrap().members.len(), 2, "nothing expires early");
    c.fire_due(t0 + Duration::from_millis(7_000));
    let d = c.describe("g").unwrap();
    assert_eq!(d.members.len(), 1, "a evicted");
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(c.heartbeat("g", 2, &rb.member_id, None), Err(GroupError::RebalanceInProgress));
    let again = now(c.join(req("g", &rb.member_id, 30_000, &["range"])));
    assert_eq!((again.generation, again.leader.as_str()), (3, rb.member_id.as_str()), "b leads generation 3");
}

#[test]
fn heartbeats_keep_a_member_alive_without_growing_the_heap() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 6_000);
    for _ in 0..10_000 {
        assert_eq!(c.heartbeat("g", 1, &a, None), Ok(()));
    }
    assert!(c.deadline_entries() <= 4, "a heartbeat only moves the member's deadline");
}

#[test]
fn rebalance_timeout_drops_members_that_did_not_rejoin() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 60_000);
    let mut b_rx = pending(c.join(req("g", "", 60_000, &["range"])));
    c.fire_due(Instant::now() + Duration::from_secs(11));
    let rb = b_rx.try_recv().expect("the join completed at the rebalance timeout");
    assert_eq!(rb.generation, 2);
    assert_eq!(rb.leader, rb.member_id, "the only remaining member leads");
    assert_eq!(c.heartbeat("g", 2, &a, None), Err(GroupError::UnknownMemberId));
}

#[test]
fn no_common_protocol_and_bad_timeouts_are_refused_without_side_effects() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 10_000);
    let r = now(c.join(req("g", "", 10_000, &["sticky"])));
    assert_eq!(r.error, Some(GroupError::InconsistentGroupProtocol));
    let mut other_type = req("g", "", 10_000, &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(now(c.join(other_type)).error, Some(GroupError::InconsistentGroupProtocol));
    assert_eq!(now(c.join(req("g", "", 1, &["range"]))).error, Some(GroupError::InvalidSessionTimeout));
    assert_eq!(now(c.join(req("g", "", u64::MAX / 4, &["range"]))).error, Some(GroupError::InvalidSessionTimeout));
    let d = c.describe("g").unwrap();
    assert_eq!((d.state, d.generation, d.members.len()), (GroupState::Stable, 1, 1));
    assert_eq!(c.heartbeat("g", 1, &a, None), Ok(()));
}

#[test]
fn member_id_required_then_known_join() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let mut first = req("g", "", 10_000, &["range"]);
    first.require_known_member_id = true;
    let r = now(c.join(first));
    assert_eq!(r.error, Some(GroupError::MemberIdRequired));
    let mut second = req("g", &r.member_id, 10_000, &["range"]);
    second.require_known_member_id = true;
    let ok = now(c.join(second));
    assert_eq!((ok.error, ok.generation, ok.member_id), (None, 1, r.member_id));
}

#[test]
fn pending_member_that_never_returns_stops_blocking_the_rebalance() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 60_000);
    let mut ghost = req("g", "", 6_000, &["range"]);
    ghost.require_known_member_id = true;
    assert_eq!(now(c.join(ghost)).error, Some(GroupError::MemberIdRequired));
    // a's rejoin is not held back by the ghost forever: its id expires after the session timeout.
    let mut b_rx = pending(c.join(req("g", "", 60_000, &["range"])));
    let mut a_rx = pending(c.join(req("g", &a, 60_000, &["range"])));
    c.fire_due(Instant::now() + Duration::from_millis(6_500));
    assert_eq!(a_rx.try_recv().unwrap().generation, 2);
    assert_eq!(b_rx.try_recv().unwrap().generation, 2);
}

#[test]
fn commits_check_membership_and_generation() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 10_000);
    let o = [OffsetToCommit { topic: "t".into(), partition: 0, offset: 42, leader_epoch: -1, metadata: None }];
    let commit = |generation, member: &str| CommitRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        instance_id: None,
    };
    assert_eq!(c.commit_offsets(&commit(2, &a), &o), Err(GroupError::IllegalGeneration));
    assert_eq!(c.commit_offsets(&commit(1, "x"), &o), Err(GroupError::UnknownMemberId));
    assert_eq!(c.commit_offsets(&commit(-1, ""), &o), Err(GroupError::UnknownMemberId), "group has members");
    assert_eq!(c.commit_offsets(&commit(1, &a), &o), Ok(vec![Ok(())]));
    assert_eq!(c.fetch_offsets("g", Some(&[("t".into(), 0)])).unwrap()[0].2.as_ref().map(|c| c.offset), Some(42));
    assert_eq!(
        c.commit_offsets(&CommitRequest { group_id: "new".into(), ..commit(3, "m") }, &o),
        Err(GroupError::IllegalGeneration)
    );
}

#[test]
fn offsets_of_empty_groups_expire_after_retention_but_active_ones_stay() {
    let (_d, c) = coordinator(Duration::from_secs(60));
    let o = [OffsetToCommit { topic: "t".into(), partition: 0, offset: 1, leader_epoch: -1, metadata: None }];
    let standalone =
        CommitRequest { group_id: "idle".into(), generation: -1, member_id: String::new(), instance_id: None };
    c.commit_offsets(&standalone, &o).unwrap();
    let a = stable_single(&c, "busy", 10_000);
    let member = CommitRequest { group_id: "busy".into(), generation: 1, member_id: a, instance_id: None };
    c.commit_offsets(&member, &o).unwrap();
    c.housekeeping(coordinator::now_ms() + 30_000);
    assert_eq!(c.fetch_offsets("idle", None).unwrap().len(), 1, "within retention");
    c.housekeeping(coordinator::now_ms() + 61_000);
    assert!(c.fetch_offsets("idle", None).unwrap().is_empty(), "expired");
    assert!(c.list().iter().all(|g| g.group_id != "idle"), "an empty group without offsets is dropped");
    assert_eq!(c.fetch_offsets("busy", None).unwrap().len(), 1, "a group with members keeps its offsets");
}

#[test]
fn leader_leaving_hands_leadership_to_a_remaining_member() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 10_000);
    let mut b_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    let _ = now(c.join(req("g", &a, 10_000, &["range"])));
    let b = b_rx.try_recv().unwrap().member_id;
    assert_eq!(c.leave("g", &[(a.clone(), None)]).unwrap(), vec![Ok(())]);
    let rb = now(c.join(req("g", &b, 10_000, &["range"])));
    assert_eq!((rb.leader.as_str(), rb.generation), (b.as_str(), 3));
    assert_eq!(c.leave("g", &[(a, None)]).unwrap(), vec![Err(GroupError::UnknownMemberId)]);
}

#[test]
fn sync_phase_deadline_does_not_cut_short_the_next_join_phase() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 60_000);
    let between = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    let _b = pending(c.join(req("g", "", 60_000, &["range"])));
    // Past the first generation's sync-phase deadline, before this join phase's deadline.
    c.fire_due(between + Duration::from_secs(10));
    let d = c.describe("g").unwrap();
    assert_eq!((d.state, d.members.len()), (GroupState::PreparingRebalance, 2), "a still has time to rejoin");
    assert_eq!(c.heartbeat("g", 1, &a, None), Err(GroupError::RebalanceInProgress));
}

/// A minimal RecordBatch v2 of `count` records (header only; what the log validates).
fn batch(count: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned by the log
    b.extend_from_slice(&0i32.to_be_bytes()); // batch length, patched below
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&coordinator::now_ms().to_be_bytes());
    b.extend_from_slice(&coordinator::now_ms().to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    for i in 0..count {
        // length 6 (zigzag 12), attributes, timestamp delta 0, offset delta i, key -1, value -1, headers 0
        b.extend_from_slice(&[12, 0, 0, (i as u8) << 1, 1, 1, 0]);
    }
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = offsets::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn lag_is_log_end_minus_committed_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = crate::Broker::open(crate::BrokerConfig::new(dir.path())).unwrap();
    let topic = broker.create_topic("lagged", Some(2), Default::default()).unwrap();
    let p0 = topic.partition(0).unwrap();
    p0.append_written(&mut batch(5)).unwrap();
    p0.append_written(&mut batch(5)).unwrap();
    assert_eq!(p0.log_end_offset(), 10);
    let commit = CommitRequest { group_id: "g".into(), generation: -1, member_id: String::new(), instance_id: None };
    let o = |partition, offset| OffsetToCommit {
        topic: "lagged".into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: None,
    };
    broker.groups().commit_offsets(&commit, &[o(0, 3), o(1, 0)]).unwrap();
    let lag = broker.groups().lag(&broker, "g");
    assert_eq!(
        lag.iter().map(|l| (l.partition, l.committed, l.log_end, l.lag)).collect::<Vec<_>>(),
        vec![(0, 3, 10, 7), (1, 0, 0, 0)]
    );
}

#[test]
fn leaving_an_unknown_group_is_a_per_member_error() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let members = [("m1".to_string(), None), ("m2".to_string(), Some("i".to_string()))];
    assert_eq!(c.leave("nope", &members), Ok(vec![Err(GroupError::UnknownMemberId); 2]));
}

#[test]
fn oversized_names_never_reach_the_offsets_log() {
    let (dir, c) = coordinator(Duration::from_secs(3600));
    let long = "t".repeat(70_000);
    let commit = CommitRequest { group_id: "g".into(), generation: -1, member_id: String::new(), instance_id: None };
    let o = OffsetToCommit { topic: long.clone(), partition: 0, offset: 1, leader_epoch: -1, metadata: None };
    assert_eq!(c.commit_offsets(&commit, &[o]), Ok(vec![Err(GroupError::UnknownTopicOrPartition)]));
    let ok = OffsetToCommit { topic: "t".into(), partition: 0, offset: 9, leader_epoch: -1, metadata: None };
    c.commit_offsets(&commit, &[ok]).unwrap();
    assert_eq!(c.delete_offsets("g", &[(long, 0)]), Ok(vec![Err(GroupError::UnknownTopicOrPartition)]));
    drop(c);
    let reopened = GroupCoordinator::open(dir.path(), GroupConfig::default()).unwrap();
    assert_eq!(reopened.fetch_offsets("g", None).unwrap().len(), 1, "the log replays cleanly");
}

fn standalone(group: &str) -> CommitRequest {
    CommitRequest { group_id: group.into(), generation: -1, member_id: String::new(), instance_id: None }
}

fn offset_on(topic: &str, partition: i32, offset: i64) -> OffsetToCommit {
    OffsetToCommit { topic: topic.into(), partition, offset, leader_epoch: -1, metadata: None }
}

#[test]
fn a_failed_offsets_fsync_poisons_the_log_and_refuses_later_commits() {
    let (_d, c) = coordinator(Duration::from_secs(60));
    c.commit_offsets(&standalone("g"), &[offset_on("t", 0, 1)]).unwrap();
    c.fail_next_sync.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.commit_offsets(&standalone("g"), &[offset_on("t", 0, 2)]), Ok(vec![Err(GroupError::Storage)]));
    // Not retried: a later commit fails too, although the next fsync would succeed.
    assert_eq!(c.commit_offsets(&standalone("g"), &[offset_on("t", 0, 3)]), Ok(vec![Err(GroupError::Storage)]));
    assert!(c.store.lock().unwrap().is_poisoned());
}

#[test]
fn an_acknowledged_commit_is_already_fsynced() {
    let (_d, c) = coordinator(Duration::from_secs(60));
    c.commit_offsets(&standalone("g"), &[offset_on("t", 0, 1)]).unwrap();
    let store = c.store.lock().unwrap();
    assert!(store.written_seq() > 0);
    assert!(store.is_synced_through(store.written_seq()).unwrap(), "acknowledged before its fsync");
}

#[test]
fn concurrent_commits_all_end_durable() {
    let (_d, c) = coordinator(Duration::from_secs(60));
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = &c;
            s.spawn(move || {
                for i in 0..50 {
                    let group = format!("g{t}");
                    assert_eq!(c.commit_offsets(&standalone(&group), &[offset_on("t", 0, i)]), Ok(vec![Ok(())]));
                }
            });
        }
    });
    let store = c.store.lock().unwrap();
    assert!(store.is_synced_through(store.written_seq()).unwrap());
    assert_eq!(store.len(), 8);
}

#[test]
fn a_deleted_topic_loses_its_offsets_in_every_group_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = GroupCoordinator::open(dir.path(), GroupConfig::default()).unwrap();
        c.commit_offsets(&standalone("a"), &[offset_on("t", 0, 10), offset_on("t", 1, 4), offset_on("u", 0, 7)])
            .unwrap();
        c.commit_offsets(&standalone("b"), &[offset_on("t", 0, 3)]).unwrap();
        assert_eq!(c.topic_deleted("t"), Ok(3));
        assert_eq!(c.topic_deleted("t"), Ok(0));
    }
    let c = GroupCoordinator::open(dir.path(), GroupConfig::default()).unwrap();
    let left: Vec<(String, i32)> = c.fetch_offsets("a", None).unwrap().into_iter().map(|(t, p, _)| (t, p)).collect();
    assert_eq!(left, vec![("u".to_string(), 0)]);
    assert!(c.fetch_offsets("b", None).unwrap().is_empty());
}

// KIP-134: a new group's first rebalance waits the delay, a newcomer in a window adds a
// window, and both members then get generation 1 together.
#[test]
fn initial_delay_holds_the_first_rebalance_and_newcomers_extend_it() {
    let (_d, c) = delayed_coordinator(Duration::from_secs(3));
    let t0 = Instant::now();
    let mut a_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    let mut b_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    c.fire_due(t0 + Duration::from_millis(2_000));
    assert!(a_rx.try_recv().is_err(), "held although every member has joined");
    assert_eq!(c.describe("g").unwrap().state, GroupState::PreparingRebalance);
    c.fire_due(t0 + Duration::from_millis(3_500));
    assert!(a_rx.try_recv().is_err(), "b joined in the first window: a second one runs");
    c.fire_due(t0 + Duration::from_millis(7_000));
    let (ra, rb) = (a_rx.try_recv().expect("a joined"), b_rx.try_recv().expect("b joined"));
    assert_eq!((ra.generation, rb.generation), (1, 1));
    assert_eq!(ra.members.len() + rb.members.len(), 2, "the leader sees both members");
}

// The delay ends after a window with no newcomer, is bounded by the rebalance timeout, and
// applies only to a rebalance from Empty: a later join rebalances at once.
#[test]
fn initial_delay_ends_and_never_delays_a_running_group() {
    let (_d, c) = delayed_coordinator(Duration::from_secs(3));
    let t0 = Instant::now();
    let mut a_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    c.fire_due(t0 + Duration::from_millis(3_500));
    let ra = a_rx.try_recv().expect("one window with no newcomer");
    assert_eq!(ra.generation, 1);
    let _ = sync_now(c.sync(sync_req("g", 1, &ra.member_id, &[(&ra.member_id, "all")])));
    let mut b_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    let ra2 = now(c.join(req("g", &ra.member_id, 10_000, &["range"])));
    assert_eq!(ra2.generation, 2, "no delay once the group is running");
    assert_eq!(b_rx.try_recv().expect("b joined").generation, 2);

    let mut x_rx = pending(c.join(req("h", "", 10_000, &["range"])));
    for (i, at_ms) in [2_000u64, 5_000, 8_000, 11_000, 14_000].into_iter().enumerate() {
        drop(pending(c.join(req("h", "", 10_000, &["range"]))));
        c.fire_due(t0 + Duration::from_millis(at_ms + 1_100));
        if x_rx.try_recv().is_ok() {
            assert!(i >= 2, "newcomers in every window keep extending up to the 10 s rebalance timeout");
            return;
        }
    }
    panic!("the initial delay outlasted the rebalance timeout");
}

#[test]
fn an_unloaded_group_answers_its_waiting_join_not_coordinator() {
    let (_d, c) = coordinator(Duration::from_secs(3600));
    let a = stable_single(&c, "g", 10_000);
    let mut b_rx = pending(c.join(req("g", "", 10_000, &["range"])));
    let mut inner = c.inner.lock().unwrap();
    inner.groups.get_mut("g").expect("group g").unload();
    drop(inner);
    let b = b_rx.try_recv().expect("the waiting join is answered");
    assert_eq!(b.error, Some(GroupError::NotCoordinator));
    assert!(!a.is_empty());
}
