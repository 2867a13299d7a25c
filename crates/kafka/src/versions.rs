//! The API versions this listener really serves. Only these are advertised in
//! ApiVersions; anything else is refused.

use kafka_protocol::messages::ApiKey;

/// (api, min version, max version) served. Upper bounds stop where a newer version would
/// need semantics Sluice lacks (e.g. Fetch v13+ addresses topics by id only).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 0, 12),
    (ApiKey::ListOffsets, 0, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    // KIP-107; a single node's partitions only (replicated ones answer INVALID_REQUEST).
    (ApiKey::DeleteRecords, 0, 2),
    // Partition moves and preferred elections in a cluster (a single node has none).
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    // Consumer groups. JoinGroup v9 has skip_assignment; OffsetCommit/OffsetFetch v9 and
    // FindCoordinator v5+ belong to the KIP-848 protocol and transactions, not served.
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 0, 8),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // Authentication (KIP-43, KIP-152, KIP-84) and SCRAM credential management (KIP-554).
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // ACLs (KIP-140); SECURITY_DISABLED unless the broker runs with --authorizer acl.
    (ApiKey::CreateAcls, 0, 3),
    (ApiKey::DescribeAcls, 0, 3),
    (ApiKey::DeleteAcls, 0, 3),
    // Client quotas (KIP-546): byte rates per user and client id.
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The served version range of `api`, if it is served at all.
pub fn served_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == api).map(|(_, min, max)| (*min, *max))
}

pub fn is_served(api: ApiKey, version: i16) -> bool {
    served_range(api).is_some_and(|(min, max)| (min..=max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_versions_are_within_what_the_codec_knows() {
        for (api, min, max) in SUPPORTED_APIS {
            let known = api.valid_versions();
            assert!(*min >= known.min && *max <= known.max, "{api:?}");
        }
    }
}
