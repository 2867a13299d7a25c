//! Group commit: callers that need their records durable share fsyncs. One caller at a
//! time syncs (without the append lock); callers arriving meanwhile wait for it and then
//! either find their offset covered or become the next syncer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

pub struct GroupCommit {
    state: Mutex<CommitState>,
    /// Signalled whenever a sync finishes, successfully or not.
    synced: Condvar,
    /// Set by the first failed fsync and never cleared: the page cache may have dropped
    /// the dirty pages, so a retried fsync could claim durability for lost data.
    poisoned: AtomicBool,
}

struct CommitState {
    /// Every record below this offset is on stable storage.
    durable: i64,
    /// A caller is syncing right now.
    syncing: bool,
}

/// What a caller of `wait_or_lead` must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// The offset is durable already.
    Done,
    /// This caller syncs and then reports with `finish`.
    Lead,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Poisoned;

impl GroupCommit {
    pub fn new(durable: i64) -> Self {
        GroupCommit {
            state: Mutex::new(CommitState { durable, syncing: false }),
            synced: Condvar::new(),
            poisoned: AtomicBool::new(false),
        }
    }

    pub fn durable(&self) -> i64 {
        self.lock().durable
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// Waits until every record below `offset` is durable (`Done`) or no sync is running
    /// and this caller must run one (`Lead`). `None` always leads, once no sync runs.
    pub fn wait_or_lead(&self, offset: Option<i64>) -> Result<Turn, Poisoned> {
        let mut state = self.lock();
        loop {
            // Durable records stay durable after a later failure, so a covered offset is
            // answered before poisoning is.
            if offset.is_some_and(|o| state.durable >= o) {
                return Ok(Turn::Done);
            }
            if self.is_poisoned() {
                return Err(Poisoned);
            }
            if !state.syncing {
                state.syncing = true;
                return Ok(Turn::Lead);
            }
            state = self.synced.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends the leader's sync: `Some(end)` if everything below `end` is now durable,
    /// `None` if the sync failed (the caller has poisoned the log).
    pub fn finish(&self, durable: Option<i64>) {
        let mut state = self.lock();
        state.syncing = false;
        if let Some(end) = durable {
            state.durable = state.durable.max(end);
        }
        drop(state);
        self.synced.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first caller leads, a covered offset is done at once (even after poisoning), and
    /// poison stops everyone else.
    #[test]
    fn lead_done_poisoned() {
        let commit = GroupCommit::new(5);
        assert_eq!(commit.wait_or_lead(Some(5)), Ok(Turn::Done));
        assert_eq!(commit.wait_or_lead(Some(9)), Ok(Turn::Lead));
        commit.finish(Some(9));
        assert_eq!(commit.durable(), 9);
        assert_eq!(commit.wait_or_lead(Some(9)), Ok(Turn::Done));
        commit.poison();
        assert_eq!(commit.wait_or_lead(Some(9)), Ok(Turn::Done));
        assert_eq!(commit.wait_or_lead(Some(10)), Err(Poisoned));
        assert_eq!(commit.wait_or_lead(None), Err(Poisoned));
    }
}
