//! What the ACL authorizer checks before a request reaches its API module, as Kafka's
//! `KafkaApis` does: Produce needs WRITE on each topic, Fetch READ, Metadata lists only the
//! topics the principal may DESCRIBE (and does not auto-create the others), the group APIs
//! need READ on the group, ListOffsets and OffsetForLeaderEpoch DESCRIBE on the topic; the answers are Kafka's TOPIC_AUTHORIZATION_FAILED (29) and
//! GROUP_AUTHORIZATION_FAILED (30). Without an authorizer every check passes.

use crate::acl::{operation, resource};
use crate::error_codes::{GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED};
use crate::sasl::Security;
use crate::session::Session;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::*;

/// The topics among `names` the session may not do `op` on.
pub fn denied_topics<'a>(
    security: &Security,
    session: &Session,
    op: i8,
    names: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    if security.acls.is_none() {
        return Vec::new();
    }
    names.filter(|name| !session.may(security, op, resource::TOPIC, name)).map(str::to_string).collect()
}

pub fn may_read_group(security: &Security, session: &Session, group: &str) -> bool {
    session.may(security, operation::READ, resource::GROUP, group)
}

/// Takes the named topics the session may not DESCRIBE out of a Metadata request, so they
/// are neither auto-created nor described; `answer_metadata` adds them back as refused.
pub fn filter_metadata(security: &Security, session: &Session, request: &mut MetadataRequest) -> Vec<TopicName> {
    let Some(topics) = request.topics.as_mut() else { return Vec::new() };
    let mut refused = Vec::new();
    topics.retain(|t| match &t.name {
        Some(name) if !session.may(security, operation::DESCRIBE, resource::TOPIC, name.0.as_str()) => {
            refused.push(name.clone());
            false
        }
        _ => true,
    });
    refused
}

/// Drops undescribable topics from an all-topics answer and adds the refused named ones.
pub fn answer_metadata(
    security: &Security,
    session: &Session,
    response: &mut MetadataResponse,
    refused: Vec<TopicName>,
) {
    if security.acls.is_none() {
        return;
    }
    response.topics.retain(|t| {
        t.name.as_ref().is_none_or(|n| session.may(security, operation::DESCRIBE, resource::TOPIC, n.0.as_str()))
    });
    for name in refused {
        let mut topic = MetadataResponseTopic::default();
        topic.error_code = TOPIC_AUTHORIZATION_FAILED;
        topic.name = Some(name);
        topic.topic_authorized_operations = i32::MIN;
        response.topics.push(topic);
    }
}

/// ListOffsets answers only for topics the principal may DESCRIBE (reading offsets changes
/// nothing, so the answer is computed and then withheld).
pub fn answer_list_offsets(security: &Security, session: &Session, response: &mut ListOffsetsResponse) {
    for topic in &mut response.topics {
        if !session.may(security, operation::DESCRIBE, resource::TOPIC, topic.name.0.as_str()) {
            for partition in &mut topic.partitions {
                partition.error_code = TOPIC_AUTHORIZATION_FAILED;
                (partition.timestamp, partition.offset, partition.leader_epoch) = (-1, -1, -1);
            }
        }
    }
}

/// OffsetForLeaderEpoch likewise.
pub fn answer_offset_for_leader_epoch(
    security: &Security,
    session: &Session,
    response: &mut OffsetForLeaderEpochResponse,
) {
    for topic in &mut response.topics {
        if !session.may(security, operation::DESCRIBE, resource::TOPIC, topic.topic.0.as_str()) {
            for partition in &mut topic.partitions {
                partition.error_code = TOPIC_AUTHORIZATION_FAILED;
                (partition.leader_epoch, partition.end_offset) = (-1, -1);
            }
        }
    }
}

pub fn join_group_refused() -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = GROUP_AUTHORIZATION_FAILED;
    response.generation_id = -1;
    response
}

pub fn sync_group_refused() -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)
}

pub fn heartbeat_refused() -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)
}

pub fn leave_group_refused() -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED)
}

pub fn offset_commit_refused(request: &OffsetCommitRequest) -> OffsetCommitResponse {
    let mut response = OffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(GROUP_AUTHORIZATION_FAILED)
                })
                .collect();
            topic
        })
        .collect();
    response
}

pub fn offset_fetch_refused(request: &OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = request
            .groups
            .iter()
            .map(|g| {
                let mut group = OffsetFetchResponseGroup::default();
                group.group_id = g.group_id.clone();
                group.error_code = GROUP_AUTHORIZATION_FAILED;
                group
            })
            .collect();
    } else {
        response.error_code = GROUP_AUTHORIZATION_FAILED;
    }
    response
}

/// The group an OffsetFetch asks about (v8 may name several: the first is checked for all,
/// and every one of them must be readable).
pub fn offset_fetch_groups(request: &OffsetFetchRequest, version: i16) -> Vec<String> {
    match version >= 8 {
        true => request.groups.iter().map(|g| g.group_id.0.to_string()).collect(),
        false => vec![request.group_id.0.to_string()],
    }
}
