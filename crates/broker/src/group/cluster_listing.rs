//! Groups listed cluster-wide. In a cluster each node coordinates only the groups whose
//! `__consumer_offsets` partition it leads, but tools expect ListGroups (and the admin API's
//! group list) on any node to name every group: the node merges its own groups with those
//! the other live nodes report (`ClusterView::remote_groups`). A node that does not answer
//! in time is left out; once its partitions have new leaders, they report its groups.

use super::GroupState;
use crate::Broker;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One group as its coordinator reports it, with what the admin API's list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
    pub members: usize,
    /// Committed offsets' total lag behind the log ends this coordinator knows.
    pub lag: i64,
}

/// The groups this node coordinates, sorted by id.
pub fn local_groups(broker: &Broker) -> Vec<GroupSummary> {
    let groups = broker.groups();
    groups
        .list()
        .into_iter()
        .map(|g| GroupSummary {
            members: groups.describe(&g.group_id).map(|d| d.members.len()).unwrap_or(0),
            lag: groups.lag(broker, &g.group_id).iter().map(|l| l.lag).sum(),
            state: g.state,
            protocol_type: g.protocol_type,
            group_id: g.group_id,
        })
        .collect()
}

/// Every group of the cluster (of this node alone without one), sorted by id.
pub async fn cluster_groups(broker: &Broker) -> Vec<GroupSummary> {
    let local = local_groups(broker);
    let remote = match broker.cluster() {
        Some(cluster) => cluster.remote_groups().await,
        None => Vec::new(),
    };
    merge(local, remote)
}

/// One entry per group id, sorted; the first report of a group wins (this node's own before
/// the others': two nodes report the same group only briefly, while its partition's
/// leadership moves).
fn merge(local: Vec<GroupSummary>, remote: Vec<GroupSummary>) -> Vec<GroupSummary> {
    let mut by_id: BTreeMap<String, GroupSummary> = BTreeMap::new();
    for g in local.into_iter().chain(remote) {
        by_id.entry(g.group_id.clone()).or_insert(g);
    }
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, state: GroupState) -> GroupSummary {
        GroupSummary { group_id: id.into(), protocol_type: "consumer".into(), state, members: 0, lag: 0 }
    }

    #[test]
    fn merge_keeps_one_entry_per_group_local_first_sorted() {
        let local = vec![group("b", GroupState::Stable)];
        let remote = vec![group("c", GroupState::Empty), group("b", GroupState::Empty), group("a", GroupState::Empty)];
        let merged = merge(local, remote);
        let ids: Vec<&str> = merged.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(merged[1].state, GroupState::Stable);
    }
}
