//! Client quotas (KIP-13, KIP-55, KIP-219, KIP-546): byte rates per user and client id,
//! configured with AlterClientQuotas and read with DescribeClientQuotas (`store`), measured
//! as Kafka measures them (`meter`). A Produce over its `producer_byte_rate` is written and
//! answered at once with `throttle_time_ms`; a Fetch over its `consumer_byte_rate` is
//! answered empty with it (its bytes are not counted); either way the connection reads no
//! further request until the throttle time has passed, as Kafka mutes the channel, so a
//! client that ignores the field is slowed down all the same. A Fetch never asks for more
//! than the quota allows over the window, so a quota below a consumer's fetch size still
//! lets it progress. `request_percentage` (`request_time`) throttles the same way the share of
//! handler time a client uses. `controller_mutation_rate` is stored and described, not
//! enforced.

pub mod meter;
pub mod request_time;
pub mod store;
pub mod throttle_field;

use meter::Meters;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Entity, QuotaStore, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};

pub struct Quotas {
    pub store: QuotaStore,
    produce: Meters<Entity>,
    fetch: Meters<Entity>,
    /// Percent-seconds of request-handler time.
    request_time: Meters<Entity>,
}

impl Quotas {
    pub fn open(data_dir: &Path) -> Result<Quotas, String> {
        Ok(Quotas::with_store(QuotaStore::open(data_dir)?))
    }

    pub fn in_memory() -> Quotas {
        Quotas::with_store(QuotaStore::in_memory())
    }

    fn with_store(store: QuotaStore) -> Quotas {
        Quotas { store, produce: Meters::default(), fetch: Meters::default(), request_time: Meters::default() }
    }

    /// Records a Produce request of `bytes` from `user` with `client_id`; the throttle time
    /// it earns (zero without a quota).
    pub fn charge_produce(&self, user: &str, client_id: &str, bytes: usize) -> Duration {
        if self.store.is_empty() {
            return Duration::ZERO;
        }
        match self.store.resolve(PRODUCER_BYTE_RATE, user, client_id) {
            Some((quota, meter)) => self.produce.record(&meter, bytes as u64, quota, Instant::now()),
            None => Duration::ZERO,
        }
    }

    /// The fetch quota of `user` with `client_id`, if one applies.
    pub fn fetch_charge(self: &Arc<Self>, user: &str, client_id: &str) -> Option<FetchCharge> {
        if self.store.is_empty() {
            return None;
        }
        let (quota, meter) = self.store.resolve(CONSUMER_BYTE_RATE, user, client_id)?;
        Some(FetchCharge { quotas: Arc::clone(self), meter, quota })
    }
}

/// One Fetch's account with its consumer's quota.
pub struct FetchCharge {
    quotas: Arc<Quotas>,
    meter: Entity,
    quota: f64,
}

impl FetchCharge {
    /// The most bytes the response may carry: what the quota allows over the window less
    /// one sample (Kafka's `getMaxValueInQuotaWindow`), at least 1.
    pub fn max_bytes(&self) -> usize {
        let seconds = (meter::SAMPLE * (meter::SAMPLES - 1)).as_secs_f64();
        ((self.quota * seconds) as usize).max(1)
    }

    /// Records a response of `bytes`; a nonzero throttle time means it must go out empty
    /// (its bytes are taken back, as Kafka does).
    pub fn record(&self, bytes: usize) -> Duration {
        let now = Instant::now();
        let throttle = self.quotas.fetch.record(&self.meter, bytes as u64, self.quota, now);
        if !throttle.is_zero() {
            self.quotas.fetch.unrecord(&self.meter, bytes as u64, now);
        }
        throttle
    }
}

/// When a throttled connection may read its next request (shared by the connection's
/// reader and the tasks answering its requests).
#[derive(Default)]
pub struct Mute {
    until: Mutex<Option<Instant>>,
}

impl Mute {
    /// Keeps the connection from reading for `throttle` from now (never shortens it).
    pub fn extend(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let end = Instant::now() + throttle;
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    /// Waits until the connection may read again.
    pub async fn wait(&self) {
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// A throttle time as the responses' `throttle_time_ms` field carries it.
pub fn millis(throttle: Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}
