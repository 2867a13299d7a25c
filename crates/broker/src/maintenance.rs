//! Background upkeep of every partition log: interval flushes and retention.
//! One task for the whole broker, stopped by the shutdown signal.

use crate::broker::Broker;
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
    let mut last_flush: HashMap<(String, i32), Instant> = HashMap::new();
    let mut last_retention = Instant::now();
    let mut last_probe = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let broker = Arc::clone(&broker);
        let check_retention = last_retention.elapsed() >= RETENTION_CHECK_PERIOD;
        if check_retention {
            last_retention = Instant::now();
        }
        let probe_storage = broker.storage_health().is_failing() && last_probe.elapsed() >= STORAGE_PROBE_PERIOD;
        if probe_storage {
            last_probe = Instant::now();
        }
        let flushed = tokio::task::spawn_blocking(move || {
            if probe_storage {
                broker.storage_health().probe(&broker.config().data_dir);
            }
            upkeep(&broker, last_flush, check_retention)
        })
        .await;
        last_flush = flushed.unwrap_or_default();
    }
}

fn upkeep(
    broker: &Broker,
    mut last_flush: HashMap<(String, i32), Instant>,
    check_retention: bool,
) -> HashMap<(String, i32), Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    for topic in broker.topics() {
        for partition in topic.partitions() {
            let log = partition.log();
            if let FlushPolicy::Interval(every) = log.config().flush {
                let key = (topic.name.to_string(), partition.index);
                let due = last_flush.get(&key).is_none_or(|t| t.elapsed() >= every);
                if due {
                    if let Err(e) = log.flush() {
                        tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "interval flush failed");
                    }
                    last_flush.insert(key, Instant::now());
                }
            }
            if check_retention {
                if let Err(e) = log.checkpoint_recovery_point() {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "recovery point not stored");
                }
                if partition.replica().is_some() {
                    // A replicated log is also its Raft log: deleting segments under the group
                    // would leave entries it may still send to a follower. Not applied yet.
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
    }
    last_flush
}
