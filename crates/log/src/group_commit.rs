//! The durability watermark: "every record below offset N is on stable storage",
//! published on a `tokio::sync::watch` so acknowledgements can `await` it, plus the
//! flush requests that move it.
//!
//! At most one flusher runs per log. It runs rounds (note the log end, fsync everything
//! written so far without the append lock, publish the end) for as long as requests are
//! outstanding. A request made during a round is covered by the next round, so
//! concurrent producers share fsyncs (group commit). A failed fsync poisons the
//! watermark for good: it never moves again and later appends fail.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use tokio::sync::watch;

/// What the watermark says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    /// Every record below this offset is on stable storage.
    pub offset: i64,
    /// An fsync failed; `offset` never moves again and the log refuses writes until reopened.
    /// A failed fsync is never retried: the page cache may have dropped the dirty pages, so
    /// a retry could claim durability for lost data.
    pub poisoned: bool,
}

impl Durable {
    /// Whether a waiter for `offset` is done: covered, or never to be covered.
    pub fn settles(&self, offset: i64) -> bool {
        self.offset >= offset || self.poisoned
    }
}

/// What a caller of `Watermark::request` must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The offset is durable already.
    Covered,
    /// The log is poisoned and the offset is not durable: it never will be.
    Poisoned,
    /// A flusher is running and will cover the offset; wait for the watermark.
    Queued,
    /// No flusher runs: the caller must run one (`PartitionLog::run_flusher`), on a thread
    /// that may block, and then wait for the watermark.
    Lead,
}

pub struct Watermark {
    published: watch::Sender<Durable>,
    requests: Mutex<Requests>,
    /// Signalled when the watermark moves or a flusher stops, for blocking waiters.
    moved: Condvar,
    /// Told of every move (the broker's visible end follows it under `always`).
    listener: OnceLock<Listener>,
}

pub type Listener = Box<dyn Fn(Durable) + Send + Sync>;

struct Requests {
    /// Highest offset asked to be durable.
    wanted: i64,
    /// Someone asked for the active segment's indexes to be synced too (`flush`).
    indexes: bool,
    /// A flusher is running rounds.
    running: bool,
    /// Bumped by every truncation: a round that noted the log end before it must not
    /// publish that end, which may now count records that are gone (or rewritten).
    generation: u64,
}

impl Watermark {
    pub fn new(durable: i64) -> Self {
        let (published, _) = watch::channel(Durable { offset: durable, poisoned: false });
        Watermark {
            published,
            requests: Mutex::new(Requests { wanted: durable, indexes: false, running: false, generation: 0 }),
            moved: Condvar::new(),
            listener: OnceLock::new(),
        }
    }

    pub fn current(&self) -> Durable {
        *self.published.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Durable> {
        self.published.subscribe()
    }

    pub fn is_poisoned(&self) -> bool {
        self.current().poisoned
    }

    /// Asks for every record below `offset` to be durable (and, with `indexes`, the active
    /// segment's indexes synced). Durable records stay durable after a later failure, so a
    /// covered offset is answered before poisoning is.
    pub fn request(&self, offset: i64, indexes: bool) -> Request {
        let mut requests = self.lock();
        let durable = self.current();
        if durable.offset >= offset && !indexes {
            return Request::Covered;
        }
        if durable.poisoned {
            return Request::Poisoned;
        }
        requests.wanted = requests.wanted.max(offset);
        requests.indexes |= indexes;
        if requests.running {
            return Request::Queued;
        }
        requests.running = true;
        Request::Lead
    }

    /// Called by the flusher before each round: `Some(indexes)` if work is outstanding,
    /// `None` once there is none (or the log is poisoned), which ends the flusher.
    pub fn next_round(&self) -> Option<bool> {
        let mut requests = self.lock();
        let durable = self.current();
        if durable.poisoned || (requests.wanted <= durable.offset && !requests.indexes) {
            requests.running = false;
            drop(requests);
            self.moved.notify_all();
            return None;
        }
        Some(std::mem::take(&mut requests.indexes))
    }

    /// A round made everything below `end` durable.
    #[cfg(test)]
    pub fn publish(&self, end: i64) {
        let generation = self.generation();
        self.publish_round(end, generation);
    }

    /// The truncation generation, noted with a round's end (under the partition lock).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A round that noted the log end at `generation` made everything below `end`
    /// durable; ignored if the log was truncated since (the next round covers what is left).
    pub fn publish_round(&self, end: i64, generation: u64) {
        let moved = {
            let requests = self.lock();
            requests.generation == generation
                && self.published.send_if_modified(|d| {
                    let moved = end > d.offset;
                    d.offset = d.offset.max(end);
                    moved
                })
        };
        self.notify();
        if let (true, Some(listener)) = (moved, self.listener.get()) {
            listener(self.current());
        }
    }

    /// The log was cut back to end at `end` (or reset to start there): the watermark must not
    /// stay above it, a round in flight must not publish, and no request may outlive it.
    /// `durable_at` is the new watermark: `end` after a reset (nothing lies below it), the
    /// lower of the old one and `end` after a truncation.
    pub fn truncate(&self, end: i64, durable_at: impl FnOnce(i64) -> i64) {
        let moved = {
            let mut requests = self.lock();
            requests.generation += 1;
            requests.wanted = requests.wanted.min(end);
            self.published.send_if_modified(|d| {
                let offset = durable_at(d.offset);
                std::mem::replace(&mut d.offset, offset) != offset
            })
        };
        self.notify();
        if let (true, Some(listener)) = (moved, self.listener.get()) {
            listener(self.current());
        }
    }

    /// Requests above the log end are for records a truncation dropped: forgotten, so the
    /// flusher does not run rounds for them forever. Called under the partition lock.
    pub fn forget_beyond(&self, log_end: i64) {
        let mut requests = self.lock();
        requests.wanted = requests.wanted.min(log_end);
    }

    pub fn set_listener(&self, listener: Listener) {
        let _ = self.listener.set(listener);
    }

    pub fn poison(&self) {
        self.published.send_if_modified(|d| !std::mem::replace(&mut d.poisoned, true));
        self.notify();
    }

    /// Blocks until the watermark settles `offset` or no flusher is running.
    pub fn wait_blocking(&self, offset: i64) -> Durable {
        let mut requests = self.lock();
        loop {
            let durable = self.current();
            if durable.settles(offset) || !requests.running {
                return durable;
            }
            requests = self.moved.wait(requests).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Wakes blocking waiters. Taking the lock orders this after a waiter's check, so a
    /// waiter that saw the old value is already waiting and gets the signal.
    fn notify(&self) {
        let _requests = self.lock();
        self.moved.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first request leads, later ones queue behind it, a covered offset is done at once
    /// (even after poisoning), and poison settles every other waiter.
    #[test]
    fn lead_queue_cover_poison() {
        let mark = Watermark::new(5);
        assert_eq!(mark.request(5, false), Request::Covered);
        assert_eq!(mark.request(9, false), Request::Lead);
        assert_eq!(mark.request(12, false), Request::Queued);
        assert_eq!(mark.next_round(), Some(false));
        mark.publish(9);
        assert_eq!(mark.current().offset, 9);
        // 12 was asked for during the round: the flusher must run another.
        assert_eq!(mark.next_round(), Some(false));
        mark.publish(12);
        assert_eq!(mark.next_round(), None);
        assert_eq!(mark.request(12, false), Request::Covered);
        assert_eq!(mark.request(13, false), Request::Lead);
        mark.poison();
        assert_eq!(mark.next_round(), None);
        assert_eq!(mark.request(12, false), Request::Covered);
        assert_eq!(mark.request(13, false), Request::Poisoned);
        assert_eq!(mark.current(), Durable { offset: 12, poisoned: true });
    }

    /// Async waiters on the watch are woken by a publish that covers them, and not by one
    /// that does not; poison wakes the rest.
    #[test]
    fn async_waiters_woken() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mark = std::sync::Arc::new(Watermark::new(0));
        let mut near = mark.subscribe();
        let mut far = mark.subscribe();
        runtime.block_on(async {
            let near = tokio::spawn(async move { *near.wait_for(|d| d.settles(3)).await.unwrap() });
            let far = tokio::spawn(async move { *far.wait_for(|d| d.settles(10)).await.unwrap() });
            tokio::task::yield_now().await;
            mark.publish(5);
            assert_eq!(near.await.unwrap(), Durable { offset: 5, poisoned: false });
            assert!(!far.is_finished());
            mark.poison();
            assert_eq!(far.await.unwrap(), Durable { offset: 5, poisoned: true });
        });
    }

    /// A blocking waiter returns once a publish covers it.
    #[test]
    fn blocking_waiter_woken() {
        let mark = std::sync::Arc::new(Watermark::new(0));
        assert_eq!(mark.request(4, false), Request::Lead);
        let waiter = {
            let mark = std::sync::Arc::clone(&mark);
            std::thread::spawn(move || mark.wait_blocking(4))
        };
        assert_eq!(mark.next_round(), Some(false));
        mark.publish(4);
        assert_eq!(waiter.join().unwrap().offset, 4);
        assert_eq!(mark.next_round(), None);
    }
}
