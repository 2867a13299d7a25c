//! Pausing a partition leader's writes while its leadership is handed to another replica
//! (`drain`). openraft 0.9 has no leadership transfer: a follower wins only with the vote of
//! the leader (the other followers refuse while their leader lease holds), and the leader
//! votes only for a log at least as long as its own. Under steady produce load the leader's
//! log is always a few entries ahead, so the election is lost again and again. While paused,
//! the leader's replica says it does not lead (produce answers NOT_LEADER_OR_FOLLOWER, which
//! clients retry after a metadata refresh), replication catches the successor up, and the
//! election goes through: Raft's own transfer procedure, built from the outside.

use sluice_cluster::types::GroupId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One flag per partition group this node runs, shared with the group's replica.
#[derive(Default)]
pub struct HandOvers {
    flags: Mutex<HashMap<GroupId, Arc<AtomicBool>>>,
}

impl HandOvers {
    /// The group's flag, made on first use (when its replica is attached).
    pub fn flag(&self, group: &GroupId) -> Arc<AtomicBool> {
        let mut flags = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(flags.entry(group.clone()).or_default())
    }

    /// Pauses the group's writes until the returned guard is dropped.
    pub fn pause(&self, group: &GroupId) -> Paused {
        let flag = self.flag(group);
        flag.store(true, Ordering::Release);
        Paused(flag)
    }
}

/// Writes resume when this is dropped, whatever the hand-over's outcome.
pub struct Paused(Arc<AtomicBool>);

impl Drop for Paused {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Whether a replica's leadership is being handed over (its writes paused).
pub fn handing_over(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}
