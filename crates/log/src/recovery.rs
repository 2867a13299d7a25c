//! Opening a partition directory: finding segments, checking or rebuilding indexes,
//! and cutting a torn or corrupt tail off the last segment (see `docs/format.md`).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::cadence::Cadence;
use crate::disk::Disk;
use crate::error::OpenError;
use crate::index::{self, OffsetEntry};
use crate::index_file::{file_matches, Entry, IndexFile, LoadError};
use crate::layout::{
    self, classify, file_path, FileKind, INDEX_SUFFIX, LOG_SUFFIX, SCAN_CHUNK_BYTES, TIME_INDEX_SUFFIX,
};
use crate::partition::{RecoveryReport, Truncation};
use crate::recovery_point;
use crate::scan::{ScanError, Scanner};
use crate::segment::{Segment, SegmentParts};
use crate::time_index::{self, TimeEntry};

pub struct Recovered {
    /// Oldest first; never empty.
    pub segments: Vec<Segment>,
    pub log_end: i64,
    pub report: RecoveryReport,
    /// Acknowledged data is missing: the partition is refused until an operator accepts it.
    pub damage: Option<Damage>,
}

/// Why a recovered log cannot be trusted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The log ends below the offset known to have been fsynced.
    BelowRecoveryPoint { log_end: i64, recovery_point: i64 },
    /// A segment's offsets end at `expected` but the next segment starts at `found`.
    Hole { expected: i64, found: i64 },
    /// The recovery point file cannot be read, so the log cannot be checked against it.
    RecoveryPointUnreadable(String),
    /// A truncation failed part way (files and memory disagree): refused until reopened.
    TruncationFailed(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::BelowRecoveryPoint { log_end, recovery_point } => write!(
                f,
                "log ends at offset {log_end}, below its recovery point {recovery_point}: offsets \
                 {log_end}..{recovery_point} were fsynced and are gone"
            ),
            Damage::Hole { expected, found } => write!(
                f,
                "segments do not join up: one ends at offset {expected}, the next starts at {found}; \
                 offsets {expected}..{found} are gone"
            ),
            Damage::RecoveryPointUnreadable(why) => write!(f, "recovery point unreadable: {why}"),
            Damage::TruncationFailed(why) => write!(f, "truncation failed, reopen the log: {why}"),
        }
    }
}

pub fn recover(dir: &Path, disk: &Disk, interval_bytes: u32) -> Result<Recovered, OpenError> {
    crate::durable_dir::create_dir_all(dir).map_err(io_at(dir))?;
    let mut bases = list_segments(dir)?;
    if bases.is_empty() {
        Segment::create(dir, 0).map_err(io_at(dir))?;
        disk.sync_dir(dir).map_err(io_at(dir))?;
        bases.push(0);
    }
    let mut report = RecoveryReport { segments: bases.len(), ..RecoveryReport::default() };
    let mut segments = Vec::with_capacity(bases.len());
    for pair in bases.windows(2) {
        segments.push(open_closed(dir, pair[0], pair[1], interval_bytes, &mut report)?);
    }
    let last_base = bases[bases.len() - 1];
    let (last, log_end) = open_active(dir, last_base, interval_bytes, &mut report)?;
    segments.push(last);
    let damage = find_damage(dir, &segments, log_end);
    if let Some(damage) = &damage {
        tracing::error!(dir = %dir.display(), %damage, "partition has lost acknowledged data; refusing it until accepted");
    }
    Ok(Recovered { segments, log_end, report, damage })
}

/// A hole between segments, or a log end below the stored recovery point.
fn find_damage(dir: &Path, segments: &[Segment], log_end: i64) -> Option<Damage> {
    let stored = match recovery_point::load(dir) {
        Ok(stored) => stored.unwrap_or_default(),
        Err(why) => return Some(Damage::RecoveryPointUnreadable(why)),
    };
    for pair in segments.windows(2) {
        let (expected, found) = (pair[0].end_offset(), pair[1].base_offset);
        if expected != found && found > stored.holes_accepted_through {
            return Some(Damage::Hole { expected, found });
        }
    }
    (log_end < stored.offset).then_some(Damage::BelowRecoveryPoint { log_end, recovery_point: stored.offset })
}

/// Base offsets of the `.log` files, ascending. Removes leftovers of interrupted
/// rebuilds and deletions; leaves foreign files alone.
fn list_segments(dir: &Path) -> Result<Vec<i64>, OpenError> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        match classify(&name) {
            FileKind::Log(base) => {
                logs.insert(base);
            }
            FileKind::Index(base) | FileKind::TimeIndex(base) => indexes.push((base, path)),
            FileKind::Temp => remove_leftover(&path)?,
            FileKind::RecoveryPoint | FileKind::LogStart | FileKind::CompactionCheckpoint | FileKind::RaftDir => {}
            FileKind::Unknown => {
                tracing::warn!(file = %path.display(), "ignoring unexpected file in log directory")
            }
        }
    }
    for (base, path) in indexes {
        if !logs.contains(&base) {
            remove_leftover(&path)?;
        }
    }
    Ok(logs.into_iter().collect())
}

fn remove_leftover(path: &Path) -> Result<(), OpenError> {
    tracing::info!(file = %path.display(), "removing leftover file");
    std::fs::remove_file(path).map_err(io_at(path))
}

/// A segment the log has rolled past: its indexes are checked, not its batches.
fn open_closed(
    dir: &Path,
    base: i64,
    next_base: i64,
    interval: u32,
    report: &mut RecoveryReport,
) -> Result<Segment, OpenError> {
    let (log, log_len) = open_log(dir, base)?;
    let relative_end = next_base - base;
    let offsets_path = file_path(dir, base, INDEX_SUFFIX);
    let times_path = file_path(dir, base, TIME_INDEX_SUFFIX);
    let offsets = load(&offsets_path, log_len).and_then(|e| {
        index::check(&e, relative_end, log_len)?;
        check_last_entry(&log, base, log_len, e.last())?;
        Ok(e)
    });
    let times = load(&times_path, log_len).and_then(|e| {
        time_index::check(&e, relative_end)?;
        if e.is_empty() && log_len > 0 {
            return Err("no entry for a non-empty segment".to_string());
        }
        Ok(e)
    });
    let rebuilt = match (&offsets, &times) {
        (Ok(_), Ok(_)) => None,
        _ => Some(rebuild_closed(&log, base, log_len, interval)),
    };
    let offsets = settle(offsets_path, offsets, rebuilt.as_ref().map(|r| r.0.clone()), report)?;
    let times = settle(times_path, times, rebuilt.map(|r| r.1), report)?;
    let max_timestamp = times.last().map(|e| e.max_timestamp);
    let end_offset = closed_end_offset(&log, base, log_len, offsets.last());
    Ok(Segment::from_parts(
        dir,
        SegmentParts {
            base_offset: base,
            log,
            log_len,
            end_offset,
            index: offsets,
            time_index: times,
            cadence: Cadence::new(),
            max_timestamp,
        },
    ))
}

/// Opens the stored index if it passed its checks, else writes the rebuilt one.
fn settle<E: Entry>(
    path: PathBuf,
    stored: Result<Vec<E>, String>,
    rebuilt: Option<Vec<E>>,
    report: &mut RecoveryReport,
) -> Result<IndexFile<E>, OpenError> {
    match (stored, rebuilt) {
        (Ok(entries), _) => IndexFile::open(path.clone(), entries).map_err(io_at(&path)),
        (Err(why), rebuilt) => {
            tracing::warn!(index = %path.display(), reason = %why, "rebuilding index");
            report.indexes_rebuilt += 1;
            IndexFile::create(path.clone(), rebuilt.unwrap_or_default()).map_err(io_at(&path))
        }
    }
}

/// Reads an index, bounded by the most entries a log of `log_len` bytes could need.
fn load<E: Entry>(path: &Path, log_len: u64) -> Result<Vec<E>, String> {
    let entries_max = (log_len / BATCH_HEADER_LEN as u64) as usize + 1;
    match IndexFile::<E>::read_entries(path, entries_max) {
        Ok(entries) => Ok(entries),
        Err(LoadError::Missing) => Err("missing".to_string()),
        Err(LoadError::Damaged(why)) => Err(why),
        Err(LoadError::Io(e)) => Err(format!("unreadable: {e}")),
    }
}

/// The last offset entry must point at a batch header with the offset it claims.
fn check_last_entry(log: &File, base: i64, log_len: u64, last: Option<&OffsetEntry>) -> Result<(), String> {
    let Some(entry) = last else { return Ok(()) };
    let mut scanner = Scanner::new(log, entry.position as u64, log_len, BATCH_HEADER_LEN);
    match scanner.peek_header() {
        Ok(Some(h)) if h.base_offset == base + entry.relative_offset as i64 => Ok(()),
        _ => Err(format!("last entry {entry:?} does not point at its batch")),
    }
}

/// The offset after a closed segment's last batch: a walk of the headers from the last
/// index entry (at most about one index interval). Damage ends the walk, so the segment
/// ends where its good batches do and the next segment does not join up.
fn closed_end_offset(log: &File, base: i64, log_len: u64, last: Option<&OffsetEntry>) -> i64 {
    let (position, mut end) = last.map_or((0, base), |e| (e.position as u64, base + e.relative_offset as i64));
    let mut scanner = Scanner::new(log, position, log_len, SCAN_CHUNK_BYTES);
    while let Ok(Some(header)) = scanner.next_header() {
        if header.base_offset != end {
            break;
        }
        end = header.last_offset() + 1;
    }
    end
}

/// Index entries of a closed segment from its batch headers (CRCs are not checked:
/// the segment was complete when the log rolled past it).
fn rebuild_closed(log: &File, base: i64, log_len: u64, interval: u32) -> (Vec<OffsetEntry>, Vec<TimeEntry>) {
    let mut walk = Walk::new(base, interval);
    let mut scanner = Scanner::new(log, 0, log_len, SCAN_CHUNK_BYTES);
    loop {
        let position = scanner.position();
        match scanner.next_header() {
            Ok(Some(h)) if walk.accept(position, &h) => {}
            Ok(None) => break,
            other => {
                tracing::warn!(base, position, result = ?other.map(|_| ()), "closed segment is damaged; indexing stops here");
                break;
            }
        }
    }
    walk.times.extend(walk.cadence.final_time_entry());
    (walk.offsets, walk.times)
}

/// Reopens a segment that a truncation cut back, as the active one (its batches checked,
/// its indexes rebuilt to match the shorter file).
pub fn reopen_cut(dir: &Path, base: i64, interval: u32) -> Result<(Segment, i64), OpenError> {
    open_active(dir, base, interval, &mut RecoveryReport::default())
}

/// The last segment: every batch is checked and a bad tail is cut off.
fn open_active(dir: &Path, base: i64, interval: u32, report: &mut RecoveryReport) -> Result<(Segment, i64), OpenError> {
    let (log, file_len) = open_log(dir, base)?;
    let mut walk = Walk::new(base, interval);
    let valid_len = scan_active(&log, file_len, &mut walk).map_err(io_at(&file_path(dir, base, LOG_SUFFIX)))?;
    if valid_len < file_len {
        truncate_tail(&log, dir, base, valid_len, file_len, walk.next_offset)?;
        report.truncated_bytes += file_len - valid_len;
        report.truncation = Some(Truncation {
            segment: file_path(dir, base, LOG_SUFFIX),
            position: valid_len,
            first_dropped_offset: walk.next_offset,
        });
    }
    let offsets = write_if_changed(file_path(dir, base, INDEX_SUFFIX), walk.offsets, report)?;
    let times = write_if_changed(file_path(dir, base, TIME_INDEX_SUFFIX), walk.times, report)?;
    let parts = SegmentParts {
        base_offset: base,
        log,
        log_len: valid_len,
        end_offset: walk.next_offset,
        index: offsets,
        time_index: times,
        max_timestamp: walk.cadence.max_timestamp(),
        cadence: walk.cadence,
    };
    Ok((Segment::from_parts(dir, parts), walk.next_offset))
}

/// Scans every batch with its CRC; returns the length of the valid prefix.
fn scan_active(log: &File, file_len: u64, walk: &mut Walk) -> io::Result<u64> {
    let mut scanner = Scanner::new(log, 0, file_len, SCAN_CHUNK_BYTES);
    loop {
        let position = scanner.position();
        match scanner.next_batch() {
            Ok(Some((h, _))) if walk.accept(position, &h) => {}
            Ok(None) => return Ok(position),
            Ok(Some((h, _))) => {
                tracing::warn!(
                    position,
                    expected = walk.next_offset,
                    found = h.base_offset,
                    "batch out of offset order"
                );
                return Ok(position);
            }
            Err(ScanError::Corrupt { position, reason }) => {
                tracing::warn!(position, %reason, "invalid batch");
                return Ok(position);
            }
            Err(ScanError::Io(e)) => return Err(e),
        }
    }
}

fn truncate_tail(
    log: &File,
    dir: &Path,
    base: i64,
    valid_len: u64,
    file_len: u64,
    first_dropped_offset: i64,
) -> Result<(), OpenError> {
    let path = file_path(dir, base, LOG_SUFFIX);
    tracing::warn!(
        segment = %path.display(),
        position = valid_len,
        dropped_bytes = file_len - valid_len,
        first_dropped_offset,
        "truncating torn or corrupt tail of the last segment"
    );
    log.set_len(valid_len).map_err(io_at(&path))?;
    // Without this a crash could bring the bad tail back; recovery would cut it again,
    // but appends made after this open would then sit behind garbage.
    log.sync_all().map_err(io_at(&path))
}

fn write_if_changed<E: Entry>(
    path: PathBuf,
    entries: Vec<E>,
    report: &mut RecoveryReport,
) -> Result<IndexFile<E>, OpenError> {
    if file_matches(&path, &entries) {
        return IndexFile::open(path.clone(), entries).map_err(io_at(&path));
    }
    report.indexes_rebuilt += 1;
    IndexFile::create(path.clone(), entries).map_err(io_at(&path))
}

/// Replays batches of one segment through the index cadence, checking offsets are dense.
struct Walk {
    base: i64,
    interval: u32,
    next_offset: i64,
    cadence: Cadence,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl Walk {
    fn new(base: i64, interval: u32) -> Self {
        Walk { base, interval, next_offset: base, cadence: Cadence::new(), offsets: Vec::new(), times: Vec::new() }
    }

    /// Takes the batch at `position` if it continues the offsets and stays in range.
    fn accept(&mut self, position: u64, header: &BatchHeader) -> bool {
        let in_range = position + header.total_len() as u64 <= layout::SEGMENT_BYTES_LIMIT
            && header.last_offset() - self.base <= layout::RELATIVE_OFFSET_LIMIT;
        if header.base_offset != self.next_offset || !in_range {
            return false;
        }
        let due = self.cadence.observe(self.base, position, header, self.interval);
        self.offsets.extend(due.offset);
        self.times.extend(due.time);
        self.next_offset = header.last_offset() + 1;
        true
    }
}

fn open_log(dir: &Path, base: i64) -> Result<(File, u64), OpenError> {
    let path = file_path(dir, base, LOG_SUFFIX);
    let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_at(&path))?;
    let len = file.metadata().map_err(io_at(&path))?.len();
    Ok((file, len))
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_path_buf(), source }
}
