//! Kafka's in-sync replicas, kept by each partition's leader and reported to the metadata
//! group, so every node (replica or not) names the same ISR in Metadata, `/api/cluster` and
//! `/metrics`.
//!
//! As in Kafka, a follower is in sync while it has caught up with the leader's log end within
//! the last `replica.lag.time.max.ms` (`--replica-lag-time-max-ms`). Kafka judges it at each
//! follower fetch; here the leader samples its own log end every `check_interval` and, for
//! each follower, finds the latest sample the follower had reached (openraft's matched index)
//! by the time it last answered an AppendEntries (`GroupContacts`: a dead follower answers
//! nothing, so an idle partition still sees it fall out). That sample's time is when the
//! follower was last caught up, a little early, never late.
//!
//! The leader reports the ISR (`MetaCommand::ReportIsr`, its term as epoch) once after it wins
//! a term and again whenever it changes. A new leader starts by counting the replicas the
//! metadata group lists in sync as caught up now (Kafka's leader does the same with the ISR it
//! is handed); the others join once they catch up.

use super::ClusterNode;
use openraft::ServerState;
use sluice_cluster::meta::{MetaCommand, MetaReply};
use sluice_cluster::types::{GroupId, NodeId, Raft};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples of the leader's log end kept at most: with `check_interval` at a tenth of the lag
/// window (and at most a second) a window of up to 17 minutes fits; a longer one only makes
/// the oldest catch-ups unprovable, which is the safe side.
const SAMPLES_MAX: usize = 1024;
/// Bounds of the sampling interval: often enough to judge a short (test) window finely,
/// rarely enough that an idle leader of many partitions spends next to nothing.
const CHECK_INTERVAL_MIN: Duration = Duration::from_millis(50);
const CHECK_INTERVAL_MAX: Duration = Duration::from_secs(1);

/// How often a leader samples its log end and judges its followers: a tenth of the window.
fn check_interval(lag_max: Duration) -> Duration {
    (lag_max / 10).clamp(CHECK_INTERVAL_MIN, CHECK_INTERVAL_MAX)
}

/// A leader's view of its followers, from openraft's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeaderView {
    term: u64,
    leader: NodeId,
    /// The leader's last log index (its log end).
    last_index: Option<u64>,
    voters: Vec<NodeId>,
    /// Each follower's last index known to match the leader's log.
    matched: BTreeMap<NodeId, Option<u64>>,
}

impl LeaderView {
    /// Some while this node leads and its term's first entry is applied (as `Role::is_leader`).
    fn of(m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>) -> Option<LeaderView> {
        let own_term_applied = m.last_applied.is_some_and(|a| a.leader_id.term == m.current_term);
        if m.state != ServerState::Leader || !own_term_applied {
            return None;
        }
        let replication = m.replication.as_ref()?;
        Some(LeaderView {
            term: m.current_term,
            leader: m.id,
            last_index: m.last_log_index,
            voters: m.membership_config.membership().voter_ids().collect(),
            matched: replication.iter().map(|(id, matched)| (*id, matched.map(|l| l.index))).collect(),
        })
    }
}

/// When each follower was last caught up with the leader, judged from samples of the leader's
/// log end. Pure: time comes in as arguments.
#[derive(Debug)]
struct IsrTracker {
    lag_max: Duration,
    /// (when, the leader's last index then), oldest first; the index never goes down within
    /// one leader's term.
    samples: VecDeque<(Instant, Option<u64>)>,
    caught_up_at: BTreeMap<NodeId, Instant>,
}

impl IsrTracker {
    /// A tracker for a new term: `in_sync` (the metadata group's ISR) counts as caught up now.
    fn new(lag_max: Duration, now: Instant, in_sync: &[NodeId]) -> IsrTracker {
        IsrTracker { lag_max, samples: VecDeque::new(), caught_up_at: in_sync.iter().map(|id| (*id, now)).collect() }
    }

    /// Samples the leader's log end and moves each follower's catch-up time to the latest
    /// sample it had reached when it last answered.
    fn observe(&mut self, now: Instant, view: &LeaderView, last_answer: impl Fn(NodeId) -> Option<Instant>) {
        self.samples.push_back((now, view.last_index));
        while self.samples.len() > SAMPLES_MAX
            || self.samples.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.lag_max)
        {
            self.samples.pop_front();
        }
        for (follower, matched) in &view.matched {
            let Some(answered) = last_answer(*follower) else { continue };
            let reached = self.samples.iter().rev().find(|(at, end)| *at <= answered && end <= matched);
            if let Some((at, _)) = reached {
                let best = self.caught_up_at.entry(*follower).or_insert(*at);
                *best = (*best).max(*at);
            }
        }
    }

    /// The leader and the voters caught up within the window, in id order.
    fn isr(&self, now: Instant, view: &LeaderView) -> Vec<NodeId> {
        let mut isr: Vec<NodeId> = view
            .voters
            .iter()
            .copied()
            .filter(|id| {
                *id == view.leader
                    || self.caught_up_at.get(id).is_some_and(|at| now.saturating_duration_since(*at) <= self.lag_max)
            })
            .collect();
        isr.sort_unstable();
        isr
    }
}

/// What a leader keeps for its term.
struct Leading {
    term: u64,
    tracker: IsrTracker,
    /// The ISR last accepted (or refused for good) by the metadata group this term.
    reported: Option<Vec<NodeId>>,
}

impl ClusterNode {
    /// Keeps the partition's ISR while this node leads it, reporting each change to the
    /// metadata group. Ends when the group stops.
    pub(super) async fn track_isr(self: Arc<Self>, topic: String, partition: i32, topic_id: u64, raft: Raft) {
        let contacts = self.transport.contacts(&GroupId::Partition { topic: topic.clone(), partition, topic_id });
        let lag_max = self.settings.replica_lag_time_max;
        let mut metrics = raft.metrics();
        let mut leading: Option<Leading> = None;
        loop {
            let view = LeaderView::of(&metrics.borrow_and_update());
            let Some(view) = view else {
                leading = None;
                if metrics.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let now = Instant::now();
            let mut current = match leading.take() {
                Some(l) if l.term == view.term => l,
                _ => Leading { term: view.term, tracker: self.new_tracker(&topic, partition, now), reported: None },
            };
            current.tracker.observe(now, &view, |node| contacts.last_answer(node));
            let isr = current.tracker.isr(now, &view);
            let reporting = current.reported.as_ref() != Some(&isr);
            if reporting && self.report_isr(&topic, partition, topic_id, &isr, view.term).await {
                current.reported = Some(isr);
            }
            leading = Some(current);
            // While leading, sample on a clock rather than on every metrics change (each append).
            tokio::time::sleep(check_interval(lag_max)).await;
            if metrics.has_changed().is_err() {
                return;
            }
        }
    }

    fn new_tracker(&self, topic: &str, partition: i32, now: Instant) -> IsrTracker {
        let recorded = self.state().partition(topic, partition).map(|p| p.isr.clone()).unwrap_or_default();
        IsrTracker::new(self.settings.replica_lag_time_max, now, &recorded)
    }

    /// Proposes the ISR; true once the metadata group has answered it (accepted, or refused
    /// as stale or invalid: asking again would not change that), false to retry later.
    async fn report_isr(&self, topic: &str, partition: i32, topic_id: u64, isr: &[NodeId], term: u64) -> bool {
        let (epoch, topic_id) = (i32::try_from(term).unwrap_or(i32::MAX), Some(topic_id));
        let (name, isr_nodes) = (topic.to_string(), isr.to_vec());
        let command = MetaCommand::ReportIsr { topic: name, partition, isr: isr_nodes, epoch, topic_id };
        match self.propose_meta(&command).await {
            Ok(MetaReply::Ok) => {
                tracing::info!(topic, partition, ?isr, epoch, "in-sync replicas reported");
                true
            }
            Ok(refused) => {
                tracing::debug!(topic, partition, ?isr, epoch, reply = ?refused, "in-sync replicas not recorded");
                true
            }
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "cannot report in-sync replicas yet");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_cluster::transport::GroupContacts;

    const LAG: Duration = Duration::from_secs(10);

    fn view(last_index: u64, matched: &[(NodeId, u64)]) -> LeaderView {
        LeaderView {
            term: 3,
            leader: 1,
            last_index: Some(last_index),
            voters: vec![1, 2, 3],
            matched: matched.iter().map(|(id, m)| (*id, Some(*m))).collect(),
        }
    }

    fn secs(start: Instant, s: u64) -> Instant {
        start + Duration::from_secs(s)
    }

    #[test]
    fn a_follower_that_keeps_answering_and_keeps_up_stays_in_sync() {
        // Proves a follower a little behind at every check (but past the previous sample)
        // stays in sync, as Kafka's follower that reaches the last fetch's log end does.
        let start = Instant::now();
        let mut tracker = IsrTracker::new(LAG, start, &[1, 2, 3]);
        for s in 1..=30 {
            let now = secs(start, s);
            // The leader's end grows by 10 a second; the follower has last second's end.
            let v = view(10 * s, &[(2, 10 * s - 5), (3, 10 * s - 5)]);
            tracker.observe(now, &v, |_| Some(now - Duration::from_millis(10)));
            assert_eq!(tracker.isr(now, &v), vec![1, 2, 3], "at {s} s");
        }
    }

    #[test]
    fn a_silent_follower_leaves_after_the_window_even_when_idle_and_returns_once_caught_up() {
        // Proves liveness counts: node 3 matched everything but stops answering; it is out
        // after the window and back at the first check after it answers again, caught up.
        let start = Instant::now();
        let mut tracker = IsrTracker::new(LAG, start, &[1, 2, 3]);
        let idle = view(5, &[(2, 5), (3, 5)]);
        let silent_since = start;
        let mut left_at = None;
        for s in 1..=15 {
            let now = secs(start, s);
            tracker.observe(now, &idle, |node| Some(if node == 3 { silent_since } else { now }));
            if left_at.is_none() && !tracker.isr(now, &idle).contains(&3) {
                left_at = Some(s);
            }
        }
        assert_eq!(left_at, Some(11), "out once more than {LAG:?} passed");
        assert_eq!(tracker.isr(secs(start, 15), &idle), vec![1, 2]);
        let now = secs(start, 16);
        tracker.observe(now, &idle, |_| Some(now));
        assert_eq!(tracker.isr(now, &idle), vec![1, 2, 3]);
    }

    #[test]
    fn a_follower_falling_behind_leaves_and_one_never_caught_up_stays_out() {
        // Proves a follower stuck at an old index leaves once the window passes, though it
        // answers, and one outside the recorded ISR joins only after it catches up.
        let start = Instant::now();
        let mut tracker = IsrTracker::new(LAG, start, &[1, 2]);
        for s in 1..=12 {
            let now = secs(start, s);
            let v = view(100 * s, &[(2, 7), (3, 7)]);
            tracker.observe(now, &v, |_| Some(now));
            let isr = tracker.isr(now, &v);
            assert!(!isr.contains(&3), "node 3 never caught up: {isr:?} at {s} s");
            assert_eq!(isr.contains(&2), s <= 10, "at {s} s: {isr:?}");
        }
        let now = secs(start, 13);
        let v = view(1300, &[(2, 1300), (3, 1250)]);
        tracker.observe(now, &v, |_| Some(now));
        // Node 2 has everything now; node 3 reached the sample of 12 s (1200).
        assert_eq!(tracker.isr(now, &v), vec![1, 2, 3]);
    }

    #[test]
    fn samples_stay_bounded() {
        let start = Instant::now();
        let contacts = GroupContacts::default();
        let mut tracker = IsrTracker::new(Duration::from_secs(3600), start, &[1]);
        for ms in 0..(SAMPLES_MAX as u64 + 50) {
            let now = start + Duration::from_millis(ms);
            tracker.observe(now, &view(ms, &[(2, ms)]), |node| contacts.last_answer(node));
        }
        assert_eq!(tracker.samples.len(), SAMPLES_MAX);
        assert_eq!(check_interval(Duration::from_secs(30)), CHECK_INTERVAL_MAX);
        assert_eq!(check_interval(Duration::from_millis(300)), CHECK_INTERVAL_MIN);
    }
}
