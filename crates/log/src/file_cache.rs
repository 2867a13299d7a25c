//! One bounded cache of open segment and index files, shared by every partition of the
//! process (as Kafka's and Redpanda's file-handle caches): a partition holds no file
//! descriptor while idle, so the number of partitions is not bounded by `RLIMIT_NOFILE`.
//!
//! A `CachedFile` names a file; `get` hands out an `Arc<File>`, opening the file again if
//! the cache closed it. Eviction drops only the cache's own reference: a reader or syncer
//! that holds the `Arc` keeps a working descriptor (also across an unlink by retention)
//! until it is done. The cache lock is held for map updates only — never across an open,
//! a close, a read or an fsync.
//!
//! A reopened descriptor still reports an earlier writeback error: Linux (since 4.16)
//! reports an error no descriptor has seen yet to the next opener too, so an fsync after an
//! eviction cannot miss a failed write-back.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Open files kept when nobody sets a limit: well under the common soft limit of 1024,
/// leaving room for sockets and state files.
pub const OPEN_FILES_MAX_DEFAULT: usize = 512;
/// Fewer than this would reopen the active segment's three files on every append.
pub const OPEN_FILES_MAX_MIN: usize = 16;

/// Sets how many files the process-wide cache keeps open (at least `OPEN_FILES_MAX_MIN`).
/// Takes effect at the next open.
pub fn set_open_files_max(max: usize) {
    cache().capacity.store(max.max(OPEN_FILES_MAX_MIN), Ordering::Relaxed);
}

pub fn open_files_max() -> usize {
    cache().capacity.load(Ordering::Relaxed)
}

/// Files the cache holds open now.
pub fn open_files() -> usize {
    cache().lock().by_id.len()
}

/// Times a file was opened again after the cache had closed it (a cache too small for the
/// working set shows here).
pub fn reopens() -> u64 {
    cache().reopens.load(Ordering::Relaxed)
}

/// A segment or index file whose descriptor the cache may close while it is idle.
#[derive(Debug)]
pub struct CachedFile {
    id: u64,
    path: PathBuf,
}

impl CachedFile {
    /// Registers a file the caller has just opened (read and write) at `path`.
    pub fn new(path: PathBuf, file: File) -> CachedFile {
        let cache = cache();
        let handle = CachedFile { id: cache.next_id.fetch_add(1, Ordering::Relaxed), path };
        let evicted = cache.lock().insert(handle.id, Arc::new(file)).1;
        drop(evicted);
        handle
    }

    /// Names a file without opening it: the first `get` opens it.
    pub fn lazy(path: PathBuf) -> CachedFile {
        CachedFile { id: cache().next_id.fetch_add(1, Ordering::Relaxed), path }
    }

    /// An open descriptor of the file, opening it (read and write) if the cache closed it.
    pub fn get(&self) -> io::Result<Arc<File>> {
        let cache = cache();
        if let Some(file) = cache.lock().touch(self.id) {
            return Ok(file);
        }
        let file = Arc::new(OpenOptions::new().read(true).write(true).open(&self.path)?);
        cache.reopens.fetch_add(1, Ordering::Relaxed);
        let (file, evicted) = cache.lock().insert(self.id, file);
        // Closing happens here, after the lock is released.
        drop(evicted);
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        let closed = cache().lock().remove(self.id);
        drop(closed);
    }
}

struct FileCache {
    capacity: AtomicUsize,
    next_id: AtomicU64,
    reopens: AtomicU64,
    lru: Mutex<Lru>,
}

impl FileCache {
    fn lock(&self) -> MutexGuard<'_, Lru> {
        // The map stays consistent on a panic: each update is one insert or remove pair.
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        lru.capacity = self.capacity.load(Ordering::Relaxed);
        lru
    }
}

/// Least recently used order by a tick that grows with every use.
#[derive(Default)]
struct Lru {
    capacity: usize,
    tick: u64,
    by_id: HashMap<u64, (Arc<File>, u64)>,
    by_tick: BTreeMap<u64, u64>,
}

impl Lru {
    fn touch(&mut self, id: u64) -> Option<Arc<File>> {
        self.tick += 1;
        let (file, tick) = self.by_id.get_mut(&id)?;
        self.by_tick.remove(tick);
        *tick = self.tick;
        self.by_tick.insert(self.tick, id);
        Some(Arc::clone(file))
    }

    /// Caches `file` for `id` (or keeps the one a racing caller cached first) and returns
    /// it with the files evicted to stay within capacity, for the caller to close unlocked.
    fn insert(&mut self, id: u64, file: Arc<File>) -> (Arc<File>, Vec<Arc<File>>) {
        if let Some(existing) = self.touch(id) {
            return (existing, vec![file]);
        }
        self.by_id.insert(id, (Arc::clone(&file), self.tick));
        self.by_tick.insert(self.tick, id);
        let mut evicted = Vec::new();
        while self.by_id.len() > self.capacity {
            let Some((_, oldest)) = self.by_tick.pop_first() else { break };
            evicted.extend(self.by_id.remove(&oldest).map(|(f, _)| f));
        }
        (file, evicted)
    }

    fn remove(&mut self, id: u64) -> Option<Arc<File>> {
        let (file, tick) = self.by_id.remove(&id)?;
        self.by_tick.remove(&tick);
        Some(file)
    }
}

fn cache() -> &'static FileCache {
    static CACHE: OnceLock<FileCache> = OnceLock::new();
    CACHE.get_or_init(|| FileCache {
        capacity: AtomicUsize::new(OPEN_FILES_MAX_DEFAULT),
        next_id: AtomicU64::new(0),
        reopens: AtomicU64::new(0),
        lru: Mutex::new(Lru::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn lru(capacity: usize) -> Lru {
        Lru { capacity, ..Lru::default() }
    }

    fn any_file() -> Arc<File> {
        Arc::new(tempfile::tempfile().unwrap())
    }

    /// The cache keeps at most its capacity, evicting the least recently used first.
    #[test]
    fn evicts_least_recently_used() {
        let mut lru = lru(2);
        assert!(lru.insert(1, any_file()).1.is_empty());
        assert!(lru.insert(2, any_file()).1.is_empty());
        assert!(lru.touch(1).is_some());
        assert_eq!(lru.insert(3, any_file()).1.len(), 1);
        assert!(lru.touch(2).is_none(), "2 was used least recently");
        assert!(lru.touch(1).is_some() && lru.touch(3).is_some());
        assert_eq!(lru.by_id.len(), 2);
        assert_eq!(lru.by_tick.len(), 2);
    }

    /// A handle keeps working after eviction (it reopens) and a descriptor taken before an
    /// unlink keeps reading the unlinked file.
    #[test]
    fn handles_survive_eviction_and_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let handle = CachedFile::new(path.clone(), OpenOptions::new().read(true).write(true).open(&path).unwrap());
        let held = handle.get().unwrap();
        cache().lock().remove(handle.id);
        let mut buf = [0u8; 5];
        handle.get().unwrap().read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        std::fs::remove_file(&path).unwrap();
        held.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        drop(handle);
    }
}
