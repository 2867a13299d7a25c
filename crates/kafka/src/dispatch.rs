//! Request dispatch: parse the header, check the API and version are served, decode
//! the body, and hand it to the API's module. One flat match from API key to handler.

use crate::api;
use crate::codec::response_frame;
use crate::server::Context;
use crate::session::Session;
use crate::versions::is_served;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use sluice_broker::clients::Client;
use sluice_broker::metrics::RequestMetrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
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
}

/// What the writer sends back for one request, in request order.
pub enum Reply {
    /// A response frame ready now.
    Now(Bytes),
    /// A response being produced by a task (fsync wait, long-poll).
    Later(JoinHandle<Result<Option<Bytes>, DispatchError>>),
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
    let listener = session.listener.as_ref();
    match api {
        ApiKey::ApiVersions => now(meta, api::api_versions::handle(decode(meta, &mut frame)?, meta)),
        ApiKey::SaslHandshake => now(meta, api::sasl_handshake::handle(session, decode(meta, &mut frame)?, version)),
        ApiKey::SaslAuthenticate => {
            api::sasl_authenticate::handle(&context.security, session, decode(meta, &mut frame)?, meta)
        }
        ApiKey::DescribeUserScramCredentials => now(
            meta,
            api::describe_user_scram_credentials::handle(&context.security.credentials, decode(meta, &mut frame)?),
        ),
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
        ApiKey::Metadata => now(meta, api::metadata::handle(ctx, listener, decode(meta, &mut frame)?, meta)),
        ApiKey::Produce => api::produce::handle(context, decode(meta, &mut frame)?, meta),
        ApiKey::Fetch => Ok(later(api::fetch::handle(Arc::clone(context), decode(meta, &mut frame)?, meta))),
        ApiKey::ListOffsets => now(meta, api::list_offsets::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::OffsetForLeaderEpoch => now(meta, api::offset_for_leader_epoch::handle(ctx, decode(meta, &mut frame)?)),
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
            api::join_group::handle(context, decode(meta, &mut frame)?, meta, client_id)
        }
        ApiKey::SyncGroup => api::sync_group::handle(context, decode(meta, &mut frame)?, meta),
        ApiKey::Heartbeat => now(meta, api::heartbeat::handle(ctx, decode(meta, &mut frame)?)),
        ApiKey::LeaveGroup => now(meta, api::leave_group::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::OffsetCommit => Ok(api::offset_commit::handle(context, decode(meta, &mut frame)?, meta)),
        ApiKey::OffsetFetch => now(meta, api::offset_fetch::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::DescribeGroups => now(meta, api::describe_groups::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::ListGroups => now(meta, api::list_groups::handle(ctx, decode(meta, &mut frame)?, meta)),
        ApiKey::DeleteGroups => now(meta, api::delete_groups::handle(ctx, decode(meta, &mut frame)?)),
        ApiKey::OffsetDelete => now(meta, api::offset_delete::handle(ctx, decode(meta, &mut frame)?)),
        other => Err(DispatchError::UnsupportedVersion(other, version)),
    }
}

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

    pub fn finish(self, requests: &RequestMetrics) {
        requests.observe(self.api_key, self.started.elapsed());
    }
}

fn decode<T: Decodable>(meta: RequestMeta, frame: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(frame, meta.version).map_err(|e| DispatchError::Malformed(meta.api, meta.version, e.to_string()))
}

fn now<R: Encodable>(meta: RequestMeta, body: R) -> Result<Reply, DispatchError> {
    meta.respond(&body).map(Reply::Now)
}

/// Runs a waiting handler in its own task; the writer awaits it in order.
pub fn later<F>(work: F) -> Reply
where
    F: Future<Output = Result<Option<Bytes>, DispatchError>> + Send + 'static,
{
    Reply::Later(tokio::spawn(work))
}
