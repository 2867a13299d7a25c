//! The sparse offset index: relative offset → position of the batch with that base offset.

use crate::index_file::Entry;
use crate::layout::OFFSET_ENTRY_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Base offset of the batch, relative to the segment's base offset.
    pub relative_offset: u32,
    /// Where that batch starts in the `.log` file.
    pub position: u32,
}

impl Entry for OffsetEntry {
    const LEN: usize = OFFSET_ENTRY_LEN;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The last entry at or below `relative_offset`, or the implicit entry for the segment's
/// first batch `(0, 0)`.
pub fn lookup(entries: &[OffsetEntry], relative_offset: u32) -> OffsetEntry {
    let after = entries.partition_point(|e| e.relative_offset <= relative_offset);
    match after {
        0 => OffsetEntry { relative_offset: 0, position: 0 },
        n => entries[n - 1],
    }
}

/// Checks the invariants of `docs/format.md`: both fields strictly increasing, positions
/// inside the log and never 0, relative offsets below `relative_offset_end`.
pub fn check(entries: &[OffsetEntry], relative_offset_end: i64, log_len: u64) -> Result<(), String> {
    let mut previous: Option<OffsetEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        if e.position == 0 || e.position as u64 >= log_len {
            return Err(format!("entry {i}: position {} outside (0, {log_len})", e.position));
        }
        if e.relative_offset as i64 >= relative_offset_end {
            return Err(format!("entry {i}: relative offset {} past the segment", e.relative_offset));
        }
        if let Some(p) = previous {
            if e.position <= p.position || e.relative_offset <= p.relative_offset {
                return Err(format!("entry {i} does not increase"));
            }
        }
        previous = Some(*e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry { relative_offset, position }
    }

    /// Lookup finds the closest entry at or below the target, defaulting to the file start.
    #[test]
    fn lookup_finds_floor_entry() {
        let entries = [e(10, 100), e(20, 200)];
        assert_eq!(lookup(&entries, 5), e(0, 0));
        assert_eq!(lookup(&entries, 10), e(10, 100));
        assert_eq!(lookup(&entries, 19), e(10, 100));
        assert_eq!(lookup(&entries, 25), e(20, 200));
    }

    /// Non-monotonic, out-of-file and zero-filled entries are all refused.
    #[test]
    fn check_refuses_damage() {
        assert!(check(&[e(10, 100), e(20, 200)], 30, 300).is_ok());
        assert!(check(&[e(20, 100), e(10, 200)], 30, 300).is_err());
        assert!(check(&[e(10, 100), e(20, 300)], 30, 300).is_err());
        assert!(check(&[e(0, 0), e(0, 0)], 30, 300).is_err());
        assert!(check(&[e(30, 100)], 30, 300).is_err());
        let mut bytes = Vec::new();
        e(7, 9).encode(&mut bytes);
        assert_eq!(OffsetEntry::decode(&bytes), e(7, 9));
    }
}
