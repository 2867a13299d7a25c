//! Real openraft groups over the transport: election, writes, forwarding, failover, and
//! several groups over one connection per peer.

use bytes::Bytes;
use openraft::{BasicNode, Config, SnapshotPolicy};

use super::harness::{agreed_leader, all_applied, bounded, raft_config, three_nodes, three_nodes_with, TestNode};
use crate::transport::ClientWriteReply;
use crate::types::{Batches, GroupId};

fn partition() -> GroupId {
    GroupId::Partition { topic: "orders".into(), partition: 0, topic_id: 0 }
}

fn batch(bytes: &'static [u8]) -> Batches {
    Batches(Bytes::from_static(bytes))
}

fn node(nodes: &[TestNode], id: u64) -> &TestNode {
    nodes.iter().find(|node| node.id == id).unwrap()
}

/// Three nodes elect a leader; writes through the leader's Raft and forwarded by
/// `Transport::client_write` reach all three; a follower answers "not leader" naming the
/// leader; after the leader dies the other two elect a new one and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_forward_and_fail_over() {
    bounded(async {
        let group = partition();
        let nodes = three_nodes(std::slice::from_ref(&group)).await;
        let all: Vec<&TestNode> = nodes.iter().collect();
        let leader_id = agreed_leader(&all, &group, None).await;
        let leader = node(&nodes, leader_id);
        let follower = nodes.iter().find(|n| n.id != leader_id).unwrap();

        let written = leader.raft(&group).client_write(batch(b"one")).await.unwrap();
        assert_eq!(written.data.offsets, Some((0, 0)));

        // A write sent to a follower is refused with the leader's id and address.
        let refused = follower.transport.client_write(&follower.addr, group.clone(), batch(b"lost")).await.unwrap();
        assert_eq!(
            refused,
            ClientWriteReply::NotLeader { leader_id: Some(leader_id), leader_addr: Some(leader.addr.clone()) }
        );
        // Forwarded to the leader it is applied.
        match follower.transport.client_write(&leader.addr, group.clone(), batch(b"two")).await.unwrap() {
            ClientWriteReply::Applied { data, .. } => assert_eq!(data.offsets, Some((1, 1))),
            other => panic!("forwarded write: {other:?}"),
        }
        all_applied(&all, &group, &[b"one", b"two"]).await;

        leader.kill().await;
        let alive: Vec<&TestNode> = nodes.iter().filter(|n| n.id != leader_id).collect();
        let new_leader_id = agreed_leader(&alive, &group, Some(leader_id)).await;
        let new_leader = node(&nodes, new_leader_id);
        let other = alive.iter().find(|n| n.id != new_leader_id).unwrap();

        new_leader.raft(&group).client_write(batch(b"three")).await.unwrap();
        match other.transport.client_write(&new_leader.addr, group.clone(), batch(b"four")).await.unwrap() {
            ClientWriteReply::Applied { .. } => {}
            other => panic!("write after failover: {other:?}"),
        }
        all_applied(&alive, &group, &[b"one", b"two", b"three", b"four"]).await;
        // The dead leader's address is unreachable now, and says so (no hang).
        let dead = other.transport.client_write(&leader.addr, group.clone(), batch(b"x")).await;
        assert!(dead.is_err(), "{dead:?}");
    })
    .await;
}

/// Two groups on the same three nodes each elect a leader and replicate, while every node
/// dials each peer at most once: the groups share one connection per peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_share_one_connection_per_peer() {
    bounded(async {
        let groups = [GroupId::Meta, partition()];
        let nodes = three_nodes(&groups).await;
        let all: Vec<&TestNode> = nodes.iter().collect();
        for group in &groups {
            let leader = node(&nodes, agreed_leader(&all, group, None).await);
            leader.raft(group).client_write(batch(b"for this group")).await.unwrap();
            all_applied(&all, group, &[b"for this group"]).await;
        }
        for n in &nodes {
            assert!(
                n.transport.connections_opened() <= 2,
                "node {} dialled {}",
                n.id,
                n.transport.connections_opened()
            );
        }
        // Every leader replicates to both peers, so it dialled both, once.
        let meta_leader = node(&nodes, agreed_leader(&all, &GroupId::Meta, None).await);
        assert_eq!(meta_leader.transport.connections_opened(), 2);
    })
    .await;
}

/// A learner that joins after the leader purged its log catches up by a snapshot sent in many
/// small chunks through `install_snapshot` over the transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_learner_catches_up_by_chunked_snapshot() {
    bounded(async {
        let group = partition();
        let config = Config {
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            purge_batch_size: 1,
            // Far below the snapshot's size, so it takes many InstallSnapshot calls.
            snapshot_max_chunk_size: 64,
            ..raft_config()
        };
        let nodes = three_nodes_with(std::slice::from_ref(&group), config.clone()).await;
        let all: Vec<&TestNode> = nodes.iter().collect();
        let leader = node(&nodes, agreed_leader(&all, &group, None).await);
        let raft = leader.raft(&group);
        for bytes in [b"a".as_slice(), b"b", b"c"] {
            raft.client_write(Batches(Bytes::copy_from_slice(bytes))).await.unwrap();
        }
        all_applied(&all, &group, &[b"a", b"b", b"c"]).await;
        let last = raft.metrics().borrow().last_applied.unwrap();
        raft.trigger().snapshot().await.unwrap();
        raft.wait(None).snapshot(last, "snapshot built").await.unwrap();
        raft.wait(None).purged(Some(last), "log purged").await.unwrap();

        let learner = TestNode::start(4).await;
        learner.add_group(&group, config).await;
        raft.add_learner(4, BasicNode { addr: learner.addr.clone() }, true).await.unwrap();
        all_applied(&[&learner], &group, &[b"a", b"b", b"c"]).await;
        let installed = learner.raft(&group).metrics().borrow().snapshot;
        assert_eq!(installed, Some(last), "the learner's state came from the snapshot");
    })
    .await;
}
