//! Apply sequences on `ClusterState`: what each command changes, and that refused commands
//! change nothing.

use std::collections::BTreeMap;

use super::command::{MetaCommand, MetaReply};
use super::limits::{PARTITIONS_PER_TOPIC_MAX, PRODUCER_ID_BLOCK_COUNT_MAX};
use super::placement::assign_replicas;
use super::state::{ClusterState, NO_EPOCH};
use crate::types::NodeId;

pub(super) fn register(node_id: NodeId, at_ms: i64) -> MetaCommand {
    MetaCommand::RegisterNode {
        node_id,
        cluster_addr: format!("127.0.0.{node_id}:7000"),
        kafka_addr: format!("127.0.0.{node_id}:9092"),
        nsq_tcp_addr: format!("127.0.0.{node_id}:4150"),
        http_addr: format!("127.0.0.{node_id}:4151"),
        rack: None,
        at_ms,
        kafka_listeners: Default::default(),
    }
}

pub(super) fn create(name: &str, partitions: Vec<Vec<NodeId>>) -> MetaCommand {
    MetaCommand::CreateTopic { name: name.into(), partitions, configs: BTreeMap::new() }
}

fn leader(topic: &str, partition: i32, leader: NodeId, epoch: i32) -> MetaCommand {
    MetaCommand::ReportLeader { topic: topic.into(), partition, leader, epoch, topic_id: None }
}

/// A state with nodes 1, 2, 3 and topic "t" of two partitions on them.
fn three_nodes_one_topic() -> ClusterState {
    let mut state = ClusterState::default();
    for node in 1..=3 {
        assert_eq!(state.apply(register(node, 100)), MetaReply::Ok);
    }
    assert_eq!(state.apply(create("t", vec![vec![1, 2, 3], vec![2, 3, 1]])), MetaReply::TopicCreated);
    state
}

/// Applies `command`, expects `reply`, and checks the state did not change.
fn refused(state: &mut ClusterState, command: MetaCommand) -> MetaReply {
    let before = state.clone();
    let reply = state.apply(command);
    assert_eq!(*state, before, "a refused command changed the state ({reply:?})");
    reply
}

#[test]
fn create_config_delete_and_recreate_a_topic() {
    // Proves the topic life cycle and that a re-created topic gets a new id (creation order).
    let mut state = three_nodes_one_topic();
    let topic = &state.topics["t"];
    assert_eq!((topic.id, topic.partitions.len()), (0, 2));
    assert_eq!(topic.partitions[1].replicas, vec![2, 3, 1]);
    assert_eq!(topic.partitions[1].isr, vec![2, 3, 1]);
    assert_eq!((topic.partitions[1].leader, topic.partitions[1].leader_epoch), (None, NO_EPOCH));
    assert_eq!(refused(&mut state, create("t", vec![vec![1]])), MetaReply::TopicExists);

    let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    let set = MetaCommand::SetTopicConfigs { name: "t".into(), configs: configs.clone() };
    assert_eq!(state.apply(set), MetaReply::Ok);
    assert_eq!(state.topics["t"].configs, configs);
    let set_unknown = MetaCommand::SetTopicConfigs { name: "nope".into(), configs: BTreeMap::new() };
    assert_eq!(refused(&mut state, set_unknown), MetaReply::UnknownTopic);

    assert_eq!(state.apply(MetaCommand::DeleteTopic { name: "t".into() }), MetaReply::Ok);
    assert!(state.topics.is_empty());
    assert_eq!(refused(&mut state, MetaCommand::DeleteTopic { name: "t".into() }), MetaReply::UnknownTopic);
    assert_eq!(state.apply(create("t", vec![vec![3]])), MetaReply::TopicCreated);
    assert_eq!(state.topics["t"].id, 1);
    assert_eq!(state.topics["t"].configs, BTreeMap::new());
}

#[test]
fn bad_topics_are_refused_without_change() {
    // Proves invalid names, unknown or duplicate replicas, uneven replication and bounds are
    // refused and leave the state as it was.
    let mut state = three_nodes_one_topic();
    for command in [
        create("bad name", vec![vec![1]]),
        create("u", vec![]),
        create("u", vec![vec![]]),
        create("u", vec![vec![1, 9]]),
        create("u", vec![vec![1, 1]]),
        create("u", vec![vec![1, 2], vec![3]]),
        create("u", vec![vec![1]; PARTITIONS_PER_TOPIC_MAX + 1]),
        MetaCommand::CreateTopic {
            name: "u".into(),
            partitions: vec![vec![1]],
            configs: BTreeMap::from([(String::new(), "x".to_string())]),
        },
    ] {
        assert!(matches!(refused(&mut state, command.clone()), MetaReply::Invalid(_)), "{command:?}");
    }
}

#[test]
fn partitions_are_added_with_the_topics_replication_factor() {
    // Proves CreatePartitions appends and keeps every partition at the same replication factor.
    let mut state = three_nodes_one_topic();
    let add = |new| MetaCommand::CreatePartitions { name: "t".into(), new, count_before: None };
    assert_eq!(state.apply(add(vec![vec![3, 1, 2]])), MetaReply::Ok);
    assert_eq!(state.topics["t"].partitions.len(), 3);
    assert_eq!(state.partition("t", 2).map(|p| p.replicas.clone()), Some(vec![3, 1, 2]));
    assert!(matches!(refused(&mut state, add(vec![vec![1]])), MetaReply::Invalid(_)));
    assert!(matches!(refused(&mut state, add(vec![])), MetaReply::Invalid(_)));
    let unknown = MetaCommand::CreatePartitions { name: "nope".into(), new: vec![vec![1]], count_before: None };
    assert_eq!(refused(&mut state, unknown), MetaReply::UnknownTopic);
}

#[test]
fn a_deleted_topics_reports_never_land_on_its_successor() {
    // Proves leader and ISR reports naming the topic id of a deleted topic are refused once
    // the name is re-created, so its old group's leader, epoch and ISR do not show for the new
    // topic.
    let mut state = three_nodes_one_topic();
    let old_id = state.topics["t"].id;
    let report =
        |topic_id| MetaCommand::ReportLeader { topic: "t".into(), partition: 0, leader: 1, epoch: 9, topic_id };
    assert_eq!(state.apply(MetaCommand::DeleteTopic { name: "t".into() }), MetaReply::Ok);
    assert_eq!(state.apply(create("t", vec![vec![1, 2, 3]])), MetaReply::TopicCreated);
    assert!(matches!(refused(&mut state, report(Some(old_id))), MetaReply::Invalid(_)));
    assert_eq!(state.apply(report(Some(state.topics["t"].id))), MetaReply::Ok);
    let isr = |topic_id| MetaCommand::ReportIsr { topic: "t".into(), partition: 0, isr: vec![1], epoch: 9, topic_id };
    assert!(matches!(refused(&mut state, isr(Some(old_id))), MetaReply::Invalid(_)));
    assert_eq!(state.apply(isr(Some(state.topics["t"].id))), MetaReply::Ok);
}

#[test]
fn a_retried_create_partitions_adds_nothing_twice() {
    // Proves a CreatePartitions made for another partition count (a retry after the first
    // was applied, or a concurrent one) is refused, so partitions are never added twice.
    let mut state = three_nodes_one_topic();
    let grow = |seen| MetaCommand::CreatePartitions { name: "t".into(), new: vec![vec![3, 1, 2]], count_before: seen };
    assert_eq!(state.apply(grow(Some(2))), MetaReply::Ok);
    assert!(matches!(refused(&mut state, grow(Some(2))), MetaReply::Invalid(_)));
    assert_eq!(state.topics["t"].partitions.len(), 3);
    assert_eq!(state.apply(grow(Some(3))), MetaReply::Ok);
    assert_eq!(state.topics["t"].partitions.len(), 4);
}

#[test]
fn leader_reports_with_stale_epochs_are_ignored() {
    // Proves only a newer epoch moves the leader, and reports naming a non-replica, an unknown
    // topic or a missing partition are refused.
    let mut state = three_nodes_one_topic();
    assert_eq!(state.apply(leader("t", 0, 2, 5)), MetaReply::Ok);
    assert_eq!(refused(&mut state, leader("t", 0, 3, 5)), MetaReply::StaleEpoch { current: 5 });
    assert_eq!(refused(&mut state, leader("t", 0, 3, 4)), MetaReply::StaleEpoch { current: 5 });
    assert_eq!(state.apply(leader("t", 0, 3, 6)), MetaReply::Ok);
    let p = state.partition("t", 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch), (Some(3), 6));
    assert_eq!(state.partition("t", 1).unwrap().leader, None);

    state.apply(register(4, 100));
    assert!(matches!(refused(&mut state, leader("t", 0, 4, 7)), MetaReply::Invalid(_)));
    assert!(matches!(refused(&mut state, leader("t", 2, 1, 7)), MetaReply::Invalid(_)));
    assert!(matches!(refused(&mut state, leader("t", -1, 1, 7)), MetaReply::Invalid(_)));
    assert_eq!(refused(&mut state, leader("nope", 0, 1, 7)), MetaReply::UnknownTopic);
}

#[test]
fn isr_reports_follow_the_epoch_rule() {
    // Proves an ISR report of the current epoch applies (several per term), an older one is
    // ignored, and an ISR with strangers or duplicates is refused.
    let mut state = three_nodes_one_topic();
    let isr = |isr: Vec<NodeId>, epoch| MetaCommand::ReportIsr {
        topic: "t".into(),
        partition: 0,
        isr,
        epoch,
        topic_id: None,
    };
    state.apply(leader("t", 0, 1, 3));
    assert_eq!(state.apply(isr(vec![1, 2], 3)), MetaReply::Ok);
    assert_eq!(state.apply(isr(vec![1], 3)), MetaReply::Ok);
    assert_eq!(state.partition("t", 0).unwrap().isr, vec![1]);
    assert_eq!(refused(&mut state, isr(vec![1, 2, 3], 2)), MetaReply::StaleEpoch { current: 3 });
    assert_eq!(state.apply(isr(vec![2, 3], 4)), MetaReply::Ok);
    assert_eq!(refused(&mut state, isr(vec![2], 3)), MetaReply::StaleEpoch { current: 4 });
    state.apply(register(4, 100));
    assert!(matches!(refused(&mut state, isr(vec![1, 4], 4)), MetaReply::Invalid(_)));
    assert!(matches!(refused(&mut state, isr(vec![1, 1], 4)), MetaReply::Invalid(_)));
}

#[test]
fn a_reassignment_target_may_lead_and_clears_when_equal() {
    // Proves a recorded target's nodes may report leadership, and reassigning to the current
    // replicas clears the target.
    let mut state = three_nodes_one_topic();
    state.apply(register(4, 100));
    let reassign = |replicas| MetaCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas };
    assert_eq!(state.apply(reassign(vec![4, 2, 3])), MetaReply::Ok);
    assert_eq!(state.partition("t", 0).unwrap().target_replicas, Some(vec![4, 2, 3]));
    assert_eq!(state.apply(leader("t", 0, 4, 1)), MetaReply::Ok);
    assert!(matches!(refused(&mut state, reassign(vec![5])), MetaReply::Invalid(_)));
    assert_eq!(state.apply(reassign(vec![1, 2, 3])), MetaReply::Ok);
    assert_eq!(state.partition("t", 0).unwrap().target_replicas, None);
}

#[test]
fn only_the_recorded_target_finishes_a_reassignment() {
    // Proves finishing makes the target the replicas (ISR without the nodes that left, with
    // the ones that came), and a finish naming another set, or with no move under way, is refused.
    let mut state = three_nodes_one_topic();
    state.apply(register(4, 100));
    let finish = |replicas| MetaCommand::FinishReassignment { topic: "t".into(), partition: 0, replicas };
    assert!(matches!(refused(&mut state, finish(vec![1, 2, 3])), MetaReply::Invalid(_)));
    let reassign = MetaCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas: vec![4, 2, 3] };
    assert_eq!(state.apply(reassign), MetaReply::Ok);
    assert!(matches!(refused(&mut state, finish(vec![4, 2])), MetaReply::Invalid(_)));
    assert_eq!(state.apply(finish(vec![4, 2, 3])), MetaReply::Ok);
    let p = state.partition("t", 0).unwrap();
    assert_eq!((p.replicas.clone(), p.target_replicas.clone(), p.isr.clone()), (vec![4, 2, 3], None, vec![2, 3, 4]));
}

#[test]
fn a_node_is_removed_only_once_it_holds_no_replica() {
    // Proves RemoveNode refuses a node that is a replica or a move's target, and forgets it
    // once the partitions moved off it.
    let mut state = three_nodes_one_topic();
    state.apply(register(4, 100));
    let remove = MetaCommand::RemoveNode { node_id: 1 };
    assert!(matches!(refused(&mut state, remove.clone()), MetaReply::Invalid(_)));
    for (partition, replicas) in [(0, vec![4, 2, 3]), (1, vec![2, 3, 4])] {
        let reassign = MetaCommand::ReassignPartition { topic: "t".into(), partition, replicas: replicas.clone() };
        assert_eq!(state.apply(reassign), MetaReply::Ok);
        assert!(matches!(refused(&mut state, remove.clone()), MetaReply::Invalid(_)));
        assert_eq!(
            state.apply(MetaCommand::FinishReassignment { topic: "t".into(), partition, replicas }),
            MetaReply::Ok
        );
    }
    assert_eq!(state.apply(remove.clone()), MetaReply::Ok);
    assert!(!state.nodes.contains_key(&1));
    assert!(matches!(refused(&mut state, remove), MetaReply::Invalid(_)));
}

#[test]
fn producer_id_blocks_never_overlap() {
    // Proves consecutive blocks are disjoint and contiguous, and bad counts or an exhausted id
    // space are refused without moving the next id.
    let mut state = ClusterState::default();
    let allocate = |count| MetaCommand::AllocateProducerIds { count };
    let mut blocks = Vec::new();
    for count in [1000, 1, 5000, PRODUCER_ID_BLOCK_COUNT_MAX] {
        match state.apply(allocate(count)) {
            MetaReply::ProducerIds { first, count: got } => blocks.push((first, got)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(blocks, vec![(0, 1000), (1000, 1), (1001, 5000), (6001, PRODUCER_ID_BLOCK_COUNT_MAX)]);
    for bad in [0, -1, PRODUCER_ID_BLOCK_COUNT_MAX + 1] {
        assert!(matches!(refused(&mut state, allocate(bad)), MetaReply::Invalid(_)));
    }
    state.next_producer_id = i64::MAX - 10;
    assert!(matches!(refused(&mut state, allocate(11)), MetaReply::Invalid(_)));
    assert_eq!(state.apply(allocate(10)), MetaReply::ProducerIds { first: i64::MAX - 10, count: 10 });
}

#[test]
fn nodes_register_and_update_and_the_cluster_id_is_set_once() {
    // Proves re-registration updates addresses but keeps the first registration time and a
    // last-seen time that never moves back; the cluster id cannot change once set.
    let mut state = ClusterState::default();
    state.apply(register(1, 100));
    let moved = MetaCommand::RegisterNode {
        node_id: 1,
        cluster_addr: "127.0.0.9:7000".into(),
        kafka_addr: "127.0.0.9:9092".into(),
        nsq_tcp_addr: "127.0.0.9:4150".into(),
        http_addr: "127.0.0.9:4151".into(),
        rack: Some("r2".into()),
        at_ms: 50,
        kafka_listeners: Default::default(),
    };
    assert_eq!(state.apply(moved), MetaReply::Ok);
    let node = &state.nodes[&1];
    assert_eq!((node.kafka_addr.as_str(), node.rack.as_deref()), ("127.0.0.9:9092", Some("r2")));
    assert_eq!((node.registered_at_ms, node.last_seen_ms), (100, 100));
    state.apply(register(1, 300));
    assert_eq!(state.nodes[&1].last_seen_ms, 300);
    assert!(matches!(refused(&mut state, register(1 << 40, 0)), MetaReply::Invalid(_)));

    let init = |id: &str| MetaCommand::InitCluster { cluster_id: id.into() };
    assert_eq!(state.apply(init("c1")), MetaReply::Ok);
    assert_eq!(state.apply(init("c1")), MetaReply::Ok);
    assert!(matches!(refused(&mut state, init("c2")), MetaReply::Invalid(_)));
    assert!(matches!(refused(&mut state, init("")), MetaReply::Invalid(_)));
    assert_eq!(state.cluster_id.as_deref(), Some("c1"));
}

#[test]
fn the_same_commands_give_the_same_state() {
    // Proves apply is deterministic: two replicas applying one sequence agree byte for byte.
    let commands: Vec<MetaCommand> = (1..=3)
        .map(|n| register(n, 10 * n as i64))
        .chain([create("a", vec![vec![1, 2], vec![2, 3]]), leader("a", 1, 3, 2), create("b", vec![vec![3, 1]])])
        .chain([MetaCommand::AllocateProducerIds { count: 10 }, MetaCommand::DeleteTopic { name: "a".into() }])
        .collect();
    let (mut one, mut two) = (ClusterState::default(), ClusterState::default());
    let replies_one: Vec<_> = commands.iter().cloned().map(|c| one.apply(c)).collect();
    let replies_two: Vec<_> = commands.into_iter().map(|c| two.apply(c)).collect();
    assert_eq!(replies_one, replies_two);
    assert_eq!(serde_json::to_vec(&one).unwrap(), serde_json::to_vec(&two).unwrap());
}

#[test]
fn placed_replicas_are_accepted_and_keep_rotating() {
    // Proves the proposer's flow: assign_replicas over the registered nodes gives a CreateTopic
    // (and CreatePartitions) that apply accepts, continuing the leader rotation.
    let mut state = three_nodes_one_topic();
    let nodes: Vec<NodeId> = state.nodes.keys().copied().collect();
    let partitions = assign_replicas(&nodes, &state, 4, 2).unwrap();
    assert_eq!(state.apply(create("placed", partitions)), MetaReply::TopicCreated);
    let leaders: Vec<_> = state.topics["placed"].partitions.iter().map(|p| p.replicas[0]).collect();
    assert_eq!(leaders, vec![3, 1, 2, 3], "topic t already holds 2 partitions, so placement starts at the third node");
    let more = assign_replicas(&nodes, &state, 2, 2).unwrap();
    assert_eq!(
        state.apply(MetaCommand::CreatePartitions { name: "placed".into(), new: more, count_before: Some(4) }),
        MetaReply::Ok
    );
    assert_eq!(state.topics["placed"].partitions.len(), 6);
}
