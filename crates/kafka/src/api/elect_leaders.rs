//! ElectLeaders (v0–2): the PREFERRED election makes each named partition's first replica
//! its leader, if Raft lets it win (its log holds everything committed). A null partition
//! list means every partition, and then only those whose election was needed are answered,
//! as Kafka does. UNCLEAN elections do not exist under Raft: refused per partition.

use super::{str_bytes, topic_name};
use crate::error_codes::{admin_code, ELECTION_NOT_NEEDED, INVALID_REQUEST, NONE};
use crate::server::Context;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use sluice_broker::reassignment::AdminError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kafka's `ElectionType.PREFERRED` (v0 has no field: always preferred).
const PREFERRED: i8 = 0;

pub async fn handle(ctx: Arc<Context>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let mut response = ElectLeadersResponse::default();
    let Some(cluster) = ctx.broker.cluster() else {
        response.error_code = INVALID_REQUEST;
        return response;
    };
    let every = request.topic_partitions.is_none();
    let asked: Vec<(String, i32)> = match request.topic_partitions {
        Some(topics) => {
            topics.into_iter().flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic.0.to_string(), p))).collect()
        }
        None => ctx
            .broker
            .topics()
            .iter()
            .flat_map(|t| (0..t.partition_count() as i32).map(move |p| (t.name.to_string(), p)))
            .collect(),
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, partition) in asked {
        let outcome = if request.election_type != PREFERRED {
            Err(AdminError::Refused(
                "only preferred elections: Raft never elects a replica without every committed entry".into(),
            ))
        } else if ctx.broker.topic(&topic).is_none() {
            Err(AdminError::UnknownTopicOrPartition)
        } else {
            cluster.elect_preferred(&topic, partition).await
        };
        let mut result = PartitionResult::default();
        result.partition_id = partition;
        match outcome {
            Ok(()) => result.error_code = NONE,
            Err(e) => {
                result.error_code = admin_code(&e);
                if every && result.error_code == ELECTION_NOT_NEEDED {
                    continue;
                }
                result.error_message = Some(str_bytes(&e.to_string()));
            }
        }
        by_topic.entry(topic).or_default().push(result);
    }
    for (topic, partition_result) in by_topic {
        let mut entry = ReplicaElectionResult::default();
        entry.topic = topic_name(&topic);
        entry.partition_result = partition_result;
        response.replica_election_results.push(entry);
    }
    response
}
