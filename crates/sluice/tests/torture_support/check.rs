//! The checker shared by the crash tests (kill -9 torture and power cuts): reading a topic
//! back, finding acknowledged messages that are missing, and watching committed offsets.

use super::{kafka, nsq, wait_until};
use crate::common::{consume_range, partition_count, watermarks};
use rdkafka::Offset;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Bound on each wait for the broker to answer an offsets query.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

/// Every value in `topic` with the (partition, offset) of each copy. A missing topic reads as
/// empty; a partition whose log start is not 0 panics unless `allow_lost_start`.
pub fn read_topic_at(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    allow_lost_start: bool,
) -> HashMap<String, Vec<(i32, i64)>> {
    let mut values: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    let Some(partitions) = partition_count(bootstrap, topic) else { return values };
    for p in 0..partitions as i32 {
        let (low, high) = watermarks(bootstrap, topic, p);
        assert!(allow_lost_start || low == 0, "{topic}/{p} lost its start (log start {low})");
        if high <= low {
            continue;
        }
        for rec in consume_range(bootstrap, topic, p, Offset::Beginning, (high - low) as usize, timeout) {
            let value = String::from_utf8_lossy(&rec.value.unwrap_or_default()).to_string();
            values.entry(value).or_default().push((rec.partition, rec.offset));
        }
    }
    values
}

/// Every value in `topic` with how many times it is stored.
pub fn read_topic(bootstrap: &str, topic: &str, timeout: Duration) -> HashMap<String, u32> {
    read_topic_at(bootstrap, topic, timeout, false).into_iter().map(|(v, at)| (v, at.len() as u32)).collect()
}

/// Acknowledged ids of `tag` whose value is not in `log`.
pub fn missing_acked<T>(tag: &str, acked: &BTreeSet<u64>, log: &HashMap<String, T>) -> Vec<u64> {
    acked.iter().copied().filter(|id| !log.contains_key(&kafka::value(tag, *id))).collect()
}

/// Acknowledged ids of `tag` not stored at the (partition, offset) the broker acknowledged.
pub fn misplaced_acked(
    tag: &str,
    at: &BTreeMap<u64, (i32, i64)>,
    log: &HashMap<String, Vec<(i32, i64)>>,
) -> Vec<(u64, (i32, i64))> {
    at.iter()
        .filter(|(id, place)| log.get(&kafka::value(tag, **id)).is_none_or(|found| !found.contains(place)))
        .map(|(id, place)| (*id, *place))
        .collect()
}

pub struct AckCheck {
    pub name: &'static str,
    pub acked: usize,
    pub found: usize,
    pub duplicates: usize,
    pub in_log: usize,
}

/// Every acknowledged id of `tag` is in `log`; counts duplicates among all of `tag`'s values.
pub fn check_acked(name: &'static str, tag: &str, acked: &BTreeSet<u64>, log: &HashMap<String, u32>) -> AckCheck {
    let missing = missing_acked(tag, acked, log);
    let prefix = format!("{tag}-");
    let mine = log.iter().filter(|(v, _)| v.starts_with(&prefix));
    let (in_log, duplicates) = mine.fold((0, 0), |(n, d), (_, &c)| (n + 1, d + (c as usize - 1)));
    assert!(!acked.is_empty(), "{name}: nothing was acknowledged in the whole run");
    assert!(
        missing.is_empty(),
        "{name}: {} acknowledged messages missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    AckCheck { name, acked: acked.len(), found: acked.len() - missing.len(), duplicates, in_log }
}

/// Messages of the log not known to be finished: neither confirmed nor FINed on a connection
/// that died (in doubt), and those withheld on first delivery that never came again.
pub fn not_finished(seen: &nsq::Consumed, in_log: &BTreeSet<String>) -> Vec<String> {
    let settled = |b: &String| seen.confirmed.contains(b) || seen.in_doubt.contains(b);
    let open = in_log.iter().filter(|b| !settled(b));
    let withheld = seen.withheld.iter().filter(|b| !seen.confirmed.contains(*b));
    open.chain(withheld).take(10).cloned().collect()
}

/// Whether the broker's channel of `topic` holds nothing ready, in flight or deferred.
pub fn channel_is_empty(http_port: u16, topic: &str) -> bool {
    let (status, body) = crate::nsq_common::http(http_port, "GET", &format!("/stats?format=json&topic={topic}"), b"");
    let Ok(stats) = serde_json::from_str::<serde_json::Value>(&body) else { return false };
    let channel = &stats["topics"][0]["channels"][0];
    status == 200 && ["depth", "in_flight_count", "deferred_count"].iter().all(|k| channel[*k].as_i64() == Some(0))
}

/// A committed offset that broke a promise: below an acknowledged commit, or lower than seen
/// at an earlier check.
#[derive(Debug, Clone)]
pub struct CommitRegression {
    pub when: String,
    pub partition: i32,
    pub stored: i64,
    /// The acknowledged commit (or the offset seen before) it fell below.
    pub promised: i64,
    pub acknowledged: bool,
}

/// A group's committed offsets over a run: never below an acknowledged commit, never lower
/// than seen before.
pub struct CommitWatch {
    topic: String,
    group: String,
    partitions: i32,
    seen: BTreeMap<i32, i64>,
    pub checks: u64,
}

impl CommitWatch {
    pub fn new(topic: &str, group: &str, partitions: i32) -> CommitWatch {
        CommitWatch { topic: topic.into(), group: group.into(), partitions, seen: BTreeMap::new(), checks: 0 }
    }

    /// Panics at the first regression.
    pub fn check(&mut self, bootstrap: &str, acked: &BTreeMap<i32, i64>, when: &str) {
        if let Some(r) = self.regressions(bootstrap, acked, when).first() {
            if r.acknowledged {
                panic!("{when}: partition {} committed {}, but {} was acknowledged", r.partition, r.stored, r.promised);
            }
            panic!("{when}: partition {} committed offset went back from {} to {}", r.partition, r.promised, r.stored);
        }
    }

    /// Every regression now (empty when the promises held).
    pub fn regressions(&mut self, bootstrap: &str, acked: &BTreeMap<i32, i64>, when: &str) -> Vec<CommitRegression> {
        let mut now = None;
        let answered = wait_until(ANSWER_TIMEOUT, || {
            now = kafka::committed_offsets(bootstrap, &self.topic, &self.group, self.partitions);
            now.is_some()
        });
        assert!(answered, "{when}: committed offsets not readable");
        let now = now.unwrap_or_default();
        let mut out = Vec::new();
        let stored = |p: &i32| now.get(p).copied().unwrap_or(-1);
        for (p, &offset) in acked {
            if stored(p) < offset {
                let r = CommitRegression {
                    when: when.into(),
                    partition: *p,
                    stored: stored(p),
                    promised: offset,
                    acknowledged: true,
                };
                out.push(r);
            }
        }
        for (p, &before) in &self.seen {
            if stored(p) < before {
                let r = CommitRegression {
                    when: when.into(),
                    partition: *p,
                    stored: stored(p),
                    promised: before,
                    acknowledged: false,
                };
                out.push(r);
            }
        }
        self.seen = now;
        self.checks += 1;
        out
    }
}
