//! A file of fixed-size index entries with an in-memory copy for lookups.
//!
//! Entries are only ever appended (positional writes at the end) or the whole file is
//! rewritten through a temp file and a rename, so a crash leaves either the old or the
//! new file, never a mix.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic_file;
use crate::file_cache::CachedFile;

/// One fixed-size record of an index file.
pub trait Entry: Copy + PartialEq + Debug {
    const LEN: usize;
    fn encode(&self, out: &mut Vec<u8>);
    /// `bytes` is exactly `LEN` long.
    fn decode(bytes: &[u8]) -> Self;
}

/// Why stored entries could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    Missing,
    Damaged(String),
    Io(io::Error),
}

pub struct IndexFile<E> {
    /// Opened through the shared cache: a closed segment's index is not read again (its
    /// entries are in memory), so it holds no descriptor while idle.
    file: CachedFile,
    /// The whole index, for lookups without reading the file.
    entries: Vec<E>,
}

impl<E: Entry> IndexFile<E> {
    /// Reads every entry of `path`, refusing files of a size no valid index could have
    /// (`entries_max` bounds the allocation).
    pub fn read_entries(path: &Path, entries_max: usize) -> Result<Vec<E>, LoadError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
            Err(e) => return Err(LoadError::Io(e)),
        };
        let len = file.metadata().map_err(LoadError::Io)?.len();
        if len % E::LEN as u64 != 0 {
            return Err(LoadError::Damaged(format!("size {len} is not a multiple of {}", E::LEN)));
        }
        let count = len / E::LEN as u64;
        if count > entries_max as u64 {
            return Err(LoadError::Damaged(format!("{count} entries, at most {entries_max} possible")));
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).map_err(LoadError::Io)?;
        Ok(bytes.chunks_exact(E::LEN).map(E::decode).collect())
    }

    /// An existing file whose entries were read and checked already; it is opened only
    /// when first written or synced.
    pub fn open(path: PathBuf, entries: Vec<E>) -> io::Result<Self> {
        Ok(IndexFile { file: CachedFile::lazy(path), entries })
    }

    /// Writes `entries` as the whole file (atomically, see `atomic_file`).
    pub fn create(path: PathBuf, entries: Vec<E>) -> io::Result<Self> {
        let file = atomic_file::replace_with(&path, |f| f.write_all_at(&encode_all(&entries), 0))?;
        Ok(IndexFile { file: CachedFile::new(path, file), entries })
    }

    /// A new, empty index for a new segment; fails if the file exists.
    pub fn create_empty(path: PathBuf) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        Ok(IndexFile { file: CachedFile::new(path, file), entries: Vec::new() })
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// A descriptor for syncing, held without the partition lock.
    pub fn file(&self) -> io::Result<Arc<File>> {
        self.file.get()
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Appends with one write; on failure the file is cut back and memory is unchanged.
    pub fn append(&mut self, new: &[E]) -> io::Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let at = (self.entries.len() * E::LEN) as u64;
        let file = self.file.get()?;
        if let Err(e) = file.write_all_at(&encode_all(new), at) {
            let _ = file.set_len(at);
            return Err(e);
        }
        self.entries.extend_from_slice(new);
        Ok(())
    }

    /// Drops the entries appended last, undoing an `append` whose log write was undone.
    pub fn truncate(&mut self, count: usize) -> io::Result<()> {
        self.entries.truncate(count);
        self.file.get()?.set_len((count * E::LEN) as u64)
    }
}

/// Whether `path` holds exactly `entries`; a read failure counts as "no".
pub fn file_matches<E: Entry>(path: &Path, entries: &[E]) -> bool {
    match IndexFile::<E>::read_entries(path, entries.len()) {
        Ok(stored) => stored == entries,
        Err(_) => false,
    }
}

fn encode_all<E: Entry>(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * E::LEN);
    for e in entries {
        e.encode(&mut out);
    }
    out
}
