//! ListGroups: every group of this coordinator, filtered by state from v4 (KIP-518) and by
//! group type from v5 (KIP-848), as Kafka's `GroupMetadataManager.listGroups`: both filters
//! ignore case, an empty filter matches everything, and both must match. Every group here
//! is a classic one (JoinGroup/SyncGroup); an unknown type matches none. In a cluster the
//! list is every node's (`group::cluster_listing`), as Kafka's tools expect from any broker.

use super::str_bytes;
use crate::dispatch::DispatchError;
use crate::dispatch::RequestMeta;
use crate::error_codes::NONE;
use crate::server::Context;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_broker::group::cluster_listing::{cluster_groups, GroupSummary};
use std::sync::Arc;

/// KIP-848's name for groups of the JoinGroup/SyncGroup protocol, the only kind served here.
const CLASSIC: &str = "classic";

pub async fn handle(
    ctx: Arc<Context>,
    request: ListGroupsRequest,
    meta: RequestMeta,
) -> Result<Option<bytes::Bytes>, DispatchError> {
    meta.respond(&answer(&ctx, &request, meta).await).map(Some)
}

/// The response `handle` sends (the authorizer filters it).
pub async fn answer(ctx: &Context, request: &ListGroupsRequest, meta: RequestMeta) -> ListGroupsResponse {
    respond(cluster_groups(&ctx.broker).await, request, meta)
}

fn respond(groups: Vec<GroupSummary>, request: &ListGroupsRequest, meta: RequestMeta) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    response.error_code = NONE;
    let states = lowercase(&request.states_filter);
    let types = lowercase(&request.types_filter);
    for g in groups {
        if !matches(&states, g.state.name()) || !matches(&types, CLASSIC) {
            continue;
        }
        let mut listed = ListedGroup::default();
        listed.group_id = GroupId(str_bytes(&g.group_id));
        listed.protocol_type = str_bytes(&g.protocol_type);
        if meta.version >= 4 {
            listed.group_state = str_bytes(g.state.name());
        }
        if meta.version >= 5 {
            listed.group_type = str_bytes(CLASSIC);
        }
        response.groups.push(listed);
    }
    response
}

fn lowercase(filter: &[StrBytes]) -> Vec<String> {
    filter.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
}

/// An empty filter matches everything; otherwise `value` must be in it, ignoring case.
fn matches(filter: &[String], value: &str) -> bool {
    filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_ignore_case_and_empty_matches_all() {
        assert!(matches(&[], "Stable"));
        assert!(matches(&lowercase(&[StrBytes::from_static_str(" STABLE ")]), "Stable"));
        assert!(matches(&lowercase(&[StrBytes::from_static_str("Classic")]), CLASSIC));
        assert!(!matches(&lowercase(&[StrBytes::from_static_str("consumer")]), CLASSIC));
        assert!(!matches(&lowercase(&[StrBytes::from_static_str("Empty")]), "Stable"));
    }
}
