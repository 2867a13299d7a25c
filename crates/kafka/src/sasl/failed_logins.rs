//! Failed logins, counted per source address: past `FAILURES_MAX` failures within `WINDOW`
//! an address's further attempts fail without a password check until the window ends, so a
//! password cannot be guessed at network speed. Every failure is also answered only after
//! `FAILED_AUTHENTICATION_DELAY` (Kafka's `connection.failed.authentication.delay.ms`),
//! which slows a client that reconnects at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one address may have within `WINDOW` before it is refused outright.
pub const FAILURES_MAX: u32 = 10;
/// How long failures count against an address.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Kafka's `connection.failed.authentication.delay.ms` default.
pub const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);
/// Addresses tracked at once; when full, expired entries are dropped first and, failing
/// that, the oldest window, so a flood of sources cannot grow the map without bound.
const ADDRESSES_MAX: usize = 10_000;

#[derive(Default)]
pub struct FailedLogins {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl FailedLogins {
    /// Whether `address` has used up its failures for now.
    pub fn is_blocked(&self, address: IpAddr) -> bool {
        let now = Instant::now();
        let map = self.lock();
        map.get(&address).is_some_and(|f| now.duration_since(f.since) < WINDOW && f.count >= FAILURES_MAX)
    }

    pub fn record_failure(&self, address: IpAddr) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= ADDRESSES_MAX && !map.contains_key(&address) {
            map.retain(|_, f| now.duration_since(f.since) < WINDOW);
            if map.len() >= ADDRESSES_MAX {
                if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.since).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(address).or_insert(Failures { count: 0, since: now });
        if now.duration_since(entry.since) >= WINDOW {
            *entry = Failures { count: 0, since: now };
        }
        entry.count = entry.count.saturating_add(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.by_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let logins = FailedLogins::default();
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
        for _ in 0..FAILURES_MAX {
            assert!(!logins.is_blocked(a));
            logins.record_failure(a);
        }
        assert!(logins.is_blocked(a));
        assert!(!logins.is_blocked(b));
    }
}
