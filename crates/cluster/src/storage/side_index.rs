//! The Raft side index of one group: per Raft entry, its log id and what it holds — Kafka
//! offsets of its batches (stored in the partition's segments), or a Raft-only entry (blank,
//! membership) that takes no Kafka offset. Together with the segments it is the Raft log.
//!
//! File `side-index`: records appended in log order, each `len: u32 BE | crc32c: u32 BE (of
//! the payload) | payload (JSON of `SideRecord`)`. A torn or corrupt tail is cut on open.
//! File `side-index.base` (JSON, replaced atomically): the last purged log id and the Kafka
//! offset that follows the purged entries. Purge drops records from memory at once and from
//! the file lazily (the file is rewritten once most of it is purged). See docs/format.md.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{BasicNode, LogId, Membership};
use serde::{Deserialize, Serialize};
use sluice_log::atomic_file;

use crate::types::NodeId;

/// Name of the records file in the group's directory.
pub const SIDE_INDEX_FILE: &str = "side-index";
/// Name of the purge state file in the group's directory.
pub const SIDE_INDEX_BASE_FILE: &str = "side-index.base";
/// Largest payload of one record: a membership of many nodes is a few KiB; anything larger
/// is damage, refused before allocating.
pub const SIDE_RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Bytes before the payload: length and CRC.
pub const SIDE_RECORD_HEADER_LEN: usize = 4 + 4;
/// The file is rewritten without its purged records once at least this many are purged
/// (and they outnumber the live ones): rewrites stay rare and cheap.
const COMPACT_PURGED_RECORDS_MIN: usize = 64 * 1024;
/// Largest base file: a log id and an offset in JSON.
const BASE_FILE_BYTES_MAX: u64 = 4096;

/// What one Raft entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Whole batches at Kafka offsets `base_offset..=last_offset`, `bytes` long in the segments.
    Batches {
        base_offset: i64,
        last_offset: i64,
        bytes: u32,
    },
    /// A normal entry with no batches (takes no offset).
    NoRecords,
    /// A leader's blank entry.
    Blank,
    Membership(Membership<NodeId, BasicNode>),
}

/// One record of the side index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideRecord {
    pub log_id: LogId<NodeId>,
    pub kind: EntryKind,
}

/// The purge state (`side-index.base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    pub last_purged: Option<LogId<NodeId>>,
    /// The Kafka offset after the last purged batch entry (or, for a new side index, the log
    /// end the group started on): where the kept entries' offsets begin.
    pub next_offset: i64,
}

/// Why the side index could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SideIndexError {
    #[error("side index i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("side index base file {path} is damaged: {why}")]
    BadBase { path: PathBuf, why: String },
}

/// A record in memory and where it starts in the file.
#[derive(Debug, Clone)]
struct Slot {
    record: SideRecord,
    position: u64,
}

pub struct SideIndex {
    dir: PathBuf,
    /// Shared so an fsync runs without the side index's lock.
    file: Arc<File>,
    /// Live records (not purged), in log order.
    slots: VecDeque<Slot>,
    /// File length: where the next record goes.
    len: u64,
    /// Records still in the file but purged (dropped from `slots`).
    purged_in_file: usize,
    base: Base,
}

impl SideIndex {
    /// Opens (creating) the side index in `dir`. A new one starts its offsets at
    /// `initial_next_offset` (the partition log's end: records already there predate Raft).
    pub fn open(dir: &Path, initial_next_offset: i64) -> Result<SideIndex, SideIndexError> {
        sluice_log::durable_dir::create_dir_all(dir).map_err(io_at(dir))?;
        let base = match load_base(dir)? {
            Some(base) => base,
            None => {
                let base = Base { last_purged: None, next_offset: initial_next_offset };
                store_base(dir, &base)?;
                base
            }
        };
        let path = dir.join(SIDE_INDEX_FILE);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(io_at(&path))?;
        let (records, valid_len, file_len) = read_records(&file).map_err(io_at(&path))?;
        if valid_len < file_len {
            tracing::warn!(file = %path.display(), valid_len, file_len, "cutting torn side index tail");
            file.set_len(valid_len).map_err(io_at(&path))?;
            file.sync_all().map_err(io_at(&path))?;
        }
        let purged_index = base.last_purged.map(|l| l.index);
        let total = records.len();
        let slots: VecDeque<Slot> =
            records.into_iter().filter(|s| Some(s.record.log_id.index) > purged_index).collect();
        Ok(SideIndex {
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            purged_in_file: total - slots.len(),
            slots,
            len: valid_len,
            base,
        })
    }

    pub fn base(&self) -> Base {
        self.base
    }

    pub fn last_purged(&self) -> Option<LogId<NodeId>> {
        self.base.last_purged
    }

    pub fn last(&self) -> Option<&SideRecord> {
        self.slots.back().map(|s| &s.record)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The record at Raft index `index`, if it is kept.
    pub fn get(&self, index: u64) -> Option<&SideRecord> {
        let at = self.slots.partition_point(|s| s.record.log_id.index < index);
        self.slots.get(at).map(|s| &s.record).filter(|r| r.log_id.index == index)
    }

    /// Records with `start <= index < end`, cloned.
    pub fn range(&self, start: u64, end: u64) -> Vec<SideRecord> {
        let from = self.slots.partition_point(|s| s.record.log_id.index < start);
        self.slots.iter().skip(from).take_while(|s| s.record.log_id.index < end).map(|s| s.record.clone()).collect()
    }

    /// Kafka's OffsetForLeaderEpoch over the kept entries (terms are leader epochs): the
    /// largest term at or below `epoch` and the offset where it ended (the first offset of a
    /// later term, or the log end). None when every kept entry has a later term.
    pub fn epoch_end_offset(&self, epoch: u64) -> Option<(u64, i64)> {
        let after = self.slots.partition_point(|s| s.record.log_id.leader_id.term <= epoch);
        let found = self.slots.get(after.checked_sub(1)?)?.record.log_id.leader_id.term;
        let end = self
            .slots
            .iter()
            .skip(after)
            .find_map(|s| match s.record.kind {
                EntryKind::Batches { base_offset, .. } => Some(base_offset),
                _ => None,
            })
            .unwrap_or_else(|| self.next_offset());
        Some((found, end))
    }

    /// The Kafka offset after the last kept batch entry (or the base's when none is kept).
    pub fn next_offset(&self) -> i64 {
        self.slots
            .iter()
            .rev()
            .find_map(|s| match s.record.kind {
                EntryKind::Batches { last_offset, .. } => Some(last_offset + 1),
                _ => None,
            })
            .unwrap_or(self.base.next_offset)
    }

    /// The last index such that it and every record before it hold only records below
    /// `offset`, when some kept record is so (retention's purge point).
    pub fn purge_point_below(&self, offset: i64) -> Option<u64> {
        let needed = self.slots.iter().position(|s| match s.record.kind {
            EntryKind::Batches { last_offset, .. } => last_offset >= offset,
            _ => false,
        });
        let purgeable = needed.unwrap_or(self.slots.len());
        let last = self.slots.get(purgeable.checked_sub(1)?)?;
        Some(last.record.log_id.index)
    }

    /// The first offset the kept records hold: the first kept batch record's base offset, or
    /// the offset after the last batch record when none is kept.
    pub fn first_needed_offset(&self) -> i64 {
        self.slots
            .iter()
            .find_map(|s| match s.record.kind {
                EntryKind::Batches { base_offset, .. } => Some(base_offset),
                _ => None,
            })
            .unwrap_or_else(|| self.next_offset())
    }

    /// The index of the first record whose batches end at or past `log_end` (not wholly in
    /// the segments).
    pub fn first_batches_ending_past(&self, log_end: i64) -> Option<u64> {
        self.slots.iter().find_map(|s| match s.record.kind {
            EntryKind::Batches { last_offset, .. } if last_offset >= log_end => Some(s.record.log_id.index),
            _ => None,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(SIDE_INDEX_FILE)
    }

    /// Appends `records` with one write, not synced (see `sync_handle`). On failure the file is
    /// cut back and memory is unchanged.
    pub fn append(&mut self, records: &[SideRecord]) -> io::Result<()> {
        let mut bytes = Vec::new();
        let mut positions = Vec::with_capacity(records.len());
        for record in records {
            positions.push(self.len + bytes.len() as u64);
            encode(record, &mut bytes)?;
        }
        if let Err(e) = self.file.write_all_at(&bytes, self.len) {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        let slots = records.iter().zip(positions).map(|(record, position)| Slot { record: record.clone(), position });
        self.slots.extend(slots);
        Ok(())
    }

    /// The file to fsync so that everything appended so far is durable; synced by the caller
    /// without holding the side index.
    pub fn sync_handle(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Drops every record with index `>= index` and syncs the cut. Returns the dropped
    /// records, oldest first.
    pub fn truncate_from(&mut self, index: u64) -> io::Result<Vec<SideRecord>> {
        let at = self.slots.partition_point(|s| s.record.log_id.index < index);
        let Some(first) = self.slots.get(at) else { return Ok(Vec::new()) };
        let position = first.position;
        self.file.set_len(position)?;
        self.file.sync_data()?;
        self.len = position;
        Ok(self.slots.drain(at..).map(|s| s.record).collect())
    }

    /// Drops every record up to `log_id` (inclusive) and stores it as the last purged one;
    /// `log_id` may be past the last record (a snapshot ahead of the log). The file is
    /// rewritten when most of it is purged.
    pub fn purge_to(&mut self, log_id: LogId<NodeId>) -> Result<(), SideIndexError> {
        if self.base.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let at = self.slots.partition_point(|s| s.record.log_id.index <= log_id.index);
        let next_offset = self.slots.iter().take(at).rev().find_map(|s| match s.record.kind {
            EntryKind::Batches { last_offset, .. } => Some(last_offset + 1),
            _ => None,
        });
        let base = Base { last_purged: Some(log_id), next_offset: next_offset.unwrap_or(self.base.next_offset) };
        store_base(&self.dir, &base)?;
        self.base = base;
        self.slots.drain(..at);
        self.purged_in_file += at;
        if self.purged_in_file >= COMPACT_PURGED_RECORDS_MIN && self.purged_in_file > self.slots.len() {
            self.compact().map_err(io_at(&self.dir.join(SIDE_INDEX_FILE)))?;
        }
        Ok(())
    }

    /// After a snapshot reset the log to start at `next_offset` with none of the kept
    /// entries' batches: the base records that, so reopening agrees with the reset log.
    pub fn note_reset(&mut self, last_purged: LogId<NodeId>, next_offset: i64) -> Result<(), SideIndexError> {
        let base = Base { last_purged: Some(last_purged).max(self.base.last_purged), next_offset };
        store_base(&self.dir, &base)?;
        self.base = base;
        let at = self.slots.partition_point(|s| s.record.log_id.index <= last_purged.index);
        self.slots.drain(..at);
        self.purged_in_file += at;
        Ok(())
    }

    /// Rewrites the file with only the live records (temp file, fsync, rename).
    fn compact(&mut self) -> io::Result<()> {
        let mut bytes = Vec::new();
        let mut positions = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            positions.push(bytes.len() as u64);
            encode(&slot.record, &mut bytes)?;
        }
        let path = self.dir.join(SIDE_INDEX_FILE);
        let file = atomic_file::replace_with(&path, |f| f.write_all_at(&bytes, 0))?;
        for (slot, position) in self.slots.iter_mut().zip(positions) {
            slot.position = position;
        }
        self.file = Arc::new(file);
        self.len = bytes.len() as u64;
        self.purged_in_file = 0;
        Ok(())
    }
}

fn encode(record: &SideRecord, out: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(record).map_err(io::Error::other)?;
    if payload.len() > SIDE_RECORD_BYTES_MAX {
        return Err(io::Error::other(format!(
            "side record of {} bytes exceeds {SIDE_RECORD_BYTES_MAX}",
            payload.len()
        )));
    }
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Every valid record from the start, the length of the valid prefix, and the file length.
/// Reading stops at the first short, oversized, corrupt or out-of-order record.
fn read_records(file: &File) -> io::Result<(Vec<Slot>, u64, u64)> {
    let file_len = file.metadata()?.len();
    let mut slots: Vec<Slot> = Vec::new();
    let mut position = 0u64;
    let mut header = [0u8; SIDE_RECORD_HEADER_LEN];
    while position + SIDE_RECORD_HEADER_LEN as u64 <= file_len {
        file.read_exact_at(&mut header, position)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let payload_at = position + SIDE_RECORD_HEADER_LEN as u64;
        if len > SIDE_RECORD_BYTES_MAX || payload_at + len as u64 > file_len {
            break;
        }
        let mut payload = vec![0u8; len];
        file.read_exact_at(&mut payload, payload_at)?;
        if crc32c::crc32c(&payload) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<SideRecord>(&payload) else { break };
        if slots.last().is_some_and(|s| s.record.log_id.index >= record.log_id.index) {
            break;
        }
        slots.push(Slot { record, position });
        position = payload_at + len as u64;
    }
    Ok((slots, position, file_len))
}

fn load_base(dir: &Path) -> Result<Option<Base>, SideIndexError> {
    let path = dir.join(SIDE_INDEX_BASE_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SideIndexError::Io { path, source: e }),
    };
    let len = file.metadata().map_err(io_at(&path))?.len();
    if len > BASE_FILE_BYTES_MAX {
        return Err(SideIndexError::BadBase { path, why: format!("{len} bytes, at most {BASE_FILE_BYTES_MAX}") });
    }
    let bytes = std::fs::read(&path).map_err(io_at(&path))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| SideIndexError::BadBase { path, why: e.to_string() })
}

fn store_base(dir: &Path, base: &Base) -> Result<(), SideIndexError> {
    let path = dir.join(SIDE_INDEX_BASE_FILE);
    let bytes =
        serde_json::to_vec(base).map_err(|e| SideIndexError::BadBase { path: path.clone(), why: e.to_string() })?;
    atomic_file::replace(&path, &bytes).map_err(io_at(&path))
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> SideIndexError + '_ {
    move |source| SideIndexError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn batches(index: u64, base_offset: i64) -> SideRecord {
        SideRecord {
            log_id: log_id(1, index),
            kind: EntryKind::Batches { base_offset, last_offset: base_offset + 1, bytes: 70 },
        }
    }

    /// Records survive a reopen; a torn tail is cut and the next append follows the good prefix.
    #[test]
    fn reopen_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut side = SideIndex::open(dir.path(), 0).unwrap();
        let blank = SideRecord { log_id: log_id(1, 1), kind: EntryKind::Blank };
        side.append(&[blank.clone(), batches(2, 0), batches(3, 2)]).unwrap();
        drop(side);
        let path = dir.path().join(SIDE_INDEX_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let mut side = SideIndex::open(dir.path(), 0).unwrap();
        assert_eq!(side.range(0, 10), vec![blank.clone(), batches(2, 0)]);
        assert_eq!(side.next_offset(), 2);
        side.append(&[batches(3, 2)]).unwrap();
        drop(side);
        let side = SideIndex::open(dir.path(), 0).unwrap();
        assert_eq!(side.range(0, 10).len(), 3);
        assert_eq!(side.last(), Some(&batches(3, 2)));
    }

    /// A flipped payload byte fails the CRC: that record and everything after it are dropped.
    #[test]
    fn corrupt_record_ends_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut side = SideIndex::open(dir.path(), 0).unwrap();
        side.append(&[batches(1, 0), batches(2, 2), batches(3, 4)]).unwrap();
        let second = side.slots[1].position;
        drop(side);
        let path = dir.path().join(SIDE_INDEX_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second as usize + SIDE_RECORD_HEADER_LEN + 2] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        let side = SideIndex::open(dir.path(), 0).unwrap();
        assert_eq!(side.range(0, 10), vec![batches(1, 0)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), second);
    }

    /// Retention's purge point stops before the first entry holding a record at or past the
    /// offset (Raft-only entries before it go too); what stays needed starts at that entry.
    #[test]
    fn purge_point_below_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut side = SideIndex::open(dir.path(), 10).unwrap();
        assert_eq!(side.purge_point_below(100), None);
        assert_eq!(side.first_needed_offset(), 10);
        let blank = SideRecord { log_id: log_id(1, 3), kind: EntryKind::Blank };
        side.append(&[batches(1, 10), batches(2, 12), blank, batches(4, 14)]).unwrap();
        assert_eq!(side.purge_point_below(10), None);
        assert_eq!(side.purge_point_below(13), Some(1));
        assert_eq!(side.purge_point_below(14), Some(3));
        assert_eq!(side.purge_point_below(16), Some(4));
        side.purge_to(log_id(1, 3)).unwrap();
        assert_eq!(side.first_needed_offset(), 14);
        side.purge_to(log_id(1, 4)).unwrap();
        assert_eq!(side.first_needed_offset(), 16);
        assert_eq!(side.purge_point_below(100), None);
    }

    /// Truncation drops the suffix on disk; purge drops the prefix and is remembered, with the
    /// offset after the purged batches, across a reopen.
    #[test]
    fn truncate_and_purge_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut side = SideIndex::open(dir.path(), 10).unwrap();
        assert_eq!(side.next_offset(), 10);
        side.append(&[batches(1, 10), batches(2, 12), batches(3, 14), batches(4, 16)]).unwrap();
        let dropped = side.truncate_from(3).unwrap();
        assert_eq!(dropped, vec![batches(3, 14), batches(4, 16)]);
        side.purge_to(log_id(1, 1)).unwrap();
        assert_eq!(side.base(), Base { last_purged: Some(log_id(1, 1)), next_offset: 12 });
        drop(side);
        let mut side = SideIndex::open(dir.path(), 0).unwrap();
        assert_eq!(side.range(0, 10), vec![batches(2, 12)]);
        assert_eq!(side.last_purged(), Some(log_id(1, 1)));
        side.purge_to(log_id(1, 20)).unwrap();
        assert!(side.is_empty());
        assert_eq!(side.next_offset(), 14);
        side.compact().unwrap();
        drop(side);
        let side = SideIndex::open(dir.path(), 0).unwrap();
        assert!(side.is_empty());
        assert_eq!(side.base(), Base { last_purged: Some(log_id(1, 20)), next_offset: 14 });
    }
}
