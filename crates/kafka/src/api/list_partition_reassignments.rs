//! ListPartitionReassignments: the partition moves under way, as the metadata group records
//! them (all of them, or those of the partitions named). While a partition moves, its
//! replicas are the union of where it is and where it goes, as Kafka lists them.

use crate::server::Context;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
use sluice_broker::reassignment::Reassignment;
use std::collections::BTreeMap;

pub fn handle(ctx: &Context, request: ListPartitionReassignmentsRequest) -> ListPartitionReassignmentsResponse {
    let moves = ctx.broker.cluster().map(|c| c.reassignments()).unwrap_or_default();
    let asked = |m: &Reassignment| match &request.topics {
        None => true,
        Some(topics) => topics.iter().any(|t| t.name.as_str() == m.topic && t.partition_indexes.contains(&m.partition)),
    };
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for m in moves.into_iter().filter(asked) {
        let ids = |nodes: &[i32]| nodes.iter().copied().map(BrokerId).collect::<Vec<_>>();
        let mut partition = OngoingPartitionReassignment::default();
        partition.partition_index = m.partition;
        let mut all = m.target.clone();
        all.extend(m.removing.iter().copied());
        partition.replicas = ids(&all);
        partition.adding_replicas = ids(&m.adding);
        partition.removing_replicas = ids(&m.removing);
        by_topic.entry(m.topic).or_default().push(partition);
    }
    let mut response = ListPartitionReassignmentsResponse::default();
    for (name, partitions) in by_topic {
        let mut topic = OngoingTopicReassignment::default();
        topic.name = super::topic_name(&name);
        topic.partitions = partitions;
        response.topics.push(topic);
    }
    response
}
