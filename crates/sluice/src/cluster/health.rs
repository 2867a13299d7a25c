//! Whether this node is cut off from the cluster's majority, for `/ping` (load balancers and
//! orchestrators take a node that answers NOK out of service, as with a failing disk).
//!
//! Judged from this node's own reachability (`liveness`), not from Raft state: a node cut
//! off keeps believing its old leader for a while and would look healthy; pings tell within
//! `liveness::DOWN_AFTER`. The count is of the metadata group's voters, the majority that
//! decides what the cluster is: this node, if a voter, and the voters it reaches. A peer not
//! known yet (just started) counts as reached, so a starting node is not flapped to NOK.

use super::ClusterNode;
use std::collections::BTreeSet;

impl ClusterNode {
    /// Some(why) when this node reaches no majority of the metadata voters.
    pub fn cut_off(&self) -> Option<String> {
        let voters: BTreeSet<_> = self.meta.metrics().borrow().membership_config.membership().voter_ids().collect();
        if voters.is_empty() {
            return None;
        }
        let reached =
            voters.iter().filter(|id| **id == self.node_id || self.liveness.seen(**id).up != Some(false)).count();
        (reached * 2 <= voters.len())
            .then(|| format!("cut off from the cluster: reaches {reached} of the {} metadata voters", voters.len()))
    }
}
