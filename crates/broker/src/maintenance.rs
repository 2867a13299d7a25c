//! Background upkeep of every partition log: interval flushes and retention.
//! One task for the whole broker, stopped by the shutdown signal. Retention runs every
//! `RETENTION_CHECK_PERIOD` and on a partition whose log just rolled a segment; a replicated
//! partition's runs on its own task (`replicated_retention`).

use crate::broker::Broker;
use crate::partition::Partition;
use crate::replicated_retention::InFlight;
use sluice_log::FlushPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Granularity of interval flushes: `flush.ms` below this is rounded up to it.
const TICK: Duration = Duration::from_millis(50);
/// How often retention is checked (Kafka's `log.retention.check.interval.ms` is 5 minutes;
/// a shorter period keeps disk use closer to the limit at negligible cost).
const RETENTION_CHECK_PERIOD: Duration = Duration::from_secs(30);
/// While storage writes fail, how often a probe write checks whether space came back, so
/// `/ping` recovers without waiting for a client to write.
const STORAGE_PROBE_PERIOD: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = Seen::default();
    let mut last_retention = Instant::now();
    let mut last_probe = Instant::now();
    let replicated = Arc::new(InFlight::default());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let worker = Arc::clone(&broker);
        let check_retention = last_retention.elapsed() >= RETENTION_CHECK_PERIOD;
        if check_retention {
            last_retention = Instant::now();
        }
        let probe_storage = broker.storage_health().is_failing() && last_probe.elapsed() >= STORAGE_PROBE_PERIOD;
        if probe_storage {
            last_probe = Instant::now();
        }
        let done = tokio::task::spawn_blocking(move || {
            if probe_storage {
                worker.storage_health().probe(&worker.config().data_dir);
            }
            upkeep(&worker, seen, check_retention)
        })
        .await;
        let (next, due) = done.unwrap_or_default();
        seen = next;
        for (topic, partition) in due {
            replicated.start(&broker, &topic, partition, now_ms());
        }
    }
}

/// Per partition: when it was last flushed, and how many segments it had at the last tick
/// (keyed by the partition's address: no allocation per partition and tick; rebuilt every
/// tick, so partitions gone are forgotten).
#[derive(Default)]
struct Seen {
    flushed: HashMap<(String, i32), Instant>,
    segments: HashMap<usize, usize>,
}

/// Replicated partitions whose retention is due (run asynchronously: their Raft log releases
/// the segments first).
type Due = Vec<(String, Arc<Partition>)>;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn upkeep(broker: &Broker, mut seen: Seen, check_retention: bool) -> (Seen, Due) {
    let now_ms = now_ms();
    let mut due = Vec::new();
    let mut segments_before = std::mem::take(&mut seen.segments);
    for topic in broker.topics() {
        for partition in topic.partitions() {
            let log = partition.log();
            if let FlushPolicy::Interval(every) = log.config().flush {
                let key = (topic.name.to_string(), partition.index);
                let flush_due = seen.flushed.get(&key).is_none_or(|t| t.elapsed() >= every);
                if flush_due {
                    if let Err(e) = log.flush() {
                        tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "interval flush failed");
                    }
                    seen.flushed.insert(key, Instant::now());
                }
            }
            // A log that rolled a segment is checked at once, so `retention.bytes` holds
            // within about a segment of its limit however fast it is written.
            let segments = log.segment_count();
            let address = Arc::as_ptr(&partition) as usize;
            let rolled = segments_before.remove(&address).is_some_and(|before| segments > before);
            seen.segments.insert(address, segments);
            if check_retention {
                if let Err(e) = log.checkpoint_recovery_point() {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "recovery point not stored");
                }
            }
            if !check_retention && !rolled {
                continue;
            }
            if partition.replica().is_some() {
                due.push((topic.name.to_string(), Arc::clone(&partition)));
                continue;
            }
            match log.enforce_retention_holding(now_ms, broker.retention_hold(&topic.name, partition.index)) {
                Ok(report) if report.segments_deleted > 0 => tracing::info!(
                    topic = %topic.name, partition = partition.index, segments = report.segments_deleted,
                    bytes = report.bytes_deleted, log_start_offset = report.log_start_offset, "retention deleted segments"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "retention failed")
                }
            }
        }
    }
    (seen, due)
}
