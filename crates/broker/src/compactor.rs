//! Background log compaction for topics whose `cleanup.policy` holds `compact`: one task for
//! the broker, which every `COMPACTION_CHECK_PERIOD` runs one pass over each compacted
//! partition on tokio's blocking pool (`PartitionLog::compact`: file I/O, never
//! on the async runtime). Passes run one partition at a time, so at most one key map
//! (`sluice_log::KEY_MAP_BYTES_MAX`) is in memory. A partition whose pass failed (a damaged
//! segment, a full disk) waits `RETRY_AFTER_FAILURE` before its next try.
//!
//! A replicated partition's log is also its Raft log: each replica compacts its own copy
//! (`PartitionLog::compact_replicated`) below what it applied, every batch keeping its base
//! offset, last offset delta and producer fields, so every Raft entry still spans the same
//! offsets and the leader can send it, compacted, to a follower that lacks it. A compacted
//! topic's Raft log is never purged by count (only retention purges, `compact,delete`), so a
//! new or wiped replica is sent the whole compacted log, not a snapshot that would skip it.

use crate::broker::Broker;
use crate::replicated_delete_records::Following;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// How often compacted logs are checked. A check with nothing dirty is a lock and a look at
/// the segment list; `min.cleanable.dirty.ratio` decides when a pass really rewrites (Kafka's
/// cleaner backs off 15 s when idle; a shorter period keeps tombstone deadlines closer).
const COMPACTION_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true; a pass under way stops at the next partition.
pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let stopping = Arc::new(AtomicBool::new(false));
    let mut failures = Failures::new();
    // Log cleanup's other half on a replicated partition: every second each local replica
    // behind the log start DeleteRecords recorded for it catches up (`replicated_delete_records`).
    let following = Arc::new(Following::default());
    let mut ticker = tokio::time::interval(COMPACTION_CHECK_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            stopping.store(true, Ordering::Relaxed);
            return;
        }
        following.follow_all(&broker);
        let (worker, stop) = (Arc::clone(&broker), Arc::clone(&stopping));
        let mut failed = std::mem::take(&mut failures);
        let pass = tokio::task::spawn_blocking(move || {
            compact_all(&worker, &stop, &mut failed);
            failed
        });
        tokio::select! {
            done = pass => failures = done.unwrap_or_default(),
            _ = shutdown.changed() => {
                stopping.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Partitions whose last pass failed, and when: they wait `RETRY_AFTER_FAILURE`.
type Failures = HashMap<(String, i32), Instant>;

/// A pass that failed (a damaged segment, a full disk) is not retried every second.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// One pass over every compacted partition this node holds a copy of.
fn compact_all(broker: &Broker, stopping: &AtomicBool, failures: &mut Failures) {
    failures.retain(|_, at| at.elapsed() < RETRY_AFTER_FAILURE);
    for topic in broker.topics() {
        if !topic.config().compacts() {
            continue;
        }
        for partition in topic.partitions() {
            if stopping.load(Ordering::Relaxed) {
                return;
            }
            let key = (topic.name.to_string(), partition.index);
            if failures.contains_key(&key) {
                continue;
            }
            let compacted = match (partition.replica(), partition.is_clustered()) {
                // A replica compacts its own copy, as each Kafka broker does, but only what it
                // committed and applied (never a suffix Raft may truncate), keeping every
                // batch's frame so each Raft entry can still be read back for a follower.
                (Some(_), _) => partition.log().compact_replicated(now_ms(), partition.log_end_offset()),
                // Clustered but not (yet) a replica here: its log is not ours to change.
                (None, true) => continue,
                (None, false) => partition.log().compact(now_ms()),
            };
            match compacted {
                Ok(report) if report.segments_rewritten > 0 => tracing::info!(
                    topic = %topic.name, partition = partition.index, segments = report.segments_rewritten,
                    records_removed = report.records_removed, bytes_removed = report.bytes_removed, "compacted"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "compaction failed");
                    failures.insert(key, Instant::now());
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
