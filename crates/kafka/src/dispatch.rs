//! Request dispatch: parse the header, check the API and version are served, decode
//! the body, and hand it to the API's module. One flat match from API key to handler.

use crate::acl::{operation, resource};
use crate::api;
use crate::authorize;
use crate::codec::response_frame;
use crate::quota::request_time::{timed, Busy};
use crate::server::Context;
use crate::session::Session;
use crate::versions::is_served;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, RequestHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use sluice_broker::clients::Client;
use sluice_broker::metrics::RequestMetrics;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::task::JoinHandle;

/// Errors that close the connection: the peer is not speaking Kafka we understand.
#[derive(Debug, Error)]
pub enum DispatchError {
    #[error("request too short for a header")]
    ShortHeader,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {1} of {0:?}")]
    UnsupportedVersion(ApiKey, i16),
    #[error("malformed {0:?} v{1} request: {2}")]
    Malformed(ApiKey, i16, String),
    #[error("could not encode {0:?} v{1} response: {2}")]
    Encode(ApiKey, i16, String),
    #[error("request task failed: {0}")]
    Task(String),
    #[error("{0:?} before SASL authentication (ILLEGAL_SASL_STATE)")]
    NotAuthenticated(ApiKey),
    #[error("{0:?} after the SASL login expired without a re-authentication (connections.max.reauth.ms)")]
    LoginExpired(ApiKey),
}

/// What the writer sends back for one request, in request order.
pub enum Reply {
    /// A response frame ready now.
    Now(Bytes),
    /// A response being produced by a task (fsync wait, long-poll), and the time the task
    /// spent working rather than waiting (request-time quotas).
    Later(JoinHandle<Result<Option<Bytes>, DispatchError>>, Arc<Busy>),
    /// No response at all (Produce with acks=0).
    Nothing,
}

/// Everything a handler needs to know about the request it serves.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta {
    pub api: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl RequestMeta {
    /// Encodes `body` as this request's response frame.
    pub fn respond<R: Encodable>(&self, body: &R) -> Result<Bytes, DispatchError> {
        let header_version = self.api.response_header_version(self.version);
        response_frame(self.correlation_id, header_version, body, self.version)
            .map_err(|e| DispatchError::Encode(self.api, self.version, e.to_string()))
    }
}

pub fn dispatch(
    context: &Arc<Context>,
    client: &Client,
    session: &mut Session,
    mut frame: Bytes,
) -> Result<Reply, DispatchError> {
    if session.expects_raw_token() {
        // After a SaslHandshake v0 the next frames are bare SASL tokens, not requests.
        return Ok(api::sasl_authenticate::raw(&context.security, session, &frame));
    }
    if frame.len() < 8 {
        return Err(DispatchError::ShortHeader);
    }
    client.count_request();
    let request_bytes = frame.len();
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| DispatchError::UnknownApiKey(key))?;
    if !is_served(api, version) {
        if api == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions it cannot parse with a v0 response listing what
            // it does serve, so the client can retry with a version both know.
            let correlation_id = (&frame[4..8]).get_i32();
            return Ok(Reply::Now(api::api_versions::unsupported(correlation_id)?));
        }
        return Err(DispatchError::UnsupportedVersion(api, version));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| DispatchError::Malformed(api, version, e.to_string()))?;
    if let Some(client_id) = header.client_id.as_deref() {
        client.set_client_id_once(client_id);
    }
    let meta = RequestMeta { api, version, correlation_id: header.correlation_id };
    let ctx = context.as_ref();
    if !session.is_authenticated()
        && !matches!(api, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
    {
        // Kafka closes a connection that skips authentication on a SASL listener.
        return Err(DispatchError::NotAuthenticated(api));
    }
    if session.login_expired(Instant::now()) && !matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
        // KIP-368: Kafka closes a connection whose login ended, whatever it asks.
        return Err(DispatchError::LoginExpired(api));
    }
    if context.security.acls.is_some() {
        // The administrative APIs' per-resource checks, refusals answered in the response.
        if let Some(reply) = crate::authorize_admin::dispatch(context, session, meta, &mut frame) {
            return reply;
        }
    }
    let listener = Arc::clone(&session.listener);
    let listener = listener.as_ref();
    let sec = context.security.as_ref();
    match api {
        ApiKey::ApiVersions => now(meta, api::api_versions::handle(decode(meta, &mut frame)?, meta)),
        ApiKey::SaslHandshake => {
            let reauth = sec.reauth_max.is_some();
            now(meta, api::sasl_handshake::handle(session, decode(meta, &mut frame)?, version, reauth))
        }
        ApiKey::SaslAuthenticate => {
            api::sasl_authenticate::handle(&context.security, session, decode(meta, &mut frame)?, meta)
        }
        // With an authorizer, Kafka's rule: DESCRIBE (ALTER) on the cluster.
        ApiKey::DescribeUserScramCredentials
            if !session.may(sec, operation::DESCRIBE, resource::CLUSTER, resource::CLUSTER_NAME) =>
        {
            let response = kafka_protocol::messages::DescribeUserScramCredentialsResponse::default()
                .with_error_code(crate::error_codes::CLUSTER_AUTHORIZATION_FAILED)
                .with_error_message(Some(api::str_bytes("Cluster authorization failed.")));
            now(meta, response)
        }
        ApiKey::DescribeUserScramCredentials => now(
            meta,
            api::describe_user_scram_credentials::handle(&context.security.credentials, decode(meta, &mut frame)?),
        ),
        ApiKey::AlterUserScramCredentials
            if !session.may(sec, operation::ALTER, resource::CLUSTER, resource::CLUSTER_NAME) =>
        {
            let request: kafka_protocol::messages::AlterUserScramCredentialsRequest = decode(meta, &mut frame)?;
            now(meta, api::alter_user_scram_credentials::refused(&request))
        }
        ApiKey::AlterUserScramCredentials => {
            let (context, request) = (Arc::clone(context), decode(meta, &mut frame)?);
            Ok(later(async move {
                // The credentials file is fsynced: off the async workers.
                let response = tokio::task::spawn_blocking(move || {
                    api::alter_user_scram_credentials::handle(&context.security.credentials, request)
                })
                .await
                .map_err(|e| DispatchError::Task(e.to_string()))?;
                meta.respond(&response).map(Some)
            }))
        }
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => acl_admin(ctx, session, meta, &mut frame),
        ApiKey::DescribeClientQuotas => {
            let allowed = session.may(sec, operation::DESCRIBE_CONFIGS, resource::CLUSTER, resource::CLUSTER_NAME);
            now(meta, api::client_quotas::describe(&sec.quotas.store, decode(meta, &mut frame)?, allowed))
        }
        ApiKey::AlterClientQuotas => {
            let allowed = session.may(sec, operation::ALTER_CONFIGS, resource::CLUSTER, resource::CLUSTER_NAME);
            let (context, request) = (Arc::clone(context), decode(meta, &mut frame)?);
            Ok(later(async move {
                // The quotas file is fsynced: off the async workers.
                let response = tokio::task::spawn_blocking(move || {
                    api::client_quotas::alter(&context.security.quotas.store, request, allowed)
                })
                .await
                .map_err(|e| DispatchError::Task(e.to_string()))?;
                meta.respond(&response).map(Some)
            }))
        }
        ApiKey::Metadata => {
            let mut request: MetadataRequest = decode(meta, &mut frame)?;
            let auto_creates =
                ctx.broker.config().auto_create_topics && api::metadata::asks_auto_creation(&request, meta);
            let exists = |name: &str| ctx.broker.topic(name).is_some();
            let refused = authorize::filter_metadata(sec, session, &mut request, auto_creates, exists);
            let mut response = api::metadata::handle(ctx, listener, request, meta);
            authorize::answer_metadata(sec, session, &mut response, refused);
            now(meta, response)
        }
        ApiKey::Produce => {
            let request: ProduceRequest = decode(meta, &mut frame)?;
            let topics = || request.topic_data.iter().map(|t| t.name.0.as_str());
            let mut denied = authorize::denied_topics(sec, session, operation::WRITE, topics());
            let auto_creates = ctx.broker.config().auto_create_topics;
            let exists = |name: &str| ctx.broker.topic(name).is_some();
            denied.extend(authorize::denied_creations(sec, session, auto_creates, topics(), exists));
            let client_id = header.client_id.as_deref().unwrap_or("");
            let throttle = sec.quotas.charge_produce(&session.principal.name, client_id, request_bytes);
            session.mute.extend(throttle);
            api::produce::handle(context, request, meta, &denied, crate::quota::millis(throttle))
        }
        ApiKey::Fetch => {
            let request: FetchRequest = decode(meta, &mut frame)?;
            let denied = authorize::denied_topics(
                sec,
                session,
                operation::READ,
                request.topics.iter().map(|t| t.topic.0.as_str()),
            );
            let client_id = header.client_id.as_deref().unwrap_or("");
            let quota = sec.quotas.fetch_charge(&session.principal.name, client_id);
            let quota = quota.map(|charge| (charge, Arc::clone(&session.mute)));
            Ok(later(api::fetch::handle(Arc::clone(context), request, meta, denied, quota)))
        }
        ApiKey::ListOffsets => {
            let mut response = api::list_offsets::handle(ctx, decode(meta, &mut frame)?, meta);
            authorize::answer_list_offsets(sec, session, &mut response);
            now(meta, response)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut response = api::offset_for_leader_epoch::handle(ctx, decode(meta, &mut frame)?);
            authorize::answer_offset_for_leader_epoch(sec, session, &mut response);
            now(meta, response)
        }
        ApiKey::CreateTopics if ctx.broker.cluster().is_some() => {
            Ok(later(api::create_topics::handle_cluster(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::CreateTopics => now(meta, api::create_topics::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::DeleteTopics => {
            Ok(later(api::delete_topics::handle(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::DeleteRecords => {
            Ok(later(api::delete_records::handle(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::CreatePartitions => {
            Ok(later(api::create_partitions::handle(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::InitProducerId => {
            let (context, request) = (Arc::clone(context), decode(meta, &mut frame)?);
            Ok(later(async move { meta.respond(&api::init_producer_id::handle(&context, request).await).map(Some) }))
        }
        ApiKey::DescribeConfigs => now(meta, api::describe_configs::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::AlterConfigs => {
            Ok(later(api::alter_configs::handle(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::IncrementalAlterConfigs => {
            Ok(later(api::alter_configs::handle_incremental(Arc::clone(context), decode(meta, &mut frame)?, meta)))
        }
        ApiKey::DescribeCluster => now(meta, api::describe_cluster::handle(ctx, listener, decode(meta, &mut frame)?)),
        ApiKey::AlterPartitionReassignments => {
            let (context, request) = (Arc::clone(context), decode(meta, &mut frame)?);
            Ok(later(async move {
                meta.respond(&api::alter_partition_reassignments::handle(context, request).await).map(Some)
            }))
        }
        ApiKey::ElectLeaders => {
            let (context, request) = (Arc::clone(context), decode(meta, &mut frame)?);
            Ok(later(async move { meta.respond(&api::elect_leaders::handle(context, request).await).map(Some) }))
        }
        ApiKey::ListPartitionReassignments => {
            now(meta, api::list_partition_reassignments::handle(ctx, decode(meta, &mut frame)?))
        }
        ApiKey::FindCoordinator => {
            now(meta, api::find_coordinator::handle(ctx, listener, decode(meta, &mut frame)?, meta))
        }
        ApiKey::JoinGroup => {
            let client_id = header.client_id.as_deref().unwrap_or("").to_string();
            let request: JoinGroupRequest = decode(meta, &mut frame)?;
            match authorize::may_read_group(sec, session, request.group_id.0.as_str()) {
                true => api::join_group::handle(context, request, meta, client_id),
                false => now(meta, authorize::join_group_refused()),
            }
        }
        ApiKey::SyncGroup => {
            let request: SyncGroupRequest = decode(meta, &mut frame)?;
            match authorize::may_read_group(sec, session, request.group_id.0.as_str()) {
                true => api::sync_group::handle(context, request, meta),
                false => now(meta, authorize::sync_group_refused()),
            }
        }
        ApiKey::Heartbeat => {
            let request: HeartbeatRequest = decode(meta, &mut frame)?;
            match authorize::may_read_group(sec, session, request.group_id.0.as_str()) {
                true => now(meta, api::heartbeat::handle(ctx, request)),
                false => now(meta, authorize::heartbeat_refused()),
            }
        }
        ApiKey::LeaveGroup => {
            let request: LeaveGroupRequest = decode(meta, &mut frame)?;
            match authorize::may_read_group(sec, session, request.group_id.0.as_str()) {
                true => now(meta, api::leave_group::handle(ctx, request, meta)),
                false => now(meta, authorize::leave_group_refused()),
            }
        }
        ApiKey::OffsetCommit => {
            let mut request: OffsetCommitRequest = decode(meta, &mut frame)?;
            match authorize::may_read_group(sec, session, request.group_id.0.as_str()) {
                true => {
                    let refused = crate::authorize_admin::offset_commit_refused_topics(ctx, session, &mut request);
                    Ok(api::offset_commit::handle(context, request, meta, refused))
                }
                false => now(meta, authorize::offset_commit_refused(&request)),
            }
        }
        ApiKey::OffsetFetch => {
            let request: OffsetFetchRequest = decode(meta, &mut frame)?;
            let groups = authorize::offset_fetch_groups(&request, version);
            let named = crate::authorize_admin::offset_fetch_named(&request, version);
            match groups.iter().all(|g| authorize::may_read_group(sec, session, g)) {
                true => {
                    let mut response = api::offset_fetch::handle(ctx, request, meta);
                    crate::authorize_admin::answer_offset_fetch(ctx, session, &named, &mut response);
                    now(meta, response)
                }
                false => now(meta, authorize::offset_fetch_refused(&request, version)),
            }
        }
        ApiKey::DescribeGroups => now(meta, api::describe_groups::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::ListGroups => Ok(later(api::list_groups::handle(Arc::clone(context), decode(meta, &mut frame)?, meta))),
        ApiKey::DeleteGroups => now(meta, api::delete_groups::handle(ctx, decode(meta, &mut frame)?)),
        ApiKey::OffsetDelete => now(meta, api::offset_delete::handle(ctx, decode(meta, &mut frame)?)),
        other => Err(DispatchError::UnsupportedVersion(other, version)),
    }
}

/// CreateAcls, DescribeAcls, DeleteAcls: SECURITY_DISABLED without an authorizer; otherwise
/// ALTER (DESCRIBE for DescribeAcls) on the cluster, or CLUSTER_AUTHORIZATION_FAILED.
fn acl_admin(ctx: &Context, session: &Session, meta: RequestMeta, frame: &mut Bytes) -> Result<Reply, DispatchError> {
    use crate::error_codes::{CLUSTER_AUTHORIZATION_FAILED, SECURITY_DISABLED};
    let wanted = if meta.api == ApiKey::DescribeAcls { operation::DESCRIBE } else { operation::ALTER };
    let refusal = match &ctx.security.acls {
        None => Some(SECURITY_DISABLED),
        Some(_) if !session.may(&ctx.security, wanted, resource::CLUSTER, resource::CLUSTER_NAME) => {
            Some(CLUSTER_AUTHORIZATION_FAILED)
        }
        Some(_) => None,
    };
    let acls = ctx.security.acls.clone();
    // Creating and deleting write the ACL file or, in a cluster, commit through the metadata
    // group: on the blocking pool.
    match (meta.api, acls.filter(|_| refusal.is_none())) {
        (ApiKey::CreateAcls, Some(acls)) => {
            let request = decode(meta, frame)?;
            Ok(later(async move {
                let response =
                    tokio::task::spawn_blocking(move || api::create_acls::handle(&acls, request, meta.version))
                        .await
                        .map_err(|e| DispatchError::Task(e.to_string()))?;
                meta.respond(&response).map(Some)
            }))
        }
        (ApiKey::DescribeAcls, Some(acls)) => {
            now(meta, api::describe_acls::handle(&acls, decode(meta, frame)?, meta.version))
        }
        (ApiKey::DeleteAcls, Some(acls)) => {
            let request = decode(meta, frame)?;
            Ok(later(async move {
                let response =
                    tokio::task::spawn_blocking(move || api::delete_acls::handle(&acls, request, meta.version))
                        .await
                        .map_err(|e| DispatchError::Task(e.to_string()))?;
                meta.respond(&response).map(Some)
            }))
        }
        (api, _) => {
            let code = refusal.unwrap_or(SECURITY_DISABLED);
            let message = Some(api::str_bytes(match code {
                SECURITY_DISABLED => "No Authorizer is configured.",
                _ => "Cluster authorization failed.",
            }));
            match api {
                ApiKey::CreateAcls => {
                    let request: kafka_protocol::messages::CreateAclsRequest = decode(meta, frame)?;
                    let mut response = kafka_protocol::messages::CreateAclsResponse::default();
                    response.results = request
                        .creations
                        .iter()
                        .map(|_| {
                            kafka_protocol::messages::create_acls_response::AclCreationResult::default()
                                .with_error_code(code)
                                .with_error_message(message.clone())
                        })
                        .collect();
                    now(meta, response)
                }
                ApiKey::DeleteAcls => {
                    let request: kafka_protocol::messages::DeleteAclsRequest = decode(meta, frame)?;
                    let mut response = kafka_protocol::messages::DeleteAclsResponse::default();
                    response.filter_results = request
                        .filters
                        .iter()
                        .map(|_| {
                            kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult::default()
                                .with_error_code(code)
                                .with_error_message(message.clone())
                        })
                        .collect();
                    now(meta, response)
                }
                _ => now(
                    meta,
                    kafka_protocol::messages::DescribeAclsResponse::default()
                        .with_error_code(code)
                        .with_error_message(message),
                ),
            }
        }
    }
}

/// A request answered later than this is logged (`RequestTimer::finish`).
const SLOW_REQUEST: Duration = Duration::from_secs(10);

/// Times one request from when its frame is read to when its response is written (or,
/// for acks=0, dropped): the latency a client sees, less the network.
pub struct RequestTimer {
    /// The request's API key as a table index; a frame too short for one counts as `other`.
    api_key: usize,
    started: Instant,
}

impl RequestTimer {
    pub fn start(frame: &[u8]) -> RequestTimer {
        let api_key = match frame {
            [high, low, ..] => u16::from_be_bytes([*high, *low]) as usize,
            _ => usize::MAX,
        };
        RequestTimer { api_key, started: Instant::now() }
    }

    /// Records the request's time; one that took longer than `SLOW_REQUEST` is logged with
    /// its API and client, so a client that "goes quiet" can be matched to what it waited on
    /// (a JoinGroup waiting for a rebalance may legitimately take that long).
    pub fn finish(self, requests: &RequestMetrics, client: &Client) {
        let elapsed = self.started.elapsed();
        requests.observe(self.api_key, elapsed);
        if elapsed >= SLOW_REQUEST {
            let api = i16::try_from(self.api_key).ok().and_then(|k| ApiKey::try_from(k).ok());
            tracing::warn!(
                api = ?api,
                elapsed_ms = elapsed.as_millis() as u64,
                client = client.id,
                peer = %client.peer,
                client_id = %client.details().client_id,
                "slow kafka request"
            );
        }
    }
}

pub(crate) fn decode<T: Decodable>(meta: RequestMeta, frame: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(frame, meta.version).map_err(|e| DispatchError::Malformed(meta.api, meta.version, e.to_string()))
}

pub(crate) fn now<R: Encodable>(meta: RequestMeta, body: R) -> Result<Reply, DispatchError> {
    meta.respond(&body).map(Reply::Now)
}

/// Runs a waiting handler in its own task; the writer awaits it in order.
pub fn later<F>(work: F) -> Reply
where
    F: Future<Output = Result<Option<Bytes>, DispatchError>> + Send + 'static,
{
    let busy = Arc::new(Busy::default());
    Reply::Later(tokio::spawn(timed(work, Arc::clone(&busy))), busy)
}
