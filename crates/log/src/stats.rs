//! Process-wide fsync figures for `/metrics`. The log knows nothing of metrics formats
//! or of the broker: it counts here with atomics, and the broker reads a snapshot at
//! scrape time. Fixed buckets, so recording never allocates or locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the fsync latency buckets, in seconds. From 50 µs (a write-back cache or
/// tmpfs) to 5 s (a stalled disk); anything slower lands in the implicit `+Inf` bucket.
pub const FSYNC_BUCKETS_SECONDS: [f64; 14] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Counts of fsyncs per bucket (not cumulative), plus the `+Inf` overflow at the end.
static FSYNC_BUCKETS: [AtomicU64; FSYNC_BUCKETS_SECONDS.len() + 1] =
    [const { AtomicU64::new(0) }; FSYNC_BUCKETS_SECONDS.len() + 1];
static FSYNC_COUNT: AtomicU64 = AtomicU64::new(0);
static FSYNC_NANOS_SUM: AtomicU64 = AtomicU64::new(0);

/// fsync latency since the process started, across every partition log.
#[derive(Debug, Clone, PartialEq)]
pub struct FsyncSnapshot {
    pub count: u64,
    pub sum_seconds: f64,
    /// Cumulative counts, one per bound of `FSYNC_BUCKETS_SECONDS`.
    pub cumulative: [u64; FSYNC_BUCKETS_SECONDS.len()],
}

/// Records one fsync (data or directory) that took `elapsed`, whether it succeeded or not.
pub(crate) fn record_fsync(elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let bucket =
        FSYNC_BUCKETS_SECONDS.iter().position(|bound| seconds <= *bound).unwrap_or(FSYNC_BUCKETS_SECONDS.len());
    FSYNC_BUCKETS[bucket].fetch_add(1, Ordering::Relaxed);
    FSYNC_NANOS_SUM.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    FSYNC_COUNT.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot for a scrape. Taken without a lock, so a concurrent fsync may show in the
/// buckets and not yet in `count` (or the reverse); the next scrape agrees again.
pub fn fsync_snapshot() -> FsyncSnapshot {
    let mut cumulative = [0u64; FSYNC_BUCKETS_SECONDS.len()];
    let mut running = 0u64;
    for (i, slot) in cumulative.iter_mut().enumerate() {
        running += FSYNC_BUCKETS[i].load(Ordering::Relaxed);
        *slot = running;
    }
    let overflow = FSYNC_BUCKETS[FSYNC_BUCKETS_SECONDS.len()].load(Ordering::Relaxed);
    // Keep the invariant Prometheus checks: the +Inf bucket (count) is at least the last bound.
    let count = FSYNC_COUNT.load(Ordering::Relaxed).max(running + overflow);
    FsyncSnapshot { count, sum_seconds: FSYNC_NANOS_SUM.load(Ordering::Relaxed) as f64 / 1e9, cumulative }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_covers_them() {
        let before = fsync_snapshot();
        record_fsync(Duration::from_micros(30));
        record_fsync(Duration::from_millis(3));
        record_fsync(Duration::from_secs(60));
        let after = fsync_snapshot();
        // Other tests fsync concurrently: check at least our three, and the shape.
        assert!(after.count >= before.count + 3);
        assert!(after.cumulative[0] > before.cumulative[0]);
        assert!(after.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert!(after.count >= after.cumulative[FSYNC_BUCKETS_SECONDS.len() - 1]);
        assert!(after.sum_seconds >= 60.0);
        assert!(FSYNC_BUCKETS_SECONDS.windows(2).all(|w| w[0] < w[1]));
    }
}
