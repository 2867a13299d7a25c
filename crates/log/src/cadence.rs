//! When the sparse indexes get an entry. Appends and index rebuilds both run batches
//! through the same `Cadence`, so a rebuilt index is identical to the one written live.

use crate::batch::BatchHeader;
use crate::index::OffsetEntry;
use crate::time_index::TimeEntry;

#[derive(Debug, Clone, Default)]
pub struct Cadence {
    bytes_since_offset_entry: u64,
    bytes_since_time_entry: u64,
    /// Largest `max_timestamp` of the segment so far.
    max_timestamp: Option<i64>,
    /// Timestamp of the last time index entry: entries are written only when it grows.
    last_time_entry: Option<i64>,
    /// Last offset of the last batch seen, relative to the segment base.
    last_relative_offset: Option<u32>,
}

/// Index entries due for one batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Due {
    pub offset: Option<OffsetEntry>,
    pub time: Option<TimeEntry>,
}

impl Cadence {
    /// The cadence of an empty segment; a reopened segment replays its batches through it.
    pub fn new() -> Self {
        Cadence::default()
    }

    /// Accounts for the batch `header` starting at `position` of a segment with base offset
    /// `base`. The caller guarantees offsets and positions fit a `u32` (see `layout`).
    pub fn observe(&mut self, base: i64, position: u64, header: &BatchHeader, interval_bytes: u32) -> Due {
        let len = header.total_len() as u64;
        let interval = interval_bytes as u64;
        let mut due = Due::default();
        if position > 0 && self.bytes_since_offset_entry >= interval {
            due.offset =
                Some(OffsetEntry { relative_offset: (header.base_offset - base) as u32, position: position as u32 });
            self.bytes_since_offset_entry = 0;
        }
        self.bytes_since_offset_entry += len;
        self.bytes_since_time_entry += len;
        let max = self.max_timestamp.map_or(header.max_timestamp, |m| m.max(header.max_timestamp));
        self.max_timestamp = Some(max);
        let relative_last = (header.last_offset() - base) as u32;
        self.last_relative_offset = Some(relative_last);
        if self.bytes_since_time_entry >= interval && self.time_grew(max) {
            due.time = Some(self.take_time_entry(max, relative_last));
        }
        due
    }

    /// The entry that makes the time index end with the segment's largest timestamp
    /// (written when the segment is rolled), if it does not already.
    pub fn final_time_entry(&mut self) -> Option<TimeEntry> {
        let max = self.max_timestamp?;
        let relative_last = self.last_relative_offset?;
        if !self.time_grew(max) {
            return None;
        }
        Some(self.take_time_entry(max, relative_last))
    }

    pub fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }

    fn time_grew(&self, max: i64) -> bool {
        match self.last_time_entry {
            None => true,
            Some(last) => max > last,
        }
    }

    fn take_time_entry(&mut self, max: i64, relative_offset: u32) -> TimeEntry {
        self.last_time_entry = Some(max);
        self.bytes_since_time_entry = 0;
        TimeEntry { max_timestamp: max, relative_offset }
    }
}
