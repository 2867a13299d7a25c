//! When each follower of a group last answered its leader's AppendEntries: the leader's proof
//! that a follower is alive (Kafka counts a follower's fetches the same way for its ISR).
//! openraft 0.9's metrics say how far a follower matched, not when it last answered, so the
//! network records it as replies come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::types::{GroupId, NodeId};

/// One group's last answers, by follower; shared by the group's network and whoever watches.
#[derive(Debug, Default)]
pub struct GroupContacts {
    answered_at: Mutex<HashMap<NodeId, Instant>>,
}

impl GroupContacts {
    /// `node` answered an AppendEntries (heartbeat or entries) now.
    pub fn answered(&self, node: NodeId) {
        self.lock().insert(node, Instant::now());
    }

    /// When `node` last answered, if ever since this process started.
    pub fn last_answer(&self, node: NodeId) -> Option<Instant> {
        self.lock().get(&node).copied()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Instant>> {
        // An insert leaves the map whole even if its holder panicked.
        self.answered_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every group's contacts on this node. Holds them weakly: a group's network and its watcher
/// keep them; a stopped group's entry is pruned on the next lookup of a new group.
#[derive(Debug, Default)]
pub(crate) struct Contacts {
    groups: Mutex<HashMap<GroupId, Weak<GroupContacts>>>,
}

impl Contacts {
    /// The contacts of `group`, made on first use.
    pub(crate) fn of(&self, group: &GroupId) -> Arc<GroupContacts> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = groups.get(group).and_then(Weak::upgrade) {
            return live;
        }
        groups.retain(|_, contacts| contacts.strong_count() > 0);
        let contacts = Arc::new(GroupContacts::default());
        groups.insert(group.clone(), Arc::downgrade(&contacts));
        contacts
    }
}
