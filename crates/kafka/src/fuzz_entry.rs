//! Pure entry points for the fuzz targets in `fuzz/`: decode a request frame exactly as the
//! listener does (header checks, served versions, body), without a broker behind it.

use crate::versions::is_served;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

/// A decoded request: its header, and for Produce the records of every partition (what the
/// produce path hands to up-conversion and batch validation).
pub struct DecodedRequest {
    pub api: ApiKey,
    pub header: RequestHeader,
    pub produce_records: Vec<Bytes>,
}

/// One request frame (without its 4-byte length) as `dispatch` decodes it: `Err` where the
/// listener would close the connection (or answer ApiVersions' fallback).
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest, String> {
    if frame.len() < 8 {
        return Err("request too short for a header".into());
    }
    let key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown api key {key}"))?;
    if !is_served(api, version) {
        return Err(format!("unsupported version {version} of {api:?}"));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| e.to_string())?;
    let produce_records = decode_body(api, &mut frame, version).map_err(|e| e.to_string())?;
    Ok(DecodedRequest { api, header, produce_records })
}

/// The same body types `dispatch` decodes, one per served API.
fn decode_body(api: ApiKey, frame: &mut Bytes, version: i16) -> anyhow::Result<Vec<Bytes>> {
    fn body<T: Decodable>(frame: &mut Bytes, version: i16) -> anyhow::Result<Vec<Bytes>> {
        T::decode(frame, version).map(|_| Vec::new())
    }
    match api {
        ApiKey::Produce => {
            let request = ProduceRequest::decode(frame, version)?;
            let partitions = request.topic_data.into_iter().flat_map(|t| t.partition_data);
            Ok(partitions.filter_map(|p| p.records).collect())
        }
        ApiKey::ApiVersions => body::<ApiVersionsRequest>(frame, version),
        ApiKey::Metadata => body::<MetadataRequest>(frame, version),
        ApiKey::Fetch => body::<FetchRequest>(frame, version),
        ApiKey::ListOffsets => body::<ListOffsetsRequest>(frame, version),
        ApiKey::OffsetForLeaderEpoch => body::<OffsetForLeaderEpochRequest>(frame, version),
        ApiKey::CreateTopics => body::<CreateTopicsRequest>(frame, version),
        ApiKey::DeleteTopics => body::<DeleteTopicsRequest>(frame, version),
        ApiKey::CreatePartitions => body::<CreatePartitionsRequest>(frame, version),
        ApiKey::InitProducerId => body::<InitProducerIdRequest>(frame, version),
        ApiKey::DescribeConfigs => body::<DescribeConfigsRequest>(frame, version),
        ApiKey::AlterConfigs => body::<AlterConfigsRequest>(frame, version),
        ApiKey::IncrementalAlterConfigs => body::<IncrementalAlterConfigsRequest>(frame, version),
        ApiKey::DescribeCluster => body::<DescribeClusterRequest>(frame, version),
        ApiKey::AlterPartitionReassignments => body::<AlterPartitionReassignmentsRequest>(frame, version),
        ApiKey::ListPartitionReassignments => body::<ListPartitionReassignmentsRequest>(frame, version),
        ApiKey::ElectLeaders => body::<ElectLeadersRequest>(frame, version),
        ApiKey::FindCoordinator => body::<FindCoordinatorRequest>(frame, version),
        ApiKey::JoinGroup => body::<JoinGroupRequest>(frame, version),
        ApiKey::SyncGroup => body::<SyncGroupRequest>(frame, version),
        ApiKey::Heartbeat => body::<HeartbeatRequest>(frame, version),
        ApiKey::LeaveGroup => body::<LeaveGroupRequest>(frame, version),
        ApiKey::OffsetCommit => body::<OffsetCommitRequest>(frame, version),
        ApiKey::OffsetFetch => body::<OffsetFetchRequest>(frame, version),
        ApiKey::DescribeGroups => body::<DescribeGroupsRequest>(frame, version),
        ApiKey::ListGroups => body::<ListGroupsRequest>(frame, version),
        ApiKey::DeleteGroups => body::<DeleteGroupsRequest>(frame, version),
        ApiKey::DeleteRecords => body::<DeleteRecordsRequest>(frame, version),
        ApiKey::OffsetDelete => body::<OffsetDeleteRequest>(frame, version),
        ApiKey::SaslHandshake => body::<SaslHandshakeRequest>(frame, version),
        ApiKey::SaslAuthenticate => body::<SaslAuthenticateRequest>(frame, version),
        ApiKey::DescribeUserScramCredentials => body::<DescribeUserScramCredentialsRequest>(frame, version),
        ApiKey::AlterUserScramCredentials => body::<AlterUserScramCredentialsRequest>(frame, version),
        ApiKey::CreateAcls => body::<CreateAclsRequest>(frame, version),
        ApiKey::DescribeAcls => body::<DescribeAclsRequest>(frame, version),
        ApiKey::DeleteAcls => body::<DeleteAclsRequest>(frame, version),
        other => Err(anyhow::anyhow!("{other:?} is not dispatched")),
    }
}
