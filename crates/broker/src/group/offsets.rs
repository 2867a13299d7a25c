//! Committed offsets: an in-memory map backed by an append-only log,
//! `<data_dir>/groups/offsets.log`. Every commit is written (page cache) before it is
//! acknowledged, so it survives `kill -9`; the sweeper fsyncs the file every
//! `SYNC_PERIOD`. On open the log is replayed, a torn or corrupt tail is truncated, and
//! the file is compacted when most of its records are superseded.
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
    /// Written since the last fsync.
    dirty: bool,
    /// Bytes of a torn or corrupt tail cut off when the store was opened (for `/metrics`).
    truncated_at_open: u64,
    /// A failed write that could not be cut back poisons the store: later commits fail
    /// instead of appending behind a partial record.
    poisoned: bool,
}

impl OffsetStore {
    pub fn open(dir: &Path) -> std::io::Result<OffsetStore> {
        fs::create_dir_all(dir)?;
        let path = dir.join("offsets.log");
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
        let mut store =
            OffsetStore { path, file, offsets, records, live, dirty: false, truncated_at_open, poisoned: false };
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
    pub fn commit(&mut self, group: &str, entries: &[(String, i32, Committed)]) -> std::io::Result<()> {
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
        Ok(())
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

    /// A handle to fsync outside the store's lock, if anything was written since the last one.
    pub fn take_dirty(&mut self) -> Option<File> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        self.file.try_clone().ok()
    }

    /// Rewrites the file with only live offsets when superseded records dominate.
    pub fn compact_if_needed(&mut self) -> std::io::Result<()> {
        let dead = self.records.saturating_sub(self.live as u64);
        if dead <= COMPACT_SLACK_RECORDS || dead <= self.live as u64 {
            return Ok(());
        }
        let offsets = &self.offsets;
        sluice_log::atomic_file::replace_with(&self.path, |out| {
            let mut buf = Vec::new();
            for (group, map) in offsets {
                for ((topic, partition), c) in map {
                    encode(&mut buf, KIND_COMMIT, group, topic, *partition, c);
                    if buf.len() > 1 << 20 {
                        out.write_all(&buf)?;
                        buf.clear();
                    }
                }
            }
            out.write_all(&buf)
        })?;
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        tracing::info!(path = %self.path.display(), live = self.live, dropped = dead, "offsets log compacted");
        self.file = file;
        self.records = self.live as u64;
        self.dirty = false;
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.poisoned {
            return Err(std::io::Error::other("offsets log poisoned by an earlier write failure"));
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
        self.dirty = true;
        Ok(())
    }
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
