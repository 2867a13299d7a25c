//! One segment: a `.log` of batches with its offset and time indexes.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use crate::batch::BatchHeader;
use crate::cadence::Cadence;
use crate::disk::Disk;
use crate::file_cache::CachedFile;
use crate::index::{self, OffsetEntry};
use crate::index_file::IndexFile;
use crate::layout::{file_path, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::time_index::{self, TimeEntry};

pub struct Segment {
    pub base_offset: i64,
    /// Opened through the shared cache; readers and syncers take an `Arc<File>` under the
    /// partition lock and use it without the lock.
    log: CachedFile,
    /// Offset after the last batch: the next segment's base when the offsets join up.
    end_offset: i64,
    /// Committed bytes: readers never look past them; a failed write is cut back to them.
    log_len: u64,
    index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    /// Decides index entries for further appends (only the active segment appends).
    cadence: Cadence,
    /// Largest batch `max_timestamp` in the segment, None while it has no batch.
    max_timestamp: Option<i64>,
    /// When the segment took its first batch (since open, for recovered segments): drives
    /// rolling by age.
    first_append: Option<Instant>,
}

/// Everything a reader needs to read a segment without holding the partition lock.
#[derive(Clone)]
pub struct SegmentView {
    pub base_offset: i64,
    pub file: Arc<File>,
    /// Committed length when the view was taken.
    pub len: u64,
}

/// The parts recovery assembles a segment from.
pub struct SegmentParts {
    pub base_offset: i64,
    pub log: File,
    pub log_len: u64,
    pub end_offset: i64,
    pub index: IndexFile<OffsetEntry>,
    pub time_index: IndexFile<TimeEntry>,
    pub cadence: Cadence,
    pub max_timestamp: Option<i64>,
}

impl Segment {
    pub fn from_parts(dir: &Path, parts: SegmentParts) -> Segment {
        Segment {
            base_offset: parts.base_offset,
            log: CachedFile::new(file_path(dir, parts.base_offset, LOG_SUFFIX), parts.log),
            end_offset: parts.end_offset,
            log_len: parts.log_len,
            index: parts.index,
            time_index: parts.time_index,
            cadence: parts.cadence,
            max_timestamp: parts.max_timestamp,
            first_append: (parts.log_len > 0).then(Instant::now),
        }
    }

    /// Creates the three empty files of a new segment; fails if the `.log` exists. On
    /// failure nothing is left behind, so a later roll can try again.
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new().read(true).write(true).create_new(true).open(&log_path)?;
        let indexes = IndexFile::create_empty(file_path(dir, base_offset, INDEX_SUFFIX)).and_then(|index| {
            let time_index = IndexFile::create_empty(file_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
            Ok((index, time_index))
        });
        let (index, time_index) = match indexes {
            Ok(pair) => pair,
            Err(e) => {
                let _ = std::fs::remove_file(&log_path);
                let _ = std::fs::remove_file(file_path(dir, base_offset, INDEX_SUFFIX));
                return Err(e);
            }
        };
        Ok(Segment {
            base_offset,
            log: CachedFile::new(log_path, log),
            end_offset: base_offset,
            log_len: 0,
            index,
            time_index,
            cadence: Cadence::new(),
            max_timestamp: None,
            first_append: None,
        })
    }

    pub fn len(&self) -> u64 {
        self.log_len
    }

    pub fn is_empty(&self) -> bool {
        self.log_len == 0
    }

    pub fn age(&self) -> Option<std::time::Duration> {
        self.first_append.map(|t| t.elapsed())
    }

    pub fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }

    /// Offset after the segment's last batch.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Taken under the partition lock, so retention cannot unlink the file first.
    pub fn view(&self) -> io::Result<SegmentView> {
        Ok(SegmentView { base_offset: self.base_offset, file: self.log.get()?, len: self.log_len })
    }

    /// Position of the batch with the largest indexed base offset at or below `offset`,
    /// and that base offset.
    pub fn lookup(&self, offset: i64) -> (u64, i64) {
        let relative = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        let entry = index::lookup(self.index.entries(), relative);
        (entry.position as u64, self.base_offset + entry.relative_offset as i64)
    }

    /// The first offset that may hold a batch with `max_timestamp >= timestamp`.
    pub fn time_search_start(&self, timestamp: i64) -> i64 {
        self.base_offset + time_index::search_start(self.time_index.entries(), timestamp)
    }

    /// Writes `bytes` (whole batches with offsets assigned; `batches` are their start
    /// positions within `bytes` and headers) with one write, then their index entries.
    /// On failure the files are cut back and the segment is unchanged.
    pub fn append(
        &mut self,
        disk: &Disk,
        bytes: &[u8],
        batches: &[(usize, BatchHeader)],
        interval_bytes: u32,
    ) -> io::Result<()> {
        let mut cadence = self.cadence.clone();
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        for (at, header) in batches {
            let due = cadence.observe(self.base_offset, self.log_len + *at as u64, header, interval_bytes);
            offsets.extend(due.offset);
            times.extend(due.time);
        }
        let log = self.log.get()?;
        if let Err(e) = disk.write_at(&log, bytes, self.log_len) {
            self.cut_log_back(&log);
            return Err(e);
        }
        self.append_indexes(&log, &offsets, &times)?;
        self.log_len += bytes.len() as u64;
        self.end_offset = batches.last().map_or(self.end_offset, |(_, h)| h.last_offset() + 1);
        self.cadence = cadence;
        let batch_max = batches.iter().map(|(_, h)| h.max_timestamp).max();
        self.max_timestamp = self.max_timestamp.max(batch_max);
        self.first_append.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn append_indexes(&mut self, log: &File, offsets: &[OffsetEntry], times: &[TimeEntry]) -> io::Result<()> {
        let index_count = self.index.entries().len();
        let result = self.index.append(offsets).and_then(|()| self.time_index.append(times));
        if result.is_err() {
            let _ = self.index.truncate(index_count);
            self.cut_log_back(log);
        }
        result
    }

    fn cut_log_back(&self, log: &File) {
        if let Err(e) = log.set_len(self.log_len) {
            // The bytes past `log_len` are never read and the next append overwrites them;
            // recovery would cut them too.
            tracing::warn!(segment = %self.log_path().display(), error = %e, "could not cut back a failed write");
        }
    }

    /// Ends appends to this segment: the time index gets its final entry so that its last
    /// entry carries the segment's largest timestamp.
    pub fn seal(&mut self) -> io::Result<()> {
        let mut cadence = self.cadence.clone();
        if let Some(entry) = cadence.final_time_entry() {
            self.time_index.append(&[entry])?;
        }
        self.cadence = cadence;
        Ok(())
    }

    pub fn log_file(&self) -> io::Result<Arc<File>> {
        self.log.get()
    }

    /// The log and both index files.
    pub fn files(&self) -> io::Result<[Arc<File>; 3]> {
        Ok([self.log.get()?, self.index.file()?, self.time_index.file()?])
    }

    /// Wall-clock time of the last write to the `.log`, for segments without timestamps
    /// (from the name: the descriptor may be closed).
    pub fn modified_ms(&self) -> Option<i64> {
        let modified = std::fs::metadata(self.log_path()).and_then(|m| m.modified()).ok()?;
        let ms = modified.duration_since(UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    }

    /// Removes the files, the `.log` first: a crash half way leaves only orphan indexes,
    /// which the next open deletes.
    pub fn delete_files(&self) -> io::Result<()> {
        std::fs::remove_file(self.log_path())?;
        remove_if_present(self.index.path())?;
        remove_if_present(self.time_index.path())
    }

    pub fn log_path(&self) -> &Path {
        self.log.path()
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
