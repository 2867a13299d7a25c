//! KIP-134's initial rebalance delay (`group.initial.rebalance.delay.ms`), as Kafka's
//! `InitialDelayedJoin` runs it: the first rebalance of an empty group never completes
//! early; it waits one delay, and when a new member joined during that window (first
//! generation only) another, until a window passes with no newcomer or the first member's
//! rebalance timeout is used up. Consumers started together so get one rebalance instead of
//! the first taking every partition and a second rebalance following at once.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    /// The configured delay: the length of every window but a last, shorter one.
    configured: Duration,
    /// The length of the window now running.
    current: Duration,
    /// What is left of the rebalance timeout for further windows (Kafka's `remainingMs`).
    remaining: Duration,
    /// A new member joined during the current window.
    pub member_joined: bool,
}

impl InitialDelay {
    /// The first window, or None when the delay is off.
    pub fn start(configured: Duration, rebalance_timeout: Duration) -> Option<InitialDelay> {
        if configured.is_zero() {
            return None;
        }
        Some(InitialDelay {
            configured,
            current: configured,
            remaining: rebalance_timeout.saturating_sub(configured),
            member_joined: false,
        })
    }

    pub fn current(&self) -> Duration {
        self.current
    }

    /// The current window ended: the next one if a member joined during it and time is
    /// left, else None (the join phase completes now).
    pub fn next(self) -> Option<InitialDelay> {
        if !self.member_joined || self.remaining.is_zero() {
            return None;
        }
        Some(InitialDelay {
            configured: self.configured,
            current: self.configured.min(self.remaining),
            remaining: self.remaining.saturating_sub(self.current),
            member_joined: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn off_when_zero() {
        assert_eq!(InitialDelay::start(Duration::ZERO, S(300)), None);
    }

    #[test]
    fn a_window_without_newcomers_ends_the_delay() {
        let d = InitialDelay::start(S(3), S(300)).expect("on");
        assert_eq!(d.current(), S(3));
        assert_eq!(d.next(), None);
    }

    // Newcomers extend the delay window by window, never past the rebalance timeout.
    #[test]
    fn newcomers_extend_up_to_the_rebalance_timeout() {
        let mut d = InitialDelay::start(S(3), S(8)).expect("on");
        let mut total = d.current();
        for _ in 0..10 {
            d.member_joined = true;
            match d.next() {
                Some(n) => {
                    total += n.current();
                    d = n;
                }
                None => break,
            }
        }
        assert!(total <= S(8) + S(3), "waited {total:?}");
        assert!(total >= S(8), "stopped early at {total:?}");
    }
}
