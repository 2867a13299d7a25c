//! Where an encoded response carries `throttle_time_ms`, so a throttle known only once the
//! answer is ready (request-time quotas) can be written into it, as Kafka builds its answers
//! with the throttle time it has just computed. Positions follow Kafka's message schemas (a
//! unit test checks each against kafka-protocol's encoding): the first field of the body for
//! most APIs from the version that added it; second, after `error_code`, in OffsetDelete; the
//! last in Produce (before the empty tagged-field section of flexible versions, which Sluice
//! always sends empty). ApiVersions puts it after the list of APIs and is left alone (the
//! connection is still muted).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

/// Where the field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Bytes from the start of the body.
    FromBodyStart(usize),
    /// Bytes before the end of the frame.
    BeforeEnd(usize),
}

/// The field's position in `api`'s response at `version`, if it has one Sluice can write.
fn position(api: ApiKey, version: i16) -> Option<Position> {
    use ApiKey::*;
    let first_from = match api {
        Produce if version >= 9 => return Some(Position::BeforeEnd(5)),
        Produce if version >= 1 => return Some(Position::BeforeEnd(4)),
        OffsetDelete => return Some(Position::FromBodyStart(2)),
        Fetch | FindCoordinator | Heartbeat | LeaveGroup | SyncGroup | DescribeGroups | ListGroups | DeleteTopics => 1,
        ListOffsets | JoinGroup | CreateTopics | OffsetForLeaderEpoch => 2,
        Metadata | OffsetCommit | OffsetFetch => 3,
        DeleteRecords
        | InitProducerId
        | CreateAcls
        | DescribeAcls
        | DeleteAcls
        | DescribeConfigs
        | AlterConfigs
        | CreatePartitions
        | DeleteGroups
        | ElectLeaders
        | IncrementalAlterConfigs
        | AlterPartitionReassignments
        | ListPartitionReassignments
        | DescribeClientQuotas
        | AlterClientQuotas
        | DescribeUserScramCredentials
        | AlterUserScramCredentials
        | DescribeCluster => 0,
        _ => return None,
    };
    (version >= first_from).then_some(Position::FromBodyStart(0))
}

/// `frame` (length prefix, response header, body) with its `throttle_time_ms` raised to
/// `throttle_ms` if lower; unchanged when the response has no such field.
pub fn raise(frame: Bytes, api: ApiKey, version: i16, throttle_ms: i32) -> Bytes {
    let Some(position) = position(api, version) else { return frame };
    // Length prefix and correlation id, then the flexible header's (empty) tagged fields.
    let body_start = 8 + usize::from(api.response_header_version(version) >= 1);
    let at = match position {
        Position::FromBodyStart(offset) => body_start + offset,
        Position::BeforeEnd(back) => match frame.len().checked_sub(back) {
            Some(at) if at >= body_start => at,
            _ => return frame,
        },
    };
    let Some(current) = frame.get(at..at + 4) else { return frame };
    let current = i32::from_be_bytes([current[0], current[1], current[2], current[3]]);
    if current >= throttle_ms {
        return frame;
    }
    let mut patched = BytesMut::from(&frame[..]);
    patched[at..at + 4].copy_from_slice(&throttle_ms.to_be_bytes());
    patched.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::response_frame;
    use crate::versions::served_range;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Encodable;

    const MARK: i32 = 0x0102_0304;

    /// Every served version of the response type: raising the field of a response encoded
    /// with 0 gives the bytes of the same response encoded with `MARK`; where no position is
    /// known, the field is absent from that version (ApiVersions aside).
    fn check<R: Encodable + Default>(api: ApiKey, set: impl Fn(&mut R, i32)) {
        let (min, max) = served_range(api).expect("served");
        for version in min..=max {
            let encoded = |throttle: i32| {
                let mut body = R::default();
                set(&mut body, throttle);
                response_frame(7, api.response_header_version(version), &body, version).ok()
            };
            let zero = encoded(0).expect("encode");
            let raised = raise(zero.clone(), api, version, MARK);
            match position(api, version) {
                Some(_) => assert_eq!(Some(raised.clone()), encoded(MARK), "{api:?} v{version}"),
                None => {
                    assert_eq!(raised, zero, "{api:?} v{version}");
                    let field_absent = encoded(MARK).is_none_or(|marked| marked == zero);
                    assert!(field_absent || api == ApiKey::ApiVersions, "{api:?} v{version} has the field");
                }
            }
            assert_eq!(raise(raised.clone(), api, version, 1), raised, "never lowered: {api:?} v{version}");
        }
    }

    macro_rules! check_all {
        ($($api:ident => $response:ty),* $(,)?) => {
            $(check::<$response>(ApiKey::$api, |r, v| r.throttle_time_ms = v);)*
        };
    }

    #[test]
    fn the_field_is_where_kafka_protocol_puts_it_in_every_served_version() {
        check_all!(
            Produce => ProduceResponse,
            Fetch => FetchResponse,
            ListOffsets => ListOffsetsResponse,
            Metadata => MetadataResponse,
            OffsetForLeaderEpoch => OffsetForLeaderEpochResponse,
            CreateTopics => CreateTopicsResponse,
            DeleteTopics => DeleteTopicsResponse,
            InitProducerId => InitProducerIdResponse,
            DescribeConfigs => DescribeConfigsResponse,
            AlterConfigs => AlterConfigsResponse,
            CreatePartitions => CreatePartitionsResponse,
            IncrementalAlterConfigs => IncrementalAlterConfigsResponse,
            DescribeCluster => DescribeClusterResponse,
            DeleteRecords => DeleteRecordsResponse,
            AlterPartitionReassignments => AlterPartitionReassignmentsResponse,
            ListPartitionReassignments => ListPartitionReassignmentsResponse,
            ElectLeaders => ElectLeadersResponse,
            FindCoordinator => FindCoordinatorResponse,
            JoinGroup => JoinGroupResponse,
            SyncGroup => SyncGroupResponse,
            Heartbeat => HeartbeatResponse,
            LeaveGroup => LeaveGroupResponse,
            OffsetCommit => OffsetCommitResponse,
            OffsetFetch => OffsetFetchResponse,
            DescribeGroups => DescribeGroupsResponse,
            ListGroups => ListGroupsResponse,
            DeleteGroups => DeleteGroupsResponse,
            OffsetDelete => OffsetDeleteResponse,
            DescribeUserScramCredentials => DescribeUserScramCredentialsResponse,
            AlterUserScramCredentials => AlterUserScramCredentialsResponse,
            CreateAcls => CreateAclsResponse,
            DescribeAcls => DescribeAclsResponse,
            DeleteAcls => DeleteAclsResponse,
            DescribeClientQuotas => DescribeClientQuotasResponse,
            AlterClientQuotas => AlterClientQuotasResponse,
            ApiVersions => ApiVersionsResponse,
        );
    }

    #[test]
    fn a_short_frame_is_left_alone() {
        let short = Bytes::from_static(&[0, 0, 0, 4, 0, 0, 0, 7]);
        assert_eq!(raise(short.clone(), ApiKey::Metadata, 12, MARK), short);
        assert_eq!(raise(short.clone(), ApiKey::Produce, 9, MARK), short);
    }
}
