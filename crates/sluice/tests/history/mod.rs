//! A history of what producers and consumers saw, and a checker in the spirit of Jepsen's Kafka
//! workload reading it: lost acknowledged writes, offsets holding two values, values stored
//! twice (an error for idempotent producers), consumers reading backwards, values nobody sent.
//!
//! Pure: no client or broker here, so the checker's own tests (`tests/history_checker.rs`) run
//! on synthetic histories. Workers append to a shared `Recorder`; the test then calls `check`.
// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports)]

mod check;
mod report;

pub use check::{check, CheckOptions};
pub use report::{Duplicate, Examples, Inconsistent, Lost, Misplaced, NonMonotonic, Report, Unexpected};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The consumer name of the final full read of every partition: the read a lost write is
/// judged against (a value acknowledged and absent from it is lost).
pub const FINAL_READ: &str = "final-read";

/// One event of the history. Values are unique per send: a value names one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A producer hands `value` to its client (`partition` if it chose one explicitly).
    /// `idempotent`: the producer promises exactly one copy, so a duplicate is an error.
    Send { value: String, partition: Option<i32>, idempotent: bool },
    /// The broker acknowledged `value` at `partition`/`offset`.
    SendOk { value: String, partition: i32, offset: i64 },
    /// The send definitely did not happen (refused before it left the client).
    SendFail { value: String },
    /// The send's outcome is unknown (timeout, connection lost, an error after it left).
    SendUnknown { value: String },
    /// `consumer` read `value` at `partition`/`offset`.
    Poll { consumer: String, partition: i32, offset: i64, value: String },
    /// `consumer`'s position on `partition` was reset (seek, rebalance, reassignment): its next
    /// read there may go backwards.
    Reset { consumer: String, partition: i32 },
}

/// One recorded event with when it happened (since the recorder was made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub at: Duration,
    pub op: Op,
}

/// The shared, append-only history of a run; clone it into each worker thread.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    entries: Arc<Mutex<Vec<Stamped>>>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder { started: Instant::now(), entries: Arc::default() }
    }

    /// When the recorder was made: `Stamped::at` counts from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn record(&self, op: Op) {
        let mut entries = self.lock();
        // Stamped under the lock, so stamps follow the order of the history.
        let at = self.started.elapsed();
        entries.push(Stamped { at, op });
    }

    pub fn send(&self, value: &str, partition: Option<i32>, idempotent: bool) {
        self.record(Op::Send { value: value.into(), partition, idempotent });
    }

    pub fn send_ok(&self, value: &str, partition: i32, offset: i64) {
        self.record(Op::SendOk { value: value.into(), partition, offset });
    }

    pub fn send_fail(&self, value: &str) {
        self.record(Op::SendFail { value: value.into() });
    }

    pub fn send_unknown(&self, value: &str) {
        self.record(Op::SendUnknown { value: value.into() });
    }

    pub fn poll(&self, consumer: &str, partition: i32, offset: i64, value: &str) {
        self.record(Op::Poll { consumer: consumer.into(), partition, offset, value: value.into() });
    }

    pub fn reset(&self, consumer: &str, partition: i32) {
        self.record(Op::Reset { consumer: consumer.into(), partition });
    }

    /// Every event so far, in the order recorded.
    pub fn stamped(&self) -> Vec<Stamped> {
        self.lock().clone()
    }

    /// Every event so far without times, ready for `check`.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().iter().map(|s| s.op.clone()).collect()
    }

    /// Sends acknowledged so far (with or without an offset).
    pub fn acknowledged(&self) -> usize {
        self.lock().iter().filter(|s| matches!(s.op, Op::SendOk { .. })).count()
    }

    /// When (since the recorder started) the first send made at or after `since` was
    /// acknowledged on `partition`: how long a failover at `since` kept producers waiting.
    pub fn first_ack_after(&self, partition: i32, since: Duration) -> Option<Duration> {
        let entries = self.lock();
        let mut sent_after = std::collections::HashSet::new();
        for s in entries.iter() {
            match &s.op {
                Op::Send { value, .. } if s.at >= since => {
                    sent_after.insert(value.as_str());
                }
                Op::SendOk { value, partition: p, .. } if *p == partition && sent_after.contains(value.as_str()) => {
                    return Some(s.at);
                }
                _ => {}
            }
        }
        None
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stamped>> {
        // A worker that panicked mid-push leaves a whole Vec; the history stays usable.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
