//! With `--authorizer acl`, the administrative and group APIs check what Kafka's `KafkaApis`
//! checks, per resource, and answer a refusal in the response with Kafka's code, never by
//! closing the connection: CreateTopics CREATE on the cluster or the topic, DeleteTopics and
//! DeleteRecords DELETE on the topic, CreatePartitions ALTER, DescribeConfigs
//! DESCRIBE_CONFIGS and (Incremental)AlterConfigs ALTER_CONFIGS on the topic (on the cluster
//! for a broker), DescribeGroups DESCRIBE and DeleteGroups DELETE on the group, ListGroups
//! lists the groups the principal may DESCRIBE (all with DESCRIBE on the cluster),
//! FindCoordinator DESCRIBE on the group (transactional id), InitProducerId IDEMPOTENT_WRITE on
//! the cluster or WRITE on some topic, DescribeCluster and ListPartitionReassignments DESCRIBE
//! and ElectLeaders and AlterPartitionReassignments ALTER on the cluster, OffsetCommit READ on
//! the topics too, OffsetFetch DESCRIBE on them, OffsetDelete DELETE on the group and READ on
//! the topics. What changes state is taken out of the request before its handler runs; what
//! only reads is computed and then withheld. The codes are TOPIC_AUTHORIZATION_FAILED (29),
//! GROUP_AUTHORIZATION_FAILED (30), CLUSTER_AUTHORIZATION_FAILED (31) and
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53). `dispatch` calls `dispatch` here only when an
//! authorizer is on.

use crate::acl::{operation, resource};
use crate::api::authorized_operations::narrowed;
use crate::api::{self, str_bytes};
use crate::dispatch::{decode, later, now, DispatchError, Reply, RequestMeta};
use crate::error_codes::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use crate::server::Context;
use crate::session::Session;
use bytes::Bytes;
use kafka_protocol::messages::*;
use std::sync::Arc;

/// DescribeConfigs' and AlterConfigs' resource types.
const CONFIG_TOPIC: i8 = 2;
/// FindCoordinator's key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;
const AUTHORIZATION_FAILED: &str = "Authorization failed.";

/// Serves `meta.api` with the authorizer's checks, or None when the API is not one of the
/// ones checked here.
pub fn dispatch(
    context: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Option<Result<Reply, DispatchError>> {
    let reply = match meta.api {
        ApiKey::CreateTopics => create_topics(context, session, meta, frame),
        ApiKey::DeleteTopics => delete_topics(context, session, meta, frame),
        ApiKey::DeleteRecords => delete_records(context, session, meta, frame),
        ApiKey::CreatePartitions => create_partitions(context, session, meta, frame),
        ApiKey::DescribeConfigs => describe_configs(context, session, meta, frame),
        ApiKey::AlterConfigs => alter_configs(context, session, meta, frame),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs(context, session, meta, frame),
        ApiKey::DescribeGroups => describe_groups(context, session, meta, frame),
        ApiKey::DeleteGroups => delete_groups(context, session, meta, frame),
        ApiKey::ListGroups => list_groups(context, session, meta, frame),
        ApiKey::FindCoordinator => find_coordinator(context, session, meta, frame),
        ApiKey::InitProducerId => init_producer_id(context, session, meta, frame),
        ApiKey::DescribeCluster => describe_cluster(context, session, meta, frame),
        ApiKey::ElectLeaders | ApiKey::AlterPartitionReassignments | ApiKey::ListPartitionReassignments => {
            cluster_only(context, session, meta, frame)
        }
        ApiKey::OffsetDelete => offset_delete(context, session, meta, frame),
        _ => return None,
    };
    Some(reply)
}

fn may_topic(ctx: &Context, session: &Session, op: i8, name: &str) -> bool {
    session.may(&ctx.security, op, resource::TOPIC, name)
}

fn may_group(ctx: &Context, session: &Session, op: i8, name: &str) -> bool {
    session.may(&ctx.security, op, resource::GROUP, name)
}

fn may_cluster(ctx: &Context, session: &Session, op: i8) -> bool {
    session.may(&ctx.security, op, resource::CLUSTER, resource::CLUSTER_NAME)
}

/// Splits `items` into those `allowed` and those not, keeping their order.
fn split<T>(items: Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> (Vec<T>, Vec<T>) {
    items.into_iter().partition(|item| allowed(item))
}

fn create_topics(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: CreateTopicsRequest = decode(meta, frame)?;
    let on_cluster = may_cluster(ctx, session, operation::CREATE);
    let (allowed, refused) = split(std::mem::take(&mut request.topics), |t| {
        on_cluster || may_topic(ctx, session, operation::CREATE, t.name.0.as_str())
    });
    request.topics = allowed;
    let refused: Vec<_> = refused
        .into_iter()
        .map(|t| {
            let mut result = create_topics_response::CreatableTopicResult::default();
            result.name = t.name;
            result.error_code = TOPIC_AUTHORIZATION_FAILED;
            result.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
            (result.num_partitions, result.replication_factor) = (-1, -1);
            result
        })
        .collect();
    if ctx.broker.cluster().is_some() {
        let ctx = Arc::clone(ctx);
        return Ok(later(async move {
            let mut response = api::create_topics::answer_cluster(&ctx, request, meta).await;
            response.topics.extend(refused);
            meta.respond(&response).map(Some)
        }));
    }
    let mut response = api::create_topics::handle(ctx, request, meta);
    response.topics.extend(refused);
    now(meta, response)
}

fn delete_topics(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: DeleteTopicsRequest = decode(meta, frame)?;
    let refusal = |name: Option<TopicName>, id: uuid::Uuid| {
        let mut result = delete_topics_response::DeletableTopicResult::default();
        result.name = name;
        result.topic_id = id;
        result.error_code = TOPIC_AUTHORIZATION_FAILED;
        if meta.version >= 5 {
            result.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
        }
        result
    };
    let mut refused = Vec::new();
    if meta.version >= 6 {
        let topics = ctx.broker.topics();
        // A deletion by id is checked against the name the id resolves to; an unknown id is
        // left to the handler (UNKNOWN_TOPIC_ID).
        let name_of = |state: &delete_topics_request::DeleteTopicState| {
            state
                .name
                .as_ref()
                .map(|n| n.0.to_string())
                .or_else(|| topics.iter().find(|t| t.id == state.topic_id).map(|t| t.name.to_string()))
        };
        let (allowed, denied) = split(std::mem::take(&mut request.topics), |state| {
            name_of(state).is_none_or(|name| may_topic(ctx, session, operation::DELETE, &name))
        });
        request.topics = allowed;
        refused.extend(denied.into_iter().map(|s| refusal(s.name, s.topic_id)));
    } else {
        let (allowed, denied) = split(std::mem::take(&mut request.topic_names), |name| {
            may_topic(ctx, session, operation::DELETE, name.0.as_str())
        });
        request.topic_names = allowed;
        refused.extend(denied.into_iter().map(|name| refusal(Some(name), uuid::Uuid::nil())));
    }
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::delete_topics::answer(ctx, request, meta).await;
        response.responses.extend(refused);
        meta.respond(&response).map(Some)
    }))
}

fn delete_records(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: DeleteRecordsRequest = decode(meta, frame)?;
    let (allowed, denied) =
        split(std::mem::take(&mut request.topics), |t| may_topic(ctx, session, operation::DELETE, t.name.0.as_str()));
    request.topics = allowed;
    let refused: Vec<_> = denied
        .into_iter()
        .map(|t| {
            let mut result = delete_records_response::DeleteRecordsTopicResult::default();
            result.name = t.name;
            result.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = delete_records_response::DeleteRecordsPartitionResult::default();
                    out.partition_index = p.partition_index;
                    out.low_watermark = -1;
                    out.error_code = TOPIC_AUTHORIZATION_FAILED;
                    out
                })
                .collect();
            result
        })
        .collect();
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::delete_records::answer(ctx, request).await;
        response.topics.extend(refused);
        meta.respond(&response).map(Some)
    }))
}

fn create_partitions(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: CreatePartitionsRequest = decode(meta, frame)?;
    let (allowed, denied) =
        split(std::mem::take(&mut request.topics), |t| may_topic(ctx, session, operation::ALTER, t.name.0.as_str()));
    request.topics = allowed;
    let refused: Vec<_> = denied
        .into_iter()
        .map(|t| {
            let mut result = create_partitions_response::CreatePartitionsTopicResult::default();
            result.name = t.name;
            result.error_code = TOPIC_AUTHORIZATION_FAILED;
            result.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
            result
        })
        .collect();
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::create_partitions::answer(ctx, request).await;
        response.results.extend(refused);
        meta.respond(&response).map(Some)
    }))
}

/// A config resource's check: a topic's own, anything else (broker, broker logger) the
/// cluster's. The refusal's code goes with it.
fn config_refusal(ctx: &Context, session: &Session, op: i8, resource_type: i8, name: &str) -> Option<i16> {
    match resource_type {
        CONFIG_TOPIC => (!may_topic(ctx, session, op, name)).then_some(TOPIC_AUTHORIZATION_FAILED),
        _ => (!may_cluster(ctx, session, op)).then_some(CLUSTER_AUTHORIZATION_FAILED),
    }
}

fn describe_configs(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: DescribeConfigsRequest = decode(meta, frame)?;
    let mut refused = Vec::new();
    request.resources.retain(|r| {
        let code = config_refusal(ctx, session, operation::DESCRIBE_CONFIGS, r.resource_type, &r.resource_name);
        if let Some(code) = code {
            let mut result = describe_configs_response::DescribeConfigsResult::default();
            result.error_code = code;
            result.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name.clone();
            refused.push(result);
        }
        code.is_none()
    });
    let mut response = api::describe_configs::handle(ctx, request, meta);
    response.results.extend(refused);
    now(meta, response)
}

fn alter_configs(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: AlterConfigsRequest = decode(meta, frame)?;
    let mut refused = Vec::new();
    request.resources.retain(|r| {
        let code = config_refusal(ctx, session, operation::ALTER_CONFIGS, r.resource_type, &r.resource_name);
        if let Some(code) = code {
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
            out.error_code = code;
            out.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
            out.resource_type = r.resource_type;
            out.resource_name = r.resource_name.clone();
            refused.push(out);
        }
        code.is_none()
    });
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::alter_configs::answer(ctx, request).await;
        response.responses.extend(refused);
        meta.respond(&response).map(Some)
    }))
}

fn incremental_alter_configs(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: IncrementalAlterConfigsRequest = decode(meta, frame)?;
    let mut refused = Vec::new();
    request.resources.retain(|r| {
        let code = config_refusal(ctx, session, operation::ALTER_CONFIGS, r.resource_type, &r.resource_name);
        if let Some(code) = code {
            let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            out.error_code = code;
            out.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
            out.resource_type = r.resource_type;
            out.resource_name = r.resource_name.clone();
            refused.push(out);
        }
        code.is_none()
    });
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::alter_configs::answer_incremental(ctx, request).await;
        response.responses.extend(refused);
        meta.respond(&response).map(Some)
    }))
}

fn describe_groups(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let request: DescribeGroupsRequest = decode(meta, frame)?;
    let mut response = api::describe_groups::handle(ctx, request, meta);
    for group in &mut response.groups {
        if !may_group(ctx, session, operation::DESCRIBE, group.group_id.0.as_str()) {
            let mut refused = describe_groups_response::DescribedGroup::default();
            refused.group_id = group.group_id.clone();
            refused.error_code = GROUP_AUTHORIZATION_FAILED;
            refused.authorized_operations = i32::MIN;
            *group = refused;
        } else {
            let name = group.group_id.0.as_str();
            group.authorized_operations = narrowed(group.authorized_operations, |op| may_group(ctx, session, op, name));
        }
    }
    now(meta, response)
}

fn delete_groups(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: DeleteGroupsRequest = decode(meta, frame)?;
    let (allowed, denied) =
        split(std::mem::take(&mut request.groups_names), |g| may_group(ctx, session, operation::DELETE, g.0.as_str()));
    request.groups_names = allowed;
    let mut response = api::delete_groups::handle(ctx, request);
    response.results.extend(denied.into_iter().map(|group_id| {
        let mut result = delete_groups_response::DeletableGroupResult::default();
        result.group_id = group_id;
        result.error_code = GROUP_AUTHORIZATION_FAILED;
        result
    }));
    now(meta, response)
}

fn list_groups(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let request: ListGroupsRequest = decode(meta, frame)?;
    // The groups are known only once listed (across the cluster), after this borrow of the
    // session ends: the check takes the principal and host along.
    let acls = ctx.security.acls.clone().filter(|_| !may_cluster(ctx, session, operation::DESCRIBE));
    let (principal, host) = (session.principal.to_string(), session.peer.ip().to_string());
    let ctx = Arc::clone(ctx);
    Ok(later(async move {
        let mut response = api::list_groups::answer(&ctx, &request, meta).await;
        if let Some(acls) = acls {
            response.groups.retain(|g| {
                acls.authorize(&principal, &host, operation::DESCRIBE, resource::GROUP, g.group_id.0.as_str())
            });
        }
        meta.respond(&response).map(Some)
    }))
}

fn find_coordinator(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let request: FindCoordinatorRequest = decode(meta, frame)?;
    let key_type = request.key_type;
    let refusal = |key: &str| match key_type {
        KEY_TYPE_TRANSACTION => (!session.may(&ctx.security, operation::DESCRIBE, resource::TRANSACTIONAL_ID, key))
            .then_some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        _ => (!may_group(ctx, session, operation::DESCRIBE, key)).then_some(GROUP_AUTHORIZATION_FAILED),
    };
    let single_key = request.key.to_string();
    let listener = Arc::clone(&session.listener);
    let mut response = api::find_coordinator::handle(ctx, &listener, request, meta);
    if meta.version >= 4 {
        for coordinator in &mut response.coordinators {
            if let Some(code) = refusal(coordinator.key.as_str()) {
                coordinator.error_code = code;
                coordinator.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
                (coordinator.node_id, coordinator.host, coordinator.port) = (BrokerId(-1), str_bytes(""), -1);
            }
        }
    } else if let Some(code) = refusal(&single_key) {
        response.error_code = code;
        if meta.version >= 1 {
            response.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
        }
        (response.node_id, response.host, response.port) = (BrokerId(-1), str_bytes(""), -1);
    }
    now(meta, response)
}

fn init_producer_id(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let request: InitProducerIdRequest = decode(meta, frame)?;
    let refusal = match &request.transactional_id {
        Some(id) if !session.may(&ctx.security, operation::WRITE, resource::TRANSACTIONAL_ID, id.0.as_str()) => {
            Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        }
        Some(_) => None,
        None if may_cluster(ctx, session, operation::IDEMPOTENT_WRITE)
            || session.may_any(&ctx.security, operation::WRITE, resource::TOPIC) =>
        {
            None
        }
        None => Some(CLUSTER_AUTHORIZATION_FAILED),
    };
    if let Some(code) = refusal {
        let mut response = InitProducerIdResponse::default();
        response.error_code = code;
        (response.producer_id, response.producer_epoch) = (ProducerId(-1), -1);
        return now(meta, response);
    }
    let ctx = Arc::clone(ctx);
    Ok(later(async move { meta.respond(&api::init_producer_id::handle(&ctx, request).await).map(Some) }))
}

fn describe_cluster(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let request: DescribeClusterRequest = decode(meta, frame)?;
    if !may_cluster(ctx, session, operation::DESCRIBE) {
        let mut response = DescribeClusterResponse::default();
        response.error_code = CLUSTER_AUTHORIZATION_FAILED;
        response.error_message = Some(str_bytes(AUTHORIZATION_FAILED));
        response.controller_id = BrokerId(-1);
        response.cluster_authorized_operations = i32::MIN;
        return now(meta, response);
    }
    let mut response = api::describe_cluster::handle(ctx, &session.listener, request);
    response.cluster_authorized_operations =
        narrowed(response.cluster_authorized_operations, |op| may_cluster(ctx, session, op));
    now(meta, response)
}

/// ElectLeaders and AlterPartitionReassignments need ALTER on the cluster,
/// ListPartitionReassignments DESCRIBE; a refusal is the response's top-level error.
fn cluster_only(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let wanted = match meta.api {
        ApiKey::ListPartitionReassignments => operation::DESCRIBE,
        _ => operation::ALTER,
    };
    let allowed = may_cluster(ctx, session, wanted);
    let message = Some(str_bytes(AUTHORIZATION_FAILED));
    match meta.api {
        ApiKey::ElectLeaders => {
            let request: ElectLeadersRequest = decode(meta, frame)?;
            if !allowed {
                let mut response = ElectLeadersResponse::default();
                response.error_code = CLUSTER_AUTHORIZATION_FAILED;
                return now(meta, response);
            }
            let ctx = Arc::clone(ctx);
            Ok(later(async move { meta.respond(&api::elect_leaders::handle(ctx, request).await).map(Some) }))
        }
        ApiKey::AlterPartitionReassignments => {
            let request: AlterPartitionReassignmentsRequest = decode(meta, frame)?;
            if !allowed {
                let mut response = AlterPartitionReassignmentsResponse::default();
                response.error_code = CLUSTER_AUTHORIZATION_FAILED;
                response.error_message = message;
                return now(meta, response);
            }
            let ctx = Arc::clone(ctx);
            Ok(later(
                async move { meta.respond(&api::alter_partition_reassignments::handle(ctx, request).await).map(Some) },
            ))
        }
        _ => {
            let request: ListPartitionReassignmentsRequest = decode(meta, frame)?;
            if !allowed {
                let mut response = ListPartitionReassignmentsResponse::default();
                response.error_code = CLUSTER_AUTHORIZATION_FAILED;
                response.error_message = message;
                return now(meta, response);
            }
            now(meta, api::list_partition_reassignments::handle(ctx, request))
        }
    }
}

fn offset_delete(
    ctx: &Arc<Context>,
    session: &Session,
    meta: RequestMeta,
    frame: &mut Bytes,
) -> Result<Reply, DispatchError> {
    let mut request: OffsetDeleteRequest = decode(meta, frame)?;
    if !may_group(ctx, session, operation::DELETE, request.group_id.0.as_str()) {
        let mut response = OffsetDeleteResponse::default();
        response.error_code = GROUP_AUTHORIZATION_FAILED;
        return now(meta, response);
    }
    let (allowed, denied) =
        split(std::mem::take(&mut request.topics), |t| may_topic(ctx, session, operation::READ, t.name.0.as_str()));
    request.topics = allowed;
    let mut response = api::offset_delete::handle(ctx, request);
    response.topics.extend(denied.into_iter().map(|t| {
        let mut topic = offset_delete_response::OffsetDeleteResponseTopic::default();
        topic.name = t.name;
        topic.partitions = t
            .partitions
            .iter()
            .map(|p| {
                let mut out = offset_delete_response::OffsetDeleteResponsePartition::default();
                out.partition_index = p.partition_index;
                out.error_code = TOPIC_AUTHORIZATION_FAILED;
                out
            })
            .collect();
        topic
    }));
    now(meta, response)
}

/// OffsetCommit's topics the session may not READ, answered TOPIC_AUTHORIZATION_FAILED per
/// partition, and taken out of the request.
pub fn offset_commit_refused_topics(
    ctx: &Context,
    session: &Session,
    request: &mut OffsetCommitRequest,
) -> Vec<offset_commit_response::OffsetCommitResponseTopic> {
    if ctx.security.acls.is_none() {
        return Vec::new();
    }
    let (allowed, denied) =
        split(std::mem::take(&mut request.topics), |t| may_topic(ctx, session, operation::READ, t.name.0.as_str()));
    request.topics = allowed;
    denied
        .into_iter()
        .map(|t| {
            let mut topic = offset_commit_response::OffsetCommitResponseTopic::default();
            topic.name = t.name;
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                })
                .collect();
            topic
        })
        .collect()
}

/// OffsetFetch answers only for topics the session may DESCRIBE: a named one gets
/// TOPIC_AUTHORIZATION_FAILED per partition, an all-topics answer leaves it out.
pub fn answer_offset_fetch(ctx: &Context, session: &Session, named: &[bool], response: &mut OffsetFetchResponse) {
    if ctx.security.acls.is_none() {
        return;
    }
    let may = |name: &TopicName| may_topic(ctx, session, operation::DESCRIBE, name.0.as_str());
    let named_old = named.first().copied().unwrap_or(false);
    response.topics.retain(|t| named_old || may(&t.name));
    for topic in &mut response.topics {
        if !may(&topic.name) {
            for p in &mut topic.partitions {
                (p.committed_offset, p.committed_leader_epoch, p.metadata) = (-1, -1, Some(str_bytes("")));
                p.error_code = TOPIC_AUTHORIZATION_FAILED;
            }
        }
    }
    for (i, group) in response.groups.iter_mut().enumerate() {
        let group_named = named.get(i).copied().unwrap_or(false);
        group.topics.retain(|t| group_named || may(&t.name));
        for topic in &mut group.topics {
            if !may(&topic.name) {
                for p in &mut topic.partitions {
                    (p.committed_offset, p.committed_leader_epoch, p.metadata) = (-1, -1, Some(str_bytes("")));
                    p.error_code = TOPIC_AUTHORIZATION_FAILED;
                }
            }
        }
    }
}

/// Per group of an OffsetFetch (one for v0–7), whether the request named its topics.
pub fn offset_fetch_named(request: &OffsetFetchRequest, version: i16) -> Vec<bool> {
    match version >= 8 {
        true => request.groups.iter().map(|g| g.topics.is_some()).collect(),
        false => vec![request.topics.is_some()],
    }
}
