//! Prometheus metrics, protocol-agnostic. Two kinds:
//!
//! - recorded as they happen, on hot paths, with atomics only: request latency per
//!   protocol and request type (`RequestMetrics`, resolved once per listener), partition
//!   traffic (`Partition::traffic`), fsync latency (`sluice_log::stats`);
//! - read at scrape time from state the broker keeps anyway: offsets, sizes, lag, channel
//!   counts, connections, the process (`state`, `process`), the Raft groups of a cluster
//!   node (`raft`).
//!
//! `render` writes both in the classic Prometheus text format (`promtool check metrics`
//! clean). Every name is listed in `docs/metrics.md`.

mod families;
mod process;
mod raft;
mod requests;
mod state;

pub use prometheus::IntGauge;
pub use requests::{RequestKinds, RequestMetrics, OTHER_REQUEST, REQUEST_BUCKETS_SECONDS};

use crate::channel::Channels;
use prometheus::{Encoder, HistogramOpts, HistogramVec, Registry, TextEncoder};

/// The `Content-Type` of `render`'s output (text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Metrics recorded as things happen; one per broker.
pub struct Metrics {
    registry: Registry,
    /// `sluice_request_duration_seconds{protocol, request}`.
    request_seconds: HistogramVec,
    /// Seconds since the epoch when the broker opened (`process_start_time_seconds`).
    started_at_seconds: f64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sluice_request_duration_seconds",
                "Time from reading a request to writing its response, per protocol and request type \
                 (Kafka API, NSQ command); its _count is the number of requests.",
            )
            .buckets(REQUEST_BUCKETS_SECONDS.to_vec()),
            &["protocol", "request"],
        )
        .expect("a constant, valid histogram definition");
        registry.register(Box::new(request_seconds.clone())).expect("registered once, into a fresh registry");
        let started_at_seconds =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Metrics { registry, request_seconds, started_at_seconds }
    }

    /// A gauge its owner keeps up to date (MQTT's sessions, subscriptions, retained
    /// messages). A name registered before (a second listener in one process) gets a gauge
    /// that is not rendered rather than an error.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> IntGauge {
        let gauge = IntGauge::new(name, help).expect("a constant, valid gauge definition");
        if self.registry.register(Box::new(gauge.clone())).is_err() {
            tracing::warn!(name, "metric registered twice; the second is not rendered");
        }
        gauge
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self, channels: &Channels) -> Result<String, String> {
        let mut families = self.registry.gather();
        state::collect(channels, &mut families);
        raft::collect(channels.broker(), &mut families);
        process::collect(self.started_at_seconds, &mut families);
        let mut text = Vec::with_capacity(64 * 1024);
        TextEncoder::new().encode(&families, &mut text).map_err(|e| format!("encoding metrics: {e}"))?;
        String::from_utf8(text).map_err(|e| format!("encoding metrics: {e}"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
