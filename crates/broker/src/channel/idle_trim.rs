//! Giving memory back to the system once NSQ traffic stops.
//!
//! Delivering messages allocates and frees millions of small blocks (bodies, frames, read
//! buffers) on the runtime's worker threads and on the blocking pool's threads. glibc's
//! malloc keeps what is freed in per-thread arenas for reuse and returns to the system only
//! the free space at the top of the main heap: after a busy period most of the freed memory
//! stays resident, scattered between the few blocks still live (BENCHMARKS.md, "NSQ memory
//! after consuming"). `malloc_trim(0)` releases the free pages of every arena. It walks every
//! arena under its lock, so it runs only when the channels have been quiet for a moment after
//! activity, off the runtime, and at most once per quiet period.

use std::time::{Duration, Instant};

/// Quiet this long (no message published, delivered or finished) before the trim.
pub const QUIET_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// Decides when the sweeper trims: once per quiet period that follows activity.
#[derive(Debug, Default)]
pub struct IdleTrim {
    /// The activity count at the last observation.
    seen: u64,
    /// When the count last moved, while no trim has followed yet.
    active_at: Option<Instant>,
}

impl IdleTrim {
    /// Observes the channels' activity count (any counter that moves with traffic); true
    /// when the allocator should be trimmed now.
    pub fn observe(&mut self, activity: u64, now: Instant) -> bool {
        if activity != self.seen {
            self.seen = activity;
            self.active_at = Some(now);
            return false;
        }
        match self.active_at {
            Some(at) if now.saturating_duration_since(at) >= QUIET_BEFORE_TRIM => {
                self.active_at = None;
                true
            }
            _ => false,
        }
    }
}

/// Arenas glibc's malloc may create. Its default, eight per core, gave 12 arenas on a 2-core
/// machine after an NSQ soak, each keeping up to a few MB free at the top of its heap (its
/// trim threshold, raised by the 1 MiB read buffers) that `malloc_trim` does not release for
/// arenas other than the main one. Two arenas measured no slower (BENCHMARKS.md).
pub const ALLOCATOR_ARENAS_MAX: i32 = 2;

/// Limits glibc's arenas to `ALLOCATOR_ARENAS_MAX`, unless the operator set `MALLOC_ARENA_MAX`
/// (glibc's own setting wins). Call first thing in `main`: glibc reads the limit once, when
/// a thread other than the main one first allocates, and ignores later changes.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc parameter; M_ARENA_MAX applies to arenas
        // created from now on.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ALLOCATOR_ARENAS_MAX);
        }
    }
}

/// Returns the memory glibc's malloc holds free to the system (blocking: milliseconds on a
/// large heap).
pub fn trim_allocator() {
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_per_quiet_period_after_activity() {
        let t0 = Instant::now();
        let mut trim = IdleTrim::default();
        // Nothing happened yet: a broker that never served traffic never trims.
        assert!(!trim.observe(0, t0 + QUIET_BEFORE_TRIM * 5));
        // Busy: the count moves at every observation.
        assert!(!trim.observe(10, t0));
        assert!(!trim.observe(20, t0 + QUIET_BEFORE_TRIM * 2));
        // Quiet, but not for long enough yet.
        assert!(!trim.observe(20, t0 + QUIET_BEFORE_TRIM * 2 + QUIET_BEFORE_TRIM / 2));
        // Quiet long enough: trim once, then not again while it stays quiet.
        assert!(trim.observe(20, t0 + QUIET_BEFORE_TRIM * 3));
        assert!(!trim.observe(20, t0 + QUIET_BEFORE_TRIM * 4));
        assert!(!trim.observe(20, t0 + QUIET_BEFORE_TRIM * 10));
        // Activity again, then quiet: one more trim.
        assert!(!trim.observe(21, t0 + QUIET_BEFORE_TRIM * 11));
        assert!(trim.observe(21, t0 + QUIET_BEFORE_TRIM * 12));
    }
}
