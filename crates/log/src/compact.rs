//! Log compaction (Kafka's `cleanup.policy=compact`): the record-level work of one pass over
//! closed segments. `partition/compaction.rs` decides which segments a pass covers and swaps
//! the cleaned files in.
//!
//! A pass first maps each key to its latest offset over the *dirty* segments (those not yet
//! compacted), within `KEY_MAP_BYTES_MAX`; then every segment from the log start up to where
//! the map ends is rewritten without the records a later record of the same key supersedes,
//! and without tombstones whose `delete.retention.ms` has passed. A record beyond the map's
//! end is never dropped (no later offset of its key is in the map), so a map that fills up
//! only makes the pass shorter, never wrong; the next pass goes on from there.
//!
//! A rewritten segment keeps every batch's base offset and last offset delta, so offsets and
//! the next offset do not move. Batches left with no records are merged, run by run, into one
//! empty batch spanning their offsets (Kafka's empty batch header: clients skip to its last
//! offset + 1), so a segment's batches stay dense and the log's own checks (a batch starts
//! where the previous one ended) still catch a damaged base offset. A producer's last batch in
//! the segment stays on its own, emptied, with its producer fields: idempotent producer state
//! is rebuilt from batch headers, as Kafka's cleaner keeps that batch for the same reason.
//!
//! The cleaned segment is written to `<base>.log.tmp` (and its indexes to `.index.tmp`,
//! `.timeindex.tmp`) and fsynced before anything is renamed; recovery deletes `.tmp` files.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sluice_records::convert::{self, KeyedRecord, Retained};

use crate::atomic_file::tmp_path;
use crate::batch::{self, BatchHeader};
use crate::cadence::Cadence;
use crate::error::CompactError;
use crate::index::OffsetEntry;
use crate::index_file::Entry;
use crate::layout::{file_path, INDEX_SUFFIX, LOG_SUFFIX, SCAN_CHUNK_BYTES, TIME_INDEX_SUFFIX};
use crate::scan::{ScanError, Scanner};
use crate::segment::SegmentView;
use crate::time_index::TimeEntry;

/// Memory one pass's key map may take: Kafka's cleaner dedupe buffer is 128 MiB shared by its
/// threads; one compactor runs at a time here, so a pass over a log with more distinct keys
/// than fit simply covers less and the next pass goes on.
pub const KEY_MAP_BYTES_MAX: usize = 16 << 20;
/// What a map entry costs besides its key's bytes (hash table slot, box header, offset).
const KEY_ENTRY_OVERHEAD_BYTES: usize = 64;
/// Output buffer of a segment rewrite.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Each key's latest offset in the dirty part of the log.
#[derive(Debug, Default)]
pub struct KeyMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
}

impl KeyMap {
    fn insert(&mut self, key: &[u8], offset: i64) {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = (*latest).max(offset);
            return;
        }
        self.bytes += key.len() + KEY_ENTRY_OVERHEAD_BYTES;
        self.latest.insert(key.into(), offset);
    }

    fn superseded(&self, key: &[u8], offset: i64) -> bool {
        self.latest.get(key).is_some_and(|&latest| latest > offset)
    }
}

/// Maps the keys of every record at or after `from` in `views` (oldest first), stopping after
/// the batch that fills `bytes_max`. Returns the map and the offset after the last batch mapped.
pub fn build_key_map(views: &[SegmentView], from: i64, bytes_max: usize) -> Result<(KeyMap, i64), CompactError> {
    let mut map = KeyMap::default();
    let mut end = from;
    for view in views {
        let mut scanner = Scanner::new(&view.file, 0, view.len, SCAN_CHUNK_BYTES);
        while let Some((header, bytes)) = scanner.next_batch().map_err(|e| scan_error(e, view))? {
            if header.last_offset() < from {
                continue;
            }
            let visited = convert::visit_records(bytes, &mut |r| {
                if let (Some(key), true) = (r.key, r.offset >= from) {
                    map.insert(key, r.offset);
                }
            });
            if let Err(e) = visited {
                // Its keys stay out of the map, so nothing older is dropped for them; the
                // batch itself is kept whole (`clean_segment`).
                tracing::warn!(segment = view.base_offset, batch = header.base_offset, error = %e, "batch not compacted");
            }
            end = header.last_offset() + 1;
            if map.bytes >= bytes_max {
                return Ok((map, end));
            }
        }
    }
    Ok((map, end))
}

/// What to drop from one segment.
pub struct Rules<'a> {
    pub map: &'a KeyMap,
    /// Whether this segment's tombstones have outlived `delete.retention.ms`.
    pub drop_tombstones: bool,
    pub index_interval_bytes: u32,
}

/// A cleaned segment written and fsynced beside the original, not yet swapped in.
#[derive(Debug)]
pub struct Cleaned {
    pub base_offset: i64,
    /// The original's length: the swap is abandoned if the segment changed meanwhile.
    pub source_len: u64,
    pub log: File,
    pub len: u64,
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
    pub records_removed: u64,
    /// Tombstones still in the cleaned segment (their retention has not passed).
    pub tombstones_kept: bool,
}

impl Cleaned {
    /// Removes the temp files of a cleaned segment that will not be swapped in.
    pub fn discard(&self, dir: &Path) {
        for path in temp_paths(dir, self.base_offset) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The temp files a rewrite of segment `base` writes: log, offset index, time index.
pub fn temp_paths(dir: &Path, base: i64) -> [PathBuf; 3] {
    [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX].map(|suffix| tmp_path(&file_path(dir, base, suffix)))
}

/// What `clean_segment` made of a segment.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to remove: the original stays and no file is left behind.
    Unchanged {
        tombstones_kept: bool,
    },
    Cleaned(Cleaned),
}

/// Rewrites one closed segment by `rules` into its temp files (fsynced).
pub fn clean_segment(dir: &Path, view: &SegmentView, rules: &Rules<'_>) -> Result<Outcome, CompactError> {
    let producers_last = last_batch_of_each_producer(view)?;
    let [log_path, index_path, time_path] = temp_paths(dir, view.base_offset);
    let mut rewrite = Rewrite::new(view.base_offset, rules.index_interval_bytes);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, create(&log_path)?);
    let mut scanner = Scanner::new(&view.file, 0, view.len, SCAN_CHUNK_BYTES);
    while let Some((header, bytes)) = scanner.next_batch().map_err(|e| scan_error(e, view))? {
        let mut tombstones = false;
        let mut keep = |r: KeyedRecord<'_>| {
            let kept = match r.key {
                None => true,
                Some(key) => !(rules.map.superseded(key, r.offset) || r.tombstone && rules.drop_tombstones),
            };
            tombstones |= kept && r.tombstone;
            kept
        };
        // A batch whose records cannot be read (the CRC held: a decompression bomb, records
        // the producer framed badly) is kept as it is rather than stopping every pass.
        let retained = convert::retain_records(bytes, &mut keep).unwrap_or(Retained::Whole);
        rewrite.tombstones_kept |= tombstones;
        match retained {
            Retained::Whole => rewrite.write(&mut out, &header, bytes)?,
            Retained::Rewritten { batch, records } => {
                rewrite.records_removed += (header.records_count.max(0) as usize).saturating_sub(records) as u64;
                rewrite.changed = true;
                if records == 0 && !producers_last.contains(&header.base_offset) {
                    rewrite.extend_empty_run(&mut out, &header)?;
                    continue;
                }
                let new_header = BatchHeader::parse(&batch).map_err(|e| corrupt(view, header.base_offset, e))?;
                rewrite.write(&mut out, &new_header, &batch)?;
            }
        }
    }
    rewrite.end_empty_run(&mut out)?;
    let log = out.into_inner().map_err(|e| e.into_error())?;
    if !rewrite.changed {
        let _ = std::fs::remove_file(&log_path);
        return Ok(Outcome::Unchanged { tombstones_kept: rewrite.tombstones_kept });
    }
    log.sync_all()?;
    let times = rewrite.finish_times();
    write_index(&index_path, &rewrite.offsets)?;
    write_index(&time_path, &times)?;
    Ok(Outcome::Cleaned(Cleaned {
        base_offset: view.base_offset,
        source_len: view.len,
        log,
        len: rewrite.position,
        offsets: rewrite.offsets,
        times,
        records_removed: rewrite.records_removed,
        tombstones_kept: rewrite.tombstones_kept,
    }))
}

/// The base offsets of each producer's last batch in the segment.
fn last_batch_of_each_producer(view: &SegmentView) -> Result<HashSet<i64>, CompactError> {
    let mut last_of_producer: HashMap<i64, i64> = HashMap::new();
    let mut scanner = Scanner::new(&view.file, 0, view.len, SCAN_CHUNK_BYTES);
    while let Some(header) = scanner.next_header().map_err(|e| scan_error(e, view))? {
        if header.producer_id >= 0 {
            last_of_producer.insert(header.producer_id, header.base_offset);
        }
    }
    Ok(last_of_producer.into_values().collect())
}

/// The cleaned segment as it is written: position, index entries, what was removed.
struct Rewrite {
    base_offset: i64,
    interval_bytes: u32,
    position: u64,
    cadence: Cadence,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    records_removed: u64,
    tombstones_kept: bool,
    changed: bool,
    /// Consecutive batches emptied so far, not yet written: (first header, last offset,
    /// largest max timestamp).
    empty_run: Option<(BatchHeader, i64, i64)>,
}

impl Rewrite {
    fn new(base_offset: i64, interval_bytes: u32) -> Rewrite {
        Rewrite {
            base_offset,
            interval_bytes,
            position: 0,
            cadence: Cadence::new(),
            offsets: Vec::new(),
            times: Vec::new(),
            records_removed: 0,
            tombstones_kept: false,
            changed: false,
            empty_run: None,
        }
    }

    /// Adds an emptied batch to the run that becomes one empty batch.
    fn extend_empty_run(&mut self, out: &mut impl Write, header: &BatchHeader) -> io::Result<()> {
        if let Some((first, _, _)) = &self.empty_run {
            if header.last_offset() - first.base_offset > i32::MAX as i64 {
                self.end_empty_run(out)?;
            }
        }
        let run = self.empty_run.get_or_insert((*header, header.last_offset(), header.max_timestamp));
        run.1 = header.last_offset();
        run.2 = run.2.max(header.max_timestamp);
        Ok(())
    }

    /// Writes the pending run of emptied batches as one empty batch.
    fn end_empty_run(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some((first, last_offset, max_timestamp)) = self.empty_run.take() else { return Ok(()) };
        let bytes = batch::empty_batch(&first, last_offset, max_timestamp);
        let header = BatchHeader::parse(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.write(out, &header, &bytes)
    }

    fn write(&mut self, out: &mut impl Write, header: &BatchHeader, bytes: &[u8]) -> io::Result<()> {
        if self.empty_run.as_ref().is_some_and(|run| run.0.base_offset < header.base_offset) {
            self.end_empty_run(out)?;
        }
        let due = self.cadence.observe(self.base_offset, self.position, header, self.interval_bytes);
        self.offsets.extend(due.offset);
        self.times.extend(due.time);
        out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn finish_times(&mut self) -> Vec<TimeEntry> {
        let mut times = std::mem::take(&mut self.times);
        times.extend(self.cadence.final_time_entry());
        times
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)
}

fn write_index<E: Entry>(path: &Path, entries: &[E]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(entries.len() * E::LEN);
    for entry in entries {
        entry.encode(&mut bytes);
    }
    let file = create(path)?;
    file.write_all_at(&bytes, 0)?;
    file.sync_all()
}

fn scan_error(e: ScanError, view: &SegmentView) -> CompactError {
    match e {
        ScanError::Io(e) => CompactError::Io(e),
        ScanError::Corrupt { position, reason } => CompactError::Corrupt {
            segment: view.base_offset,
            offset: view.base_offset,
            reason: format!("at byte {position}: {reason}"),
        },
    }
}

fn corrupt(view: &SegmentView, offset: i64, reason: impl ToString) -> CompactError {
    CompactError::Corrupt { segment: view.base_offset, offset, reason: reason.to_string() }
}
