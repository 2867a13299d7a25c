//! Request latency per protocol and request type. A listener resolves one histogram per
//! request type when it starts, so recording a request is an index and a few atomic adds
//! (no label lookup, no lock, no allocation).

use super::Metrics;
use prometheus::Histogram;
use std::time::Duration;

/// Upper bounds of the request latency buckets, in seconds: 100 µs (a metadata answer)
/// to 30 s (the longest Fetch long-poll Sluice allows), roughly ×2.5 apart.
pub const REQUEST_BUCKETS_SECONDS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

/// The `request` label of anything a listener did not name (an unknown API key or verb).
pub const OTHER_REQUEST: &str = "other";

/// Request types a listener serves, as (index, label) pairs; the index is the listener's
/// own number for the type (a Kafka API key, a position in the NSQ verb list).
pub type RequestKinds<'a> = &'a [(usize, &'a str)];

/// One listener's latency histograms, indexed by its request-type number.
pub struct RequestMetrics {
    by_kind: Vec<Option<Histogram>>,
    other: Histogram,
}

/// Request-type numbers are small (Kafka API keys are below 100); this bounds the table.
const KIND_INDEX_MAX: usize = 1024;

impl RequestMetrics {
    /// Resolves the histograms of `protocol` for `kinds` (indexes at or above
    /// `KIND_INDEX_MAX` are recorded as `other`).
    pub fn new(metrics: &Metrics, protocol: &str, kinds: RequestKinds<'_>) -> RequestMetrics {
        let len = kinds.iter().map(|(i, _)| i + 1).filter(|n| *n <= KIND_INDEX_MAX).max().unwrap_or(0);
        let mut by_kind = vec![None; len];
        for (index, name) in kinds {
            if let Some(slot) = by_kind.get_mut(*index) {
                *slot = Some(metrics.request_seconds.with_label_values(&[protocol, name]));
            }
        }
        let other = metrics.request_seconds.with_label_values(&[protocol, OTHER_REQUEST]);
        RequestMetrics { by_kind, other }
    }

    /// Records one request of type `kind` that took `elapsed`.
    pub fn observe(&self, kind: usize, elapsed: Duration) {
        let histogram = self.by_kind.get(kind).and_then(Option::as_ref).unwrap_or(&self.other);
        histogram.observe(elapsed.as_secs_f64());
    }
}
