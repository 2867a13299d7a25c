//! One deadline heap per coordinator: session timeouts of members, expiry of members
//! that got `MEMBER_ID_REQUIRED` but never came back, and rebalance timeouts. Entries are
//! checked against the group's current state when they fire (a heartbeat only moves the
//! member's deadline; the stale entry is re-armed when it pops), so there is no timer
//! per member and no entry removal on the hot path.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

/// Rebuild the heap from live state when it holds more than this many entries beyond
/// what is live: bounds the garbage left by churn (joins that re-arm early entries).
pub const STALE_ENTRIES_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A member's session: expires unless heartbeats moved its deadline.
    Session(String),
    /// A member id handed out with `MEMBER_ID_REQUIRED`, waiting for its second join.
    Pending(String),
    /// The end of a rebalance phase of this generation (join or sync phase).
    Rebalance(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    pub at: Instant,
    pub group: Arc<str>,
    pub kind: Kind,
}

#[derive(Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<Deadline>>,
}

impl Deadlines {
    pub fn push(&mut self, at: Instant, group: &Arc<str>, kind: Kind) {
        self.heap.push(Reverse(Deadline { at, group: Arc::clone(group), kind }));
    }

    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// Removes and returns every entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Vec<Deadline> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
            if let Some(Reverse(d)) = self.heap.pop() {
                due.push(d);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut d = Deadlines::default();
        let g: Arc<str> = Arc::from("g");
        let t0 = Instant::now();
        d.push(t0 + Duration::from_secs(2), &g, Kind::Session("b".into()));
        d.push(t0 + Duration::from_secs(1), &g, Kind::Session("a".into()));
        d.push(t0 + Duration::from_secs(3), &g, Kind::Rebalance(1));
        assert!(d.pop_due(t0).is_empty());
        let due = d.pop_due(t0 + Duration::from_secs(2));
        assert_eq!(
            due.iter().map(|x| x.kind.clone()).collect::<Vec<_>>(),
            vec![Kind::Session("a".into()), Kind::Session("b".into())]
        );
        assert_eq!(d.next_at(), Some(t0 + Duration::from_secs(3)));
    }
}
