//! The one place the log fsyncs, so fsyncs can be counted and failures injected in tests.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::stats;

#[derive(Debug, Default)]
pub struct Disk {
    /// fdatasync/fsync calls made, for tests and metrics (group commit should keep it low).
    fsyncs: AtomicU64,
    /// Test seam: the next sync fails as a real failed fsync would.
    fail_next_sync: AtomicBool,
    /// Test seam: the next log write stops half way and fails, as on a full disk.
    fail_next_write: AtomicBool,
    /// Test seam: while closed, syncs wait at it (to prove no lock is held across one).
    #[cfg(any(test, feature = "test-seams"))]
    gate: gate::Gate,
}

impl Disk {
    pub fn sync_data(&self, file: &File) -> io::Result<()> {
        #[cfg(any(test, feature = "test-seams"))]
        self.gate.pass();
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        if self.fail_next_sync.swap(false, Ordering::Relaxed) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let started = Instant::now();
        let result = file.sync_data();
        stats::record_fsync(started.elapsed());
        result
    }

    /// Makes a new directory entry durable (a created segment file).
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let handle = File::open(dir)?;
        #[cfg(any(test, feature = "test-seams"))]
        self.gate.pass();
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        if self.fail_next_sync.swap(false, Ordering::Relaxed) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let started = Instant::now();
        let result = handle.sync_all();
        stats::record_fsync(started.elapsed());
        result
    }

    /// Writes all of `bytes` at `at`, possibly in several system calls.
    pub fn write_at(&self, file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
        if self.fail_next_write.swap(false, Ordering::Relaxed) {
            file.write_all_at(&bytes[..bytes.len() / 2], at)?;
            return Err(io::Error::other("injected write failure"));
        }
        file.write_all_at(bytes, at)
    }

    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn fail_next_sync(&self) {
        self.fail_next_sync.store(true, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn fail_next_write(&self) {
        self.fail_next_write.store(true, Ordering::Relaxed);
    }

    #[cfg(any(test, feature = "test-seams"))]
    pub fn gate(&self) -> &gate::Gate {
        &self.gate
    }
}

#[cfg(any(test, feature = "test-seams"))]
pub mod gate {
    use std::sync::{Condvar, Mutex};

    /// Holds syncs back while closed and counts the ones waiting.
    #[derive(Debug, Default)]
    pub struct Gate {
        state: Mutex<GateState>,
        changed: Condvar,
    }

    #[derive(Debug, Default)]
    struct GateState {
        closed: bool,
        waiting: usize,
    }

    impl Gate {
        pub fn close(&self) {
            self.state.lock().unwrap().closed = true;
        }

        pub fn open(&self) {
            self.state.lock().unwrap().closed = false;
            self.changed.notify_all();
        }

        /// Syncs currently held at the gate.
        pub fn waiting(&self) -> usize {
            self.state.lock().unwrap().waiting
        }

        pub(super) fn pass(&self) {
            let mut state = self.state.lock().unwrap();
            state.waiting += 1;
            while state.closed {
                state = self.changed.wait(state).unwrap();
            }
            state.waiting -= 1;
        }
    }
}
