//! Cutting the log back: a Raft follower drops an uncommitted suffix (`truncate_suffix`), or
//! starts over behind an installed snapshot (`reset_to`). Appends then go on at the new end.
//!
//! Order against a crash: the recovery point is lowered first (a log that reopens shorter
//! than its recovery point is refused as damaged), then files are cut or deleted and synced,
//! then the in-memory state and the durable watermark follow.

use std::io;

use super::{PartitionLog, State};
use crate::batch::BATCH_HEADER_LEN;
use crate::error::TruncateError;
use crate::recovery;
use crate::recovery_point;
use crate::scan::Scanner;
use crate::segment::Segment;

/// Where a truncation cuts: the segments from `keep` on go, and segment `keep - 1` is cut
/// at byte `position` (`None`: it ends before the cut offset and stays as it is).
struct Cut {
    keep: usize,
    position: Option<u64>,
}

impl PartitionLog {
    /// Drops every record at or after `offset`, which must be a batch boundary within
    /// `[log_start, log_end]`: later segments are deleted and the one holding `offset` is
    /// cut there. The recovery point, the durable watermark and any flush in flight are
    /// brought down to `offset` (Raft truncates only records it never committed, so cutting
    /// below what was fsynced is legitimate here). Synced before it returns.
    pub fn truncate_suffix(&self, offset: i64) -> Result<(), TruncateError> {
        if self.watermark.is_poisoned() {
            return Err(TruncateError::Poisoned);
        }
        let mut state = self.state();
        if offset >= state.log_end {
            return Ok(());
        }
        if offset < state.log_start() {
            return Err(TruncateError::BelowLogStart { offset, log_start: state.log_start() });
        }
        let cut = find_cut(&state, offset)?;
        self.lower_recovery_point(offset, None)?;
        let doomed: Vec<Segment> = state.segments.drain(cut.keep..).collect();
        delete_segments(&doomed)?;
        if let Some(position) = cut.position {
            let interval = state.config.index_interval_bytes;
            match self.cut_segment(state.active(), position, interval) {
                Ok(segment) => *state.active_mut() = segment,
                Err(e) => return Err(self.fail(&mut state, e)),
            }
        }
        if let Err(e) = self.disk.sync_dir(&self.dir) {
            return Err(self.fail(&mut state, TruncateError::Io(e)));
        }
        state.log_end = offset;
        self.watermark.truncate(offset, |durable| durable.min(offset));
        tracing::info!(dir = %self.dir.display(), offset, "log truncated");
        Ok(())
    }

    /// Drops every record and goes on at `next_offset` (a snapshot installed on a replica
    /// whose log is behind the leader's log start). Everything below `next_offset` counts
    /// as durable: there is nothing there.
    pub fn reset_to(&self, next_offset: i64) -> Result<(), TruncateError> {
        if self.watermark.is_poisoned() {
            return Err(TruncateError::Poisoned);
        }
        if next_offset < 0 {
            return Err(TruncateError::BelowLogStart { offset: next_offset, log_start: 0 });
        }
        let mut state = self.state();
        // A crash half way leaves old segments before an empty one at `next_offset`: the
        // hole between them is accepted up front, so the log does not reopen refused.
        self.lower_recovery_point(0, Some(next_offset))?;
        let reused = state.segments.iter().position(|s| s.base_offset == next_offset);
        let fresh = match reused {
            // A segment file named `next_offset` exists: emptied rather than recreated.
            Some(at) => self.cut_segment(&state.segments[at], 0, state.config.index_interval_bytes),
            None => Segment::create(&self.dir, next_offset).map_err(TruncateError::Io),
        };
        let fresh = match fresh {
            Ok(segment) => segment,
            Err(e) => return Err(self.fail(&mut state, e)),
        };
        let mut doomed: Vec<Segment> = state.segments.drain(..).collect();
        if let Some(at) = reused {
            // Its files are the fresh segment's now: not to be deleted.
            doomed.remove(at);
        }
        state.segments.push(fresh);
        // The new segment's entry is synced before the old ones go, so a crash never
        // leaves a directory without the new log end.
        let replaced = self
            .disk
            .sync_dir(&self.dir)
            .map_err(TruncateError::Io)
            .and_then(|()| delete_segments(&doomed))
            .and_then(|()| self.disk.sync_dir(&self.dir).map_err(TruncateError::Io));
        if let Err(e) = replaced {
            return Err(self.fail(&mut state, e));
        }
        state.log_end = next_offset;
        state.sealed.clear();
        state.damage = None;
        self.watermark.truncate(next_offset, |_| next_offset);
        tracing::info!(dir = %self.dir.display(), next_offset, "log reset");
        Ok(())
    }

    /// Stores a recovery point no higher than `offset` (and, with `holes_through`, accepts
    /// holes up to it) before anything below the old one is cut.
    fn lower_recovery_point(&self, offset: i64, holes_through: Option<i64>) -> Result<(), TruncateError> {
        let mut stored = self.recovery_point.lock().unwrap_or_else(|e| e.into_inner());
        let lowered = recovery_point::Stored {
            offset: stored.offset.min(offset),
            holes_accepted_through: stored.holes_accepted_through.max(holes_through.unwrap_or(0)),
        };
        if lowered == *stored {
            return Ok(());
        }
        recovery_point::store(&self.dir, &self.disk, lowered).map_err(TruncateError::Io)?;
        *stored = lowered;
        Ok(())
    }

    /// Cuts `segment`'s `.log` at `position`, syncs it, and reopens it as the active segment
    /// with indexes rebuilt to match.
    fn cut_segment(&self, segment: &Segment, position: u64, interval: u32) -> Result<Segment, TruncateError> {
        let file = segment.log_file().map_err(TruncateError::Io)?;
        file.set_len(position).map_err(TruncateError::Io)?;
        self.disk.sync_data(&file).map_err(TruncateError::Io)?;
        let base = segment.base_offset;
        let (reopened, end) = recovery::reopen_cut(&self.dir, base, interval).map_err(TruncateError::Open)?;
        debug_assert!(reopened.len() == position, "a cut at a batch boundary keeps every batch before it");
        tracing::debug!(base, position, end, "segment cut back");
        Ok(reopened)
    }

    /// A truncation failed part way: the files no longer match memory, so the log is
    /// poisoned (reopening recovers it from the files).
    fn fail(&self, state: &mut State, e: TruncateError) -> TruncateError {
        let io = io::Error::other(e.to_string());
        self.poison(&io);
        state.damage.get_or_insert(recovery::Damage::TruncationFailed(e.to_string()));
        e
    }
}

/// Which segments stay and where the last one is cut, checked before anything changes.
fn find_cut(state: &State, offset: i64) -> Result<Cut, TruncateError> {
    let keep = state.segments.partition_point(|s| s.base_offset < offset).max(1);
    let segment = &state.segments[keep - 1];
    if offset == segment.base_offset {
        return Ok(Cut { keep, position: Some(0) });
    }
    if offset >= segment.end_offset() {
        return Ok(Cut { keep, position: None });
    }
    let view = segment.view().map_err(TruncateError::Io)?;
    let (position, _) = segment.lookup(offset);
    let mut scanner = Scanner::new(&view.file, position, view.len, BATCH_HEADER_LEN);
    loop {
        let at = scanner.position();
        match scanner.next_header() {
            Ok(Some(header)) if header.base_offset == offset => return Ok(Cut { keep, position: Some(at) }),
            Ok(Some(header)) if header.last_offset() < offset => continue,
            Ok(Some(header)) => return Err(TruncateError::NotBatchBoundary { offset, batch_base: header.base_offset }),
            Ok(None) => return Ok(Cut { keep, position: None }),
            Err(e) => return Err(TruncateError::Io(io::Error::other(format!("{e:?}")))),
        }
    }
}

fn delete_segments(doomed: &[Segment]) -> Result<(), TruncateError> {
    doomed.iter().try_for_each(|s| s.delete_files().map_err(TruncateError::Io))
}

#[cfg(test)]
mod tests;
