//! Request-time quotas (KIP-124, Kafka's `request_percentage`): the share of one
//! request-handler thread a user or client id may use, as a percentage over the quota window.
//! Kafka charges each request the time a handler thread spent on it (not the time it waited
//! in purgatory for a long poll or for replication); here that is the time the connection's
//! task spent in `dispatch` (decode, handling, encoding a ready answer) plus the time a
//! handler's own task spent being polled (`Busy`), so a Fetch long-poll, an acks=all fsync
//! wait or a JoinGroup waiting for its rebalance is not charged for its waiting. Over the
//! quota, the answer carries `throttle_time_ms` (the larger of this and a byte-rate
//! throttle, as Kafka's) and the connection reads nothing more for that long.

use super::meter;
use super::store::{Entity, REQUEST_PERCENTAGE};
use super::throttle_field::raise;
use super::{millis, Mute, Quotas};
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Kafka's `ClientRequestQuotaManager`: a request-time throttle is at most one sample
/// (`quota.window.size.seconds`), shorter than a byte-rate one, since one slow request can
/// exceed a small quota on its own.
pub const THROTTLE_MAX: Duration = meter::SAMPLE;

/// One connection's account with its request-time quota, taken when a request is read.
pub struct RequestCharge {
    quotas: Arc<Quotas>,
    meter: Entity,
    quota: f64,
    mute: Arc<Mute>,
}

impl Quotas {
    /// The request-time quota of `user` with `client_id`, if one applies.
    pub fn request_charge(self: &Arc<Self>, user: &str, client_id: &str, mute: &Arc<Mute>) -> Option<RequestCharge> {
        if self.store.is_empty() {
            return None;
        }
        let (quota, meter) = self.store.resolve(REQUEST_PERCENTAGE, user, client_id)?;
        Some(RequestCharge { quotas: Arc::clone(self), meter, quota, mute: Arc::clone(mute) })
    }
}

impl RequestCharge {
    /// Records `busy` handler time; the throttle it earns mutes the connection and is
    /// returned for the answer.
    pub fn record(&self, busy: Duration) -> Duration {
        let throttle =
            self.quotas.request_time.record_amount(&self.meter, percent_seconds(busy), self.quota, Instant::now());
        let throttle = throttle.min(THROTTLE_MAX);
        self.mute.extend(throttle);
        throttle
    }
}

/// One request's handler time, charged once its answer is ready (`settle`).
pub struct Pending {
    charge: RequestCharge,
    api: ApiKey,
    version: i16,
    /// Time spent in `dispatch` on the connection's task.
    handled: Duration,
    /// Time the handler's own task was polled, if it has one.
    busy: Option<Arc<Busy>>,
}

impl Pending {
    /// For a request of `api` v`version` dispatched in `handled`: None without a request-time
    /// quota for the connection, or for SASL authentication (Kafka authenticates before its
    /// request handlers, outside any quota).
    pub fn start(
        charge: Option<RequestCharge>,
        request: Option<(ApiKey, i16)>,
        handled: Duration,
        busy: Option<Arc<Busy>>,
    ) -> Option<Pending> {
        let (api, version) = request?;
        if matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
            return None;
        }
        Some(Pending { charge: charge?, api, version, handled, busy })
    }

    /// Records the request's handler time; over the quota, the connection is muted and the
    /// answer's `throttle_time_ms` raised to the throttle.
    pub fn settle(self, frame: Option<Bytes>) -> Option<Bytes> {
        let busy = self.handled + self.busy.map_or(Duration::ZERO, |busy| busy.get());
        let throttle = self.charge.record(busy);
        match frame {
            Some(frame) if !throttle.is_zero() => Some(raise(frame, self.api, self.version, millis(throttle))),
            other => other,
        }
    }
}

/// A request frame's API and version, if it names a known API.
pub fn request_api(frame: &[u8]) -> Option<(ApiKey, i16)> {
    match frame {
        [k1, k2, v1, v2, ..] => {
            let api = ApiKey::try_from(i16::from_be_bytes([*k1, *k2])).ok()?;
            Some((api, i16::from_be_bytes([*v1, *v2])))
        }
        _ => None,
    }
}

/// Kafka's `nanosToPercentage`: a second of handler time is 100 (percent of one thread for a
/// second), so the meter's rate is a percentage.
fn percent_seconds(busy: Duration) -> f64 {
    busy.as_secs_f64() * 100.0
}

/// Time a handler's task spent being polled: its work, not its waiting.
#[derive(Default, Debug)]
pub struct Busy(AtomicU64);

impl Busy {
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// `future`, adding the time each of its polls takes to `busy`.
pub fn timed<F: Future>(future: F, busy: Arc<Busy>) -> Timed<F> {
    Timed { future: Box::pin(future), busy }
}

pub struct Timed<F> {
    future: Pin<Box<F>>,
    busy: Arc<Busy>,
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        let outcome = self.future.as_mut().poll(cx);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.0.fetch_add(nanos, Ordering::Relaxed);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::store::{Change, Name};

    fn quotas_with(client_id: &str, percentage: f64) -> Arc<Quotas> {
        let quotas = Arc::new(Quotas::in_memory());
        let entity = Entity { user: None, client_id: Some(Name::Named(client_id.into())) };
        let change = Change { key: REQUEST_PERCENTAGE.into(), value: percentage, remove: false };
        assert!(quotas.store.alter(vec![(entity, vec![change])], false)[0].is_ok());
        quotas
    }

    #[test]
    fn handler_time_over_the_percentage_is_throttled_at_most_one_sample() {
        let quotas = quotas_with("busy", 1.0);
        let mute = Arc::new(Mute::default());
        assert!(quotas.request_charge("ANONYMOUS", "free", &mute).is_none(), "no quota, no charge");
        let charge = quotas.request_charge("ANONYMOUS", "busy", &mute).expect("busy's quota");
        // 1 % of one thread over a 10 s span is 100 ms of handler time.
        assert_eq!(charge.record(Duration::from_millis(100)), Duration::ZERO);
        // 150 ms is 1.5 %: quiet for (1.5 - 1) / 1 * 10 s, bounded by one sample.
        assert_eq!(charge.record(Duration::from_millis(50)), THROTTLE_MAX);
    }

    #[tokio::test]
    async fn polls_are_counted_waits_are_not() {
        let busy = Arc::new(Busy::default());
        let started = Instant::now();
        let wait = Duration::from_millis(200);
        timed(tokio::time::sleep(wait), Arc::clone(&busy)).await;
        // Had the wait been counted, busy would be the whole elapsed time.
        assert!(busy.get() + wait <= started.elapsed(), "the sleep is not work: {:?}", busy.get());
        timed(async { std::thread::sleep(Duration::from_millis(20)) }, Arc::clone(&busy)).await;
        assert!(busy.get() >= Duration::from_millis(20), "{:?}", busy.get());
    }
}
