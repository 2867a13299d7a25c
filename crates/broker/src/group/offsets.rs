//! Committed offsets: an in-memory map backed by an append-only log,
//! `<data_dir>/groups/offsets.log`. Every write gets a sequence number; the coordinator
//! fsyncs through it (group commit, outside this store's lock) before acknowledging, and
//! a failed fsync poisons the store, as it poisons a partition log. A failed write is cut
//! back and does not poison (a full disk). On open the log is replayed, a torn or corrupt
//! tail is truncated, and the file is compacted when most of its records are superseded;
//! a compaction while running copies a snapshot outside the lock (`CompactionPlan`) and
//! swaps the file under it, carrying over what was appended meanwhile.
//!
//! Record layout (big-endian):
//! ```text
//! len: u32 (payload bytes) | crc32c: u32 (of payload) | payload
//! payload: kind: u8 | group_len: u16 | group | topic_len: u16 | topic | partition: i32
//!          | offset: i64 | leader_epoch: i32 | commit_ts_ms: i64 | metadata_len: i32 (-1 = null) | metadata
//! kind: 1 = commit, 2 = delete one partition's offset, 3 = delete the whole group (topic empty)
//! ```

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest metadata string kept with an offset (Kafka's `offset.metadata.max.bytes`).
pub const METADATA_BYTES_MAX: usize = 4096;
/// Longest group id accepted: bounds record size and memory per group.
pub const GROUP_ID_BYTES_MAX: usize = 1024;
/// Longest topic name kept (Kafka's limit is 249).
pub const TOPIC_BYTES_MAX: usize = 255;
/// Fixed part of a payload: kind, two string lengths, partition, offset, epoch, timestamp, metadata length.
const PAYLOAD_FIXED_BYTES: usize = 1 + 2 + 2 + 4 + 8 + 4 + 8 + 4;
/// Largest payload a valid record can have; anything longer on disk is corruption.
const PAYLOAD_BYTES_MAX: usize = PAYLOAD_FIXED_BYTES + GROUP_ID_BYTES_MAX + TOPIC_BYTES_MAX + METADATA_BYTES_MAX;
const HEADER_BYTES: usize = 8;
/// Total committed offsets held (all groups): bounds memory; commits beyond it are refused.
pub const OFFSETS_MAX: usize = 1_000_000;
/// Compact when superseded records exceed both this count and the live count.
const COMPACT_SLACK_RECORDS: u64 = 10_000;

const KIND_COMMIT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_DELETE_GROUP: u8 = 3;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ts_ms: i64,
}

type GroupOffsets = HashMap<(String, i32), Committed>;

pub struct OffsetStore {
    path: PathBuf,
    file: File,
    /// group → (topic, partition) → committed offset.
    offsets: HashMap<String, GroupOffsets>,
    /// Records in the file, live or superseded: drives compaction.
    records: u64,
    live: usize,
    /// Sequence number of the last write (one per `write` call).
    written_seq: u64,
    /// Every write up to this sequence number is fsynced.
    synced_seq: u64,
    /// Bytes of a torn or corrupt tail cut off when the store was opened (for `/metrics`).
    truncated_at_open: u64,
    /// A failed write that could not be cut back, or a failed fsync, poisons the store:
    /// later writes fail instead of appending behind a partial or lost record (an fsync is
    /// never retried: the kernel may have dropped the dirty pages it failed to write).
    poisoned: bool,
    /// A compaction is copying a snapshot outside the lock: no second one starts.
    compacting: bool,
}

/// A compaction in progress: the live offsets as of `snapshot_len` bytes of the file,
/// written to a new file outside the store's lock, then swapped in by `finish_compaction`.
pub struct CompactionPlan {
    tmp: PathBuf,
    snapshot: Vec<u8>,
    snapshot_len: u64,
    live: usize,
    dead: u64,
}

/// A handle to fsync outside the store's lock, and the sequence number it covers.
pub struct SyncTarget {
    pub file: File,
    pub through_seq: u64,
}

impl OffsetStore {
    pub fn open(dir: &Path) -> std::io::Result<OffsetStore> {
        sluice_log::durable_dir::create_dir_all(dir)?;
        let path = dir.join("offsets.log");
        // A commit acknowledged into a file whose name a power cut drops would be lost.
        sluice_log::durable_dir::create_file(&path)?;
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let (offsets, records, good_len) = replay(&mut file)?;
        let file_len = file.metadata()?.len();
        let truncated_at_open = file_len.saturating_sub(good_len);
        if good_len < file_len {
            tracing::warn!(path = %path.display(), dropped_bytes = file_len - good_len, "truncating torn or corrupt tail of offsets log");
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        let live = offsets.values().map(HashMap::len).sum();
        let mut store = OffsetStore {
            path,
            file,
            offsets,
            records,
            live,
            written_seq: 0,
            synced_seq: 0,
            truncated_at_open,
            poisoned: false,
            compacting: false,
        };
        store.compact_if_needed()?;
        Ok(store)
    }

    /// Bytes cut from a torn or corrupt tail when the store was opened.
    pub fn truncated_at_open(&self) -> u64 {
        self.truncated_at_open
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Committed> {
        self.offsets.get(group)?.get(&(topic.to_string(), partition))
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let mut all: Vec<_> = self
            .offsets
            .get(group)
            .map(|m| m.iter().map(|((t, p), c)| (t.clone(), *p, c.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.offsets.keys()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.offsets.get(group).is_some_and(|m| !m.is_empty())
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Writes the commits and then applies them; nothing is applied if the write fails.
    /// Returns the write's sequence number, for `is_synced_through`.
    pub fn commit(&mut self, group: &str, entries: &[(String, i32, Committed)]) -> std::io::Result<u64> {
        let new = entries.iter().filter(|(t, p, _)| self.get(group, t, *p).is_none()).count();
        if self.live + new > OFFSETS_MAX {
            return Err(std::io::Error::other("too many committed offsets"));
        }
        let mut buf = Vec::with_capacity(entries.len() * 64);
        for (topic, partition, c) in entries {
            encode(&mut buf, KIND_COMMIT, group, topic, *partition, c);
        }
        self.write(&buf)?;
        let map = self.offsets.entry(group.to_string()).or_default();
        for (topic, partition, c) in entries {
            map.insert((topic.clone(), *partition), c.clone());
        }
        self.records += entries.len() as u64;
        self.live += new;
        Ok(self.written_seq)
    }

    /// Deletes some offsets of a group; returns how many existed.
    pub fn delete(&mut self, group: &str, partitions: &[(String, i32)]) -> std::io::Result<usize> {
        let mut buf = Vec::new();
        let blank = Committed { offset: -1, leader_epoch: -1, metadata: None, commit_ts_ms: 0 };
        for (topic, partition) in partitions {
            encode(&mut buf, KIND_DELETE, group, topic, *partition, &blank);
        }
        self.write(&buf)?;
        self.records += partitions.len() as u64;
        let mut removed = 0;
        if let Some(map) = self.offsets.get_mut(group) {
            for (topic, partition) in partitions {
                removed += usize::from(map.remove(&(topic.clone(), *partition)).is_some());
            }
            if map.is_empty() {
                self.offsets.remove(group);
            }
        }
        self.live -= removed;
        Ok(removed)
    }

    pub fn delete_group(&mut self, group: &str) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let blank = Committed { offset: -1, leader_epoch: -1, metadata: None, commit_ts_ms: 0 };
        encode(&mut buf, KIND_DELETE_GROUP, group, "", -1, &blank);
        self.write(&buf)?;
        self.records += 1;
        if let Some(map) = self.offsets.remove(group) {
            self.live -= map.len();
        }
        Ok(())
    }

    /// Deletes every group's offsets of `topic` (the topic was deleted, as Kafka does);
    /// returns how many existed. One tombstone per offset, so a replay drops them too.
    pub fn delete_topic(&mut self, topic: &str) -> std::io::Result<usize> {
        let doomed: Vec<(String, i32)> = self
            .offsets
            .iter()
            .flat_map(|(group, map)| {
                map.keys().filter(|(t, _)| t == topic).map(move |(_, partition)| (group.clone(), *partition))
            })
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        let blank = Committed { offset: -1, leader_epoch: -1, metadata: None, commit_ts_ms: 0 };
        for (group, partition) in &doomed {
            encode(&mut buf, KIND_DELETE, group, topic, *partition, &blank);
        }
        self.write(&buf)?;
        self.records += doomed.len() as u64;
        for (group, partition) in &doomed {
            let record = Record {
                kind: KIND_DELETE,
                group: group.clone(),
                topic: topic.to_string(),
                partition: *partition,
                committed: blank.clone(),
            };
            apply(&mut self.offsets, record);
        }
        self.live -= doomed.len();
        Ok(doomed.len())
    }

    /// Sequence number of the last write: what an fsync must cover to make it durable.
    pub fn written_seq(&self) -> u64 {
        self.written_seq
    }

    /// Whether every write through `seq` is fsynced; an error once the store is poisoned.
    pub fn is_synced_through(&self, seq: u64) -> std::io::Result<bool> {
        if self.poisoned {
            return Err(poisoned_error());
        }
        Ok(self.synced_seq >= seq)
    }

    /// A handle to fsync outside the store's lock, if anything was written since the last
    /// fsync; report the outcome with `synced` or `sync_failed`.
    pub fn sync_target(&self) -> std::io::Result<Option<SyncTarget>> {
        if self.poisoned {
            return Err(poisoned_error());
        }
        if self.synced_seq >= self.written_seq {
            return Ok(None);
        }
        Ok(Some(SyncTarget { file: self.file.try_clone()?, through_seq: self.written_seq }))
    }

    pub fn synced(&mut self, through_seq: u64) {
        self.synced_seq = self.synced_seq.max(through_seq);
    }

    /// An fsync failed: the pages it covered may be lost, so nothing more is accepted.
    pub fn sync_failed(&mut self, error: &std::io::Error) {
        self.poisoned = true;
        tracing::error!(path = %self.path.display(), %error, "offsets log fsync failed; refusing further commits");
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Rewrites the file with only live offsets when superseded records dominate, all
    /// under the caller's lock (at open, and in tests).
    pub fn compact_if_needed(&mut self) -> std::io::Result<()> {
        let Some(plan) = self.plan_compaction() else { return Ok(()) };
        if let Err(e) = plan.write() {
            self.abandon_compaction(&plan);
            return Err(e);
        }
        self.finish_compaction(plan)
    }

    /// Starts a compaction if superseded records dominate: the snapshot to write outside
    /// the lock. `None` when not needed, poisoned, or one is already running.
    pub fn plan_compaction(&mut self) -> Option<CompactionPlan> {
        let dead = self.records.saturating_sub(self.live as u64);
        if self.poisoned || self.compacting || dead <= COMPACT_SLACK_RECORDS || dead <= self.live as u64 {
            return None;
        }
        let snapshot_len = self.file.stream_position().ok()?;
        let mut snapshot = Vec::with_capacity(self.live * 64);
        for (group, map) in &self.offsets {
            for ((topic, partition), c) in map {
                encode(&mut snapshot, KIND_COMMIT, group, topic, *partition, c);
            }
        }
        self.compacting = true;
        Some(CompactionPlan {
            tmp: self.path.with_extension("log.compacting"),
            snapshot,
            snapshot_len,
            live: self.live,
            dead,
        })
    }

    /// Swaps the compacted file in: appends what was written to the old file after the
    /// snapshot, fsyncs, renames over the old file. On error the old file stays in use.
    pub fn finish_compaction(&mut self, plan: CompactionPlan) -> std::io::Result<()> {
        self.compacting = false;
        let swapped = self.swap_compacted(&plan);
        if swapped.is_err() {
            let _ = fs::remove_file(&plan.tmp);
        }
        swapped
    }

    /// Abandons a compaction whose file could not be written.
    pub fn abandon_compaction(&mut self, plan: &CompactionPlan) {
        self.compacting = false;
        let _ = fs::remove_file(&plan.tmp);
    }

    fn swap_compacted(&mut self, plan: &CompactionPlan) -> std::io::Result<()> {
        if self.poisoned {
            return Err(poisoned_error());
        }
        let end = self.file.stream_position()?;
        let mut tail = vec![0u8; end.saturating_sub(plan.snapshot_len) as usize];
        read_exact_at(&self.file, &mut tail, plan.snapshot_len)?;
        let tail_records = count_records(&tail);
        let mut out = OpenOptions::new().append(true).open(&plan.tmp)?;
        out.write_all(&tail)?;
        out.sync_all()?;
        fs::rename(&plan.tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        tracing::info!(path = %self.path.display(), live = plan.live, dropped = plan.dead, carried = tail_records,
            "offsets log compacted");
        self.file = file;
        self.records = plan.live as u64 + tail_records;
        // Everything in the new file was fsynced above.
        self.synced_seq = self.written_seq;
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.poisoned {
            return Err(poisoned_error());
        }
        let before = self.file.stream_position()?;
        if let Err(e) = self.file.write_all(buf) {
            // A full disk leaves part of the records written. Cut them off so the file ends
            // on a whole record again and later commits can go through once space is freed;
            // a partial record left in place would hide every record appended after it.
            let cut = self.file.set_len(before).and_then(|()| self.file.seek(SeekFrom::Start(before)));
            match cut {
                Ok(_) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "offsets log write failed; commit refused, nothing partial kept")
                }
                Err(cut_error) => {
                    self.poisoned = true;
                    tracing::error!(path = %self.path.display(), error = %e, %cut_error, "offsets log write failed and could not be cut back; refusing further commits");
                }
            }
            return Err(e);
        }
        self.written_seq += 1;
        Ok(())
    }
}

impl CompactionPlan {
    /// Writes the snapshot to the temporary file and fsyncs it (no lock held).
    pub fn write(&self) -> std::io::Result<()> {
        let mut out = File::create(&self.tmp)?;
        out.write_all(&self.snapshot)?;
        out.sync_all()
    }

    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
}

fn poisoned_error() -> std::io::Error {
    std::io::Error::other("offsets log poisoned by an earlier write or fsync failure")
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

/// Records in a run of whole records written by this store.
fn count_records(mut bytes: &[u8]) -> u64 {
    let mut n = 0;
    while bytes.len() >= HEADER_BYTES {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let Some(rest) = bytes.get(HEADER_BYTES + len..) else { break };
        bytes = rest;
        n += 1;
    }
    n
}

fn encode(buf: &mut Vec<u8>, kind: u8, group: &str, topic: &str, partition: i32, c: &Committed) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    buf.push(kind);
    buf.extend_from_slice(&(group.len() as u16).to_be_bytes());
    buf.extend_from_slice(group.as_bytes());
    buf.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    buf.extend_from_slice(topic.as_bytes());
    buf.extend_from_slice(&partition.to_be_bytes());
    buf.extend_from_slice(&c.offset.to_be_bytes());
    buf.extend_from_slice(&c.leader_epoch.to_be_bytes());
    buf.extend_from_slice(&c.commit_ts_ms.to_be_bytes());
    match &c.metadata {
        Some(m) => {
            buf.extend_from_slice(&(m.len() as i32).to_be_bytes());
            buf.extend_from_slice(m.as_bytes());
        }
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    let payload_len = buf.len() - start - HEADER_BYTES;
    debug_assert!(payload_len <= PAYLOAD_BYTES_MAX);
    let crc = crc32c(&buf[start + HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_be_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Replays the log; returns the offsets, the record count and the length of the valid prefix.
fn replay(file: &mut File) -> std::io::Result<(HashMap<String, GroupOffsets>, u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let mut offsets: HashMap<String, GroupOffsets> = HashMap::new();
    let mut records = 0u64;
    let mut good = 0u64;
    let mut payload = vec![0u8; PAYLOAD_BYTES_MAX];
    loop {
        let mut header = [0u8; HEADER_BYTES];
        if read_full(&mut reader, &mut header)? < HEADER_BYTES {
            break;
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if !(PAYLOAD_FIXED_BYTES..=PAYLOAD_BYTES_MAX).contains(&len) {
            break;
        }
        let body = &mut payload[..len];
        if read_full(&mut reader, body)? < len || crc32c(body) != crc {
            break;
        }
        let Some(record) = decode(body) else { break };
        apply(&mut offsets, record);
        records += 1;
        good += (HEADER_BYTES + len) as u64;
    }
    Ok((offsets, records, good))
}

struct Record {
    kind: u8,
    group: String,
    topic: String,
    partition: i32,
    committed: Committed,
}

fn apply(offsets: &mut HashMap<String, GroupOffsets>, r: Record) {
    match r.kind {
        KIND_COMMIT => {
            offsets.entry(r.group).or_default().insert((r.topic, r.partition), r.committed);
        }
        KIND_DELETE => {
            if let Some(map) = offsets.get_mut(&r.group) {
                map.remove(&(r.topic, r.partition));
                if map.is_empty() {
                    offsets.remove(&r.group);
                }
            }
        }
        _ => {
            offsets.remove(&r.group);
        }
    }
}

/// Decodes a payload whose CRC matched; `None` if its fields are inconsistent.
fn decode(mut b: &[u8]) -> Option<Record> {
    let kind = take::<1>(&mut b)?[0];
    if !matches!(kind, KIND_COMMIT | KIND_DELETE | KIND_DELETE_GROUP) {
        return None;
    }
    let group = take_str(&mut b)?;
    let topic = take_str(&mut b)?;
    let partition = i32::from_be_bytes(take::<4>(&mut b)?);
    let offset = i64::from_be_bytes(take::<8>(&mut b)?);
    let leader_epoch = i32::from_be_bytes(take::<4>(&mut b)?);
    let commit_ts_ms = i64::from_be_bytes(take::<8>(&mut b)?);
    let meta_len = i32::from_be_bytes(take::<4>(&mut b)?);
    let metadata = if meta_len < 0 {
        None
    } else {
        let n = meta_len as usize;
        let bytes = b.get(..n)?;
        b = &b[n..];
        Some(String::from_utf8(bytes.to_vec()).ok()?)
    };
    if !b.is_empty() {
        return None;
    }
    Some(Record {
        kind,
        group,
        topic,
        partition,
        committed: Committed { offset, leader_epoch, metadata, commit_ts_ms },
    })
}

fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let head: [u8; N] = b.get(..N)?.try_into().ok()?;
    *b = &b[N..];
    Some(head)
}

fn take_str(b: &mut &[u8]) -> Option<String> {
    let n = u16::from_be_bytes(take::<2>(b)?) as usize;
    let s = String::from_utf8(b.get(..n)?.to_vec()).ok()?;
    *b = &b[n..];
    Some(s)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// CRC-32C (Castagnoli), the checksum Kafka uses for record batches.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: i64) -> Committed {
        Committed { offset, leader_epoch: 3, metadata: Some("m".into()), commit_ts_ms: 42 }
    }

    #[test]
    fn crc32c_known_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn commits_survive_reopen_and_torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            s.commit("g", &[("t".into(), 0, c(5)), ("t".into(), 1, c(7))]).unwrap();
            s.commit("g", &[("t".into(), 0, c(9))]).unwrap();
            s.delete("g", &[("t".into(), 1)]).unwrap();
            s.commit("h", &[("u".into(), 0, c(1))]).unwrap();
            s.delete_group("h").unwrap();
        }
        let path = dir.path().join("offsets.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
        drop(f);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&c(9)));
        assert_eq!(s.get("g", "t", 1), None);
        assert!(!s.has_offsets("h"));
        assert_eq!(s.len(), 1);
        let len_after = fs::metadata(&path).unwrap().len();
        let s2 = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), len_after);
        assert_eq!(s2.get("g", "t", 0), Some(&c(9)));
    }

    #[test]
    fn corrupt_record_in_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            s.commit("g", &[("t".into(), 0, c(5))]).unwrap();
            s.commit("g", &[("t".into(), 0, c(6))]).unwrap();
        }
        let path = dir.path().join("offsets.log");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&c(5)));
    }

    #[test]
    fn compaction_carries_over_what_was_written_while_it_copied() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            for i in 0..(COMPACT_SLACK_RECORDS as i64 + 10) {
                s.commit("g", &[("t".into(), 0, c(i))]).unwrap();
            }
            let plan = s.plan_compaction().expect("compaction due");
            assert!(s.plan_compaction().is_none(), "one compaction at a time");
            // Written after the snapshot, before the swap: must not be lost.
            s.commit("g", &[("t".into(), 0, c(-5))]).unwrap();
            s.commit("h", &[("u".into(), 2, c(8))]).unwrap();
            s.delete("g", &[("t".into(), 0)]).unwrap();
            s.commit("g", &[("t".into(), 1, c(9))]).unwrap();
            plan.write().unwrap();
            s.finish_compaction(plan).unwrap();
            assert_eq!(s.records, 1 + 4);
            assert!(s.is_synced_through(s.written_seq()).unwrap());
            s.commit("g", &[("t".into(), 3, c(3))]).unwrap();
        }
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.get("g", "t", 0), None);
        assert_eq!(s.get("g", "t", 1), Some(&c(9)));
        assert_eq!(s.get("g", "t", 3), Some(&c(3)));
        assert_eq!(s.get("h", "u", 2), Some(&c(8)));
        assert!(!dir.path().join("offsets.log.compacting").exists());
    }

    #[test]
    fn compaction_keeps_live_offsets() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            for i in 0..(COMPACT_SLACK_RECORDS as i64 + 10) {
                s.commit("g", &[("t".into(), 0, c(i))]).unwrap();
            }
            s.compact_if_needed().unwrap();
            assert_eq!(s.records, 1);
            s.commit("g", &[("t".into(), 1, c(1))]).unwrap();
        }
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.get("g", "t", 0).map(|c| c.offset), Some(COMPACT_SLACK_RECORDS as i64 + 9));
        assert_eq!(s.get("g", "t", 1).map(|c| c.offset), Some(1));
    }
}
