//! Whether storage takes writes: set when a partition write or fsync fails (a full disk,
//! an I/O error), cleared by the next successful write or by a probe write, so `/ping` and
//! writes recover by themselves once space is freed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Name of the probe file in the data directory (removed right after each probe).
pub const PROBE_FILE: &str = ".storage-probe";
/// Bytes a probe writes: more than a typical small batch, so a disk that takes the probe
/// is likely to take the next produce too; small enough to cost nothing.
pub const PROBE_BYTES: usize = 64 * 1024;

/// The broker-wide storage write state.
#[derive(Debug, Default)]
pub struct StorageHealth {
    /// A write failed and no write has succeeded since.
    failing: AtomicBool,
    /// Write failures since start (for `/metrics` and tests).
    failures: AtomicU64,
    /// The error of the latest failure, for `/ping` and logs.
    last_error: Mutex<String>,
}

impl StorageHealth {
    /// Records a failed storage write.
    pub fn write_failed(&self, error: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = error.to_string();
        }
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!(error, "storage write failed; writes are refused until storage takes writes again");
        }
    }

    /// Records a successful storage write: clears the failing state.
    pub fn write_succeeded(&self) {
        // A load first: the common, healthy case costs no store to a shared cache line.
        if self.failing.load(Ordering::Acquire) && self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("storage takes writes again");
        }
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// The latest write error while failing, None while healthy.
    pub fn problem(&self) -> Option<String> {
        if !self.is_failing() {
            return None;
        }
        Some(self.last_error.lock().map(|e| e.clone()).unwrap_or_default())
    }

    pub fn failures_total(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Writes, fsyncs and removes a probe file in `data_dir`; a success clears the failing
    /// state. Blocking: call from a blocking task.
    pub fn probe(&self, data_dir: &Path) {
        let path = data_dir.join(PROBE_FILE);
        let written = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut file| file.write_all(&[0u8; PROBE_BYTES]).and_then(|()| file.sync_data()));
        // Removing frees the probe's space whether or not the write got through.
        let _ = std::fs::remove_file(&path);
        match written {
            Ok(()) => self.write_succeeded(),
            Err(e) => tracing::debug!(error = %e, "storage probe failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_then_success_clears_and_probe_clears() {
        let health = StorageHealth::default();
        assert_eq!(health.problem(), None);
        health.write_failed("No space left on device");
        assert_eq!(health.problem().as_deref(), Some("No space left on device"));
        health.write_succeeded();
        assert_eq!(health.problem(), None);
        health.write_failed("again");
        let dir = tempfile::tempdir().expect("tempdir");
        health.probe(dir.path());
        assert!(!health.is_failing());
        assert!(!dir.path().join(PROBE_FILE).exists());
        assert_eq!(health.failures_total(), 2);
    }
}
