//! Byte rates (and request time, `request_time`) measured as Kafka's quota sensors measure them, and the throttle time a rate
//! above its quota earns: `SAMPLES` samples of `SAMPLE` each; the rate is their bytes over
//! their span, a span never shorter than `SAMPLES - 1` samples (so one burst after a quiet
//! spell is spread over the window, not over the burst); the throttle is how long the
//! client must stay quiet for the rate to fall back to the quota:
//! `(rate - quota) / quota * span`, at most the whole window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kafka's `quota.window.size.seconds`.
pub const SAMPLE: Duration = Duration::from_secs(1);
/// Kafka's `quota.window.num`.
pub const SAMPLES: u32 = 11;
/// Meters one node keeps; past it the least recently used is dropped (its client starts
/// afresh), so a flood of client ids cannot grow memory without bound.
const METERS_MAX: usize = 10_000;

/// One sensor: bytes per sample, oldest first.
#[derive(Debug, Default)]
struct Meter {
    samples: VecDeque<(Instant, f64)>,
    last_used: Option<Instant>,
}

impl Meter {
    fn forget_before(&mut self, now: Instant) {
        let window = SAMPLE * SAMPLES;
        while self.samples.front().is_some_and(|(start, _)| now.duration_since(*start) >= window) {
            self.samples.pop_front();
        }
    }

    fn add(&mut self, now: Instant, bytes: f64) {
        self.forget_before(now);
        match self.samples.back_mut() {
            Some((start, total)) if now.duration_since(*start) < SAMPLE => *total += bytes,
            _ => self.samples.push_back((now, bytes)),
        }
        self.last_used = Some(now);
    }

    /// Bytes per second over the samples' span (at least `SAMPLES - 1` samples long).
    fn rate(&self, now: Instant) -> (f64, Duration) {
        let total: f64 = self.samples.iter().map(|(_, b)| b).sum();
        let elapsed = self.samples.front().map_or(Duration::ZERO, |(start, _)| now.duration_since(*start));
        let span = elapsed.max(SAMPLE * (SAMPLES - 1));
        (total / span.as_secs_f64(), span)
    }
}

/// The throttle time for `rate` against `quota` over `span`, at most the whole window.
pub fn throttle_for(rate: f64, quota: f64, span: Duration) -> Duration {
    if rate <= quota || quota <= 0.0 {
        return Duration::ZERO;
    }
    let seconds = (rate - quota) / quota * span.as_secs_f64();
    Duration::from_secs_f64(seconds).min(SAMPLE * SAMPLES)
}

/// The sensors of one quota type, keyed by the entity that meters them.
pub struct Meters<K> {
    meters: Mutex<HashMap<K, Meter>>,
}

impl<K> Default for Meters<K> {
    fn default() -> Self {
        Meters { meters: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Meters<K> {
    /// Records `bytes` against `key` and answers the throttle time they earn at `quota`.
    pub fn record(&self, key: &K, bytes: u64, quota: f64, now: Instant) -> Duration {
        self.record_amount(key, bytes as f64, quota, now)
    }

    /// `record` for any measure (request-time quotas meter percent-seconds of handler time).
    pub fn record_amount(&self, key: &K, amount: f64, quota: f64, now: Instant) -> Duration {
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        if !meters.contains_key(key) && meters.len() >= METERS_MAX {
            let oldest = meters.iter().min_by_key(|(_, m)| m.last_used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                meters.remove(&oldest);
            }
        }
        let meter = meters.entry(key.clone()).or_default();
        meter.add(now, amount);
        let (rate, span) = meter.rate(now);
        throttle_for(rate, quota, span)
    }

    /// Takes back `bytes` just recorded (a throttled Fetch answers without them, as Kafka's).
    pub fn unrecord(&self, key: &K, bytes: u64, now: Instant) {
        let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(meter) = meters.get_mut(key) {
            meter.add(now, -(bytes as f64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_spread_over_the_window_and_throttled_in_proportion() {
        let meters: Meters<&str> = Meters::default();
        let now = Instant::now();
        // 10 KB/s over a 10 s span: 100 KB is exactly the quota.
        assert_eq!(meters.record(&"a", 100_000, 10_000.0, now), Duration::ZERO);
        // 200 KB over 10 s is twice the quota: stay quiet another 10 s.
        assert_eq!(meters.record(&"a", 100_000, 10_000.0, now), Duration::from_secs(10));
        meters.unrecord(&"a", 100_000, now);
        assert_eq!(meters.record(&"b", 1, 10_000.0, now), Duration::ZERO, "meters are separate");
    }

    #[test]
    fn old_samples_are_forgotten_and_the_throttle_is_bounded() {
        let meters: Meters<&str> = Meters::default();
        let start = Instant::now();
        assert_eq!(meters.record(&"a", 10_000_000, 1.0, start), SAMPLE * SAMPLES, "at most the window");
        let later = start + SAMPLE * (SAMPLES + 1);
        assert_eq!(meters.record(&"a", 1, 10.0, later), Duration::ZERO, "the burst has left the window");
    }
}
