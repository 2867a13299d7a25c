//! The other half of cluster-wide group listing (`sluice_broker::group::cluster_listing`):
//! every other registered node not known down is asked at once for the groups it
//! coordinates, each bounded by `GROUPS_WAIT`. A node that fails or is late is left out (its
//! groups show again once its offsets partitions have new leaders), so a dead node delays a
//! ListGroups by at most that bound.

use super::{node_rpc, ClusterNode};
use sluice_broker::group::cluster_listing::GroupSummary;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How long a listing waits for each node's answer: a live node answers from memory in
/// milliseconds; Kafka clients' request timeout (30 s by default) is far above it.
const GROUPS_WAIT: Duration = Duration::from_secs(2);

impl ClusterNode {
    /// The groups every other live node coordinates, in no particular order.
    pub(super) async fn remote_groups(&self) -> Vec<GroupSummary> {
        let mut asked = JoinSet::new();
        for (id, info) in self.state().nodes.iter() {
            if *id == self.node_id || self.liveness.seen(*id).up == Some(false) {
                continue;
            }
            let (transport, addr) = (Arc::clone(&self.transport), info.cluster_addr.clone());
            asked.spawn(async move {
                let answer = node_rpc::request_groups(&transport, &addr, GROUPS_WAIT).await;
                (addr, answer)
            });
        }
        let mut groups = Vec::new();
        while let Some(joined) = asked.join_next().await {
            match joined {
                Ok((_, Ok(theirs))) => groups.extend(theirs),
                Ok((addr, Err(why))) => tracing::debug!(%addr, %why, "a node's groups left out of a listing"),
                Err(e) => tracing::debug!(error = %e, "a group listing task failed"),
            }
        }
        groups
    }
}
