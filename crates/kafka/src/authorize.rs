//! What the ACL authorizer checks before a request reaches its API module, as Kafka's
//! `KafkaApis` does: Produce needs WRITE on each topic, Fetch READ, Metadata lists only the
//! topics the principal may DESCRIBE and auto-creates an unknown one only with CREATE on the
//! cluster or the topic (Kafka answers the others TOPIC_AUTHORIZATION_FAILED), the group APIs
//! need READ on the group, ListOffsets and OffsetForLeaderEpoch DESCRIBE on the topic; the answers are Kafka's TOPIC_AUTHORIZATION_FAILED (29) and
//! GROUP_AUTHORIZATION_FAILED (30). Without an authorizer every check passes.

use crate::acl::{operation, resource};
use crate::api::authorized_operations::narrowed;
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

/// Whether the session may create the topic `name`: CREATE on the cluster or on the topic.
fn may_create_topic(security: &Security, session: &Session, name: &str) -> bool {
    session.may(security, operation::CREATE, resource::CLUSTER, resource::CLUSTER_NAME)
        || session.may(security, operation::CREATE, resource::TOPIC, name)
}

/// The unknown topics (`exists` false) among `names` that a Produce would auto-create and
/// the session may not create: refused as Metadata refuses them.
pub fn denied_creations<'a>(
    security: &Security,
    session: &Session,
    auto_creates: bool,
    names: impl Iterator<Item = &'a str>,
    exists: impl Fn(&str) -> bool,
) -> Vec<String> {
    if security.acls.is_none() || !auto_creates {
        return Vec::new();
    }
    names.filter(|name| !exists(name) && !may_create_topic(security, session, name)).map(str::to_string).collect()
}

/// Takes out of a Metadata request the named topics the session may not DESCRIBE, and, when
/// the request would auto-create (`auto_creates`), the unknown ones (`exists` false) it may
/// not CREATE (neither on the cluster nor on the topic), so they are neither created nor
/// described; `answer_metadata` adds them back as refused.
pub fn filter_metadata(
    security: &Security,
    session: &Session,
    request: &mut MetadataRequest,
    auto_creates: bool,
    exists: impl Fn(&str) -> bool,
) -> Vec<TopicName> {
    if security.acls.is_none() {
        return Vec::new();
    }
    let Some(topics) = request.topics.as_mut() else { return Vec::new() };
    let mut refused = Vec::new();
    topics.retain(|t| {
        let Some(name) = &t.name else { return true };
        let name_str = name.0.as_str();
        let allowed = session.may(security, operation::DESCRIBE, resource::TOPIC, name_str)
            && (!auto_creates || exists(name_str) || may_create_topic(security, session, name_str));
        if !allowed {
            refused.push(name.clone());
        }
        allowed
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
    for topic in &mut response.topics {
        let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
        topic.topic_authorized_operations =
            narrowed(topic.topic_authorized_operations, |op| session.may(security, op, resource::TOPIC, name));
    }
    response.cluster_authorized_operations = narrowed(response.cluster_authorized_operations, |op| {
        session.may(security, op, resource::CLUSTER, resource::CLUSTER_NAME)
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
