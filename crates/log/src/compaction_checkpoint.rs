//! Where compaction stands in a partition, kept across restarts (as Kafka's
//! `cleaner-offset-checkpoint`): the offset below which a pass has mapped every key (the dirty
//! part starts there), and when each segment was first compacted (its tombstones'
//! `delete.retention.ms` counts from then).
//!
//! File `compaction-checkpoint`: magic `SCC1`, `cleaned_through` (i64 LE), the entry count
//! (u32 LE), per entry the segment's base offset and the time it was first compacted in ms
//! (i64 LE each), then CRC-32C of everything before (u32 LE). Written whole through a synced
//! temp file and a rename. A missing or damaged file means "nothing compacted yet": the next
//! pass maps the whole log again and tombstones' retention restarts, which keeps more, never
//! less.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::atomic_file;
use crate::layout::COMPACTION_CHECKPOINT_FILE;

const MAGIC: &[u8; 4] = b"SCC1";
const HEADER_LEN: usize = MAGIC.len() + 8 + 4;
const ENTRY_LEN: usize = 8 + 8;
const CRC_LEN: usize = 4;

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub cleaned_through: i64,
    /// Base offset of a segment → when it was first compacted (ms since the epoch).
    pub compacted_at_ms: BTreeMap<i64, i64>,
}

/// The stored checkpoint, or the empty one if there is none or it cannot be read.
pub fn load(dir: &Path) -> Checkpoint {
    let path = dir.join(COMPACTION_CHECKPOINT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).unwrap_or_else(|why| {
            tracing::warn!(file = %path.display(), %why, "compaction checkpoint unreadable; the log is compacted anew");
            Checkpoint::default()
        }),
        Err(_) => Checkpoint::default(),
    }
}

pub fn store(dir: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    atomic_file::replace(&dir.join(COMPACTION_CHECKPOINT_FILE), &encode(checkpoint))
}

fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let entries = &checkpoint.compacted_at_ms;
    let mut out = Vec::with_capacity(HEADER_LEN + entries.len() * ENTRY_LEN + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&checkpoint.cleaned_through.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (base, at) in entries {
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.len() < HEADER_LEN + CRC_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(format!("not a compaction checkpoint ({} bytes)", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    if crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("checksum mismatch".to_string());
    }
    let i64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        i64::from_le_bytes(b)
    };
    let count = u32::from_le_bytes([body[12], body[13], body[14], body[15]]) as usize;
    // The count is checked against the bytes present before anything is built from it.
    if body.len() != HEADER_LEN + count.saturating_mul(ENTRY_LEN) {
        return Err(format!("{count} entries do not fit {} bytes", body.len()));
    }
    let compacted_at_ms =
        (0..count).map(|i| HEADER_LEN + i * ENTRY_LEN).map(|at| (i64_at(at), i64_at(at + 8))).collect();
    Ok(Checkpoint { cleaned_through: i64_at(MAGIC.len()), compacted_at_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored checkpoint loads back; damage of any byte is refused, never a panic.
    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Checkpoint::default());
        let checkpoint = Checkpoint { cleaned_through: 42, compacted_at_ms: BTreeMap::from([(0, 7), (10, 9)]) };
        store(dir.path(), &checkpoint).unwrap();
        assert_eq!(load(dir.path()), checkpoint);
        let bytes = encode(&checkpoint);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "byte {i}");
            assert!(decode(&bytes[..i]).is_err(), "prefix {i}");
        }
    }
}
