//! The sparse time index: the largest timestamp seen up to a relative offset.

use crate::index_file::Entry;
use crate::layout::TIME_ENTRY_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest batch `max_timestamp` in the segment up to and including `relative_offset`.
    pub max_timestamp: i64,
    /// Last offset of the batch after which the entry was written, relative to the base.
    pub relative_offset: u32,
}

impl Entry for TimeEntry {
    const LEN: usize = TIME_ENTRY_LEN;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            max_timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// The relative offset to start searching from for the first batch with
/// `max_timestamp >= timestamp`: every batch up to an entry with a smaller timestamp
/// is too old.
pub fn search_start(entries: &[TimeEntry], timestamp: i64) -> i64 {
    let older = entries.partition_point(|e| e.max_timestamp < timestamp);
    match older {
        0 => 0,
        n => entries[n - 1].relative_offset as i64 + 1,
    }
}

/// Checks the invariants of `docs/format.md`: both fields strictly increasing and
/// relative offsets below `relative_offset_end`.
pub fn check(entries: &[TimeEntry], relative_offset_end: i64) -> Result<(), String> {
    let mut previous: Option<TimeEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        if e.relative_offset as i64 >= relative_offset_end {
            return Err(format!("entry {i}: relative offset {} past the segment", e.relative_offset));
        }
        if let Some(p) = previous {
            if e.max_timestamp <= p.max_timestamp || e.relative_offset <= p.relative_offset {
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

    fn e(max_timestamp: i64, relative_offset: u32) -> TimeEntry {
        TimeEntry { max_timestamp, relative_offset }
    }

    /// The search starts right after the last entry that is entirely too old.
    #[test]
    fn search_start_skips_old_batches() {
        let entries = [e(100, 4), e(200, 9)];
        assert_eq!(search_start(&entries, 50), 0);
        assert_eq!(search_start(&entries, 100), 0);
        assert_eq!(search_start(&entries, 150), 5);
        assert_eq!(search_start(&entries, 201), 10);
    }

    /// Entries must strictly increase and stay inside the segment.
    #[test]
    fn check_refuses_damage() {
        assert!(check(&[e(1, 1), e(2, 2)], 3).is_ok());
        assert!(check(&[e(2, 1), e(2, 2)], 3).is_err());
        assert!(check(&[e(1, 2), e(2, 2)], 3).is_err());
        assert!(check(&[e(1, 3)], 3).is_err());
        let mut bytes = Vec::new();
        e(-5, 9).encode(&mut bytes);
        assert_eq!(TimeEntry::decode(&bytes), e(-5, 9));
    }
}
