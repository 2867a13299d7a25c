//! Kafka's `acks=1` on a replicated partition: the leader answers once its own log holds the
//! batches, before a majority has them. The proposer registers a waiter and tags the
//! proposal's first batch with it: its `base_offset`, which the producer sends as 0 and the
//! leader's append overwrites with the real offset, carries a negative tag (no real offset is
//! negative). The log store's append reads the tag before it writes the batch and, once the
//! entry is in the log, hands the waiter the offsets it took.
//!
//! The tag is only ever seen by the leader's own append: followers are sent entries read back
//! from the leader's segments, which hold the assigned offsets. A proposal that never reaches
//! the log (refused by a node that no longer leads) is forgotten when its `Registration` is
//! dropped, which its commit future does when it resolves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_log::batch;
use sluice_log::BatchHeader;
use tokio::sync::oneshot;

/// Offsets (first, last, both inclusive) an appended proposal took.
pub type Offsets = (i64, i64);

/// One group's proposals waiting for the leader's append. Bounded by the proposals in flight:
/// each is removed when appended or when its registration is dropped.
#[derive(Default)]
pub struct WrittenWaiters {
    /// Tags handed out so far; tag n is written as base offset `-1 - n`.
    issued: AtomicI64,
    waiting: Mutex<HashMap<i64, oneshot::Sender<Offsets>>>,
}

/// A proposal's claim on its append: resolves with the offsets once the leader's log holds
/// it. Dropping it forgets the waiter.
pub struct Registration {
    pub written: oneshot::Receiver<Offsets>,
    pub forget: Forget,
}

/// Removes a waiter from its group when dropped (a no-op once it was answered).
pub struct Forget {
    waiters: Arc<WrittenWaiters>,
    tag: i64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.tag);
    }
}

impl WrittenWaiters {
    /// Tags the first batch of `batches` (whole v2 batches about to be proposed) and registers
    /// its waiter; None when `batches` does not start with a batch header.
    pub fn register(self: &Arc<Self>, batches: &mut [u8]) -> Option<Registration> {
        BatchHeader::parse(batches).ok()?;
        let tag = -1 - self.issued.fetch_add(1, Ordering::Relaxed);
        batch::set_base_offset(batches, tag);
        let (tx, written) = oneshot::channel();
        self.lock().insert(tag, tx);
        Some(Registration { written, forget: Forget { waiters: Arc::clone(self), tag } })
    }

    /// The tag a proposal's first batch carries, if `base_offset` is one.
    pub(crate) fn tag_of(base_offset: i64) -> Option<i64> {
        (base_offset < 0).then_some(base_offset)
    }

    /// The proposal tagged `tag` is in the log at `offsets`: its waiter is answered.
    pub(crate) fn written(&self, tag: i64, offsets: Offsets) {
        if let Some(waiter) = self.lock().remove(&tag) {
            let _ = waiter.send(offsets);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, oneshot::Sender<Offsets>>> {
        // A map insert or remove leaves it whole even if a panic interrupted the holder.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().len()
    }
}
