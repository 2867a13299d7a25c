//! DeleteRecords (KIP-107): the log start offset moves up to an offset inside the log;
//! reads below it are out of range, and segments wholly below it are deleted.
//!
//! Order against a crash: the new log start is stored (synced) first, then the in-memory
//! state follows and whole segments below it go. A crash in between leaves segments below
//! the stored start, which no read reaches and the next open deletes.

use super::{PartitionLog, State};
use crate::error::FlushError;
use crate::log_start;
use crate::segment::Segment;

impl PartitionLog {
    /// Moves the log start up to `offset` (never past the log end; an offset at or below the
    /// current start changes nothing) and deletes every segment that lies wholly below it,
    /// never the active one. Returns the log start offset after the call. Blocking: it
    /// fsyncs the stored log start.
    pub fn advance_log_start(&self, offset: i64) -> Result<i64, FlushError> {
        self.advance_log_start_within(offset, i64::MAX)
    }

    /// `advance_log_start`, deleting only segments that also lie wholly below `delete_below`:
    /// a replicated log's segments are its Raft log, and the entries the Raft log has not
    /// purged yet must stay readable (`read_retained`) until it does. A later call (with the
    /// same start) deletes what is left once they are purged.
    pub fn advance_log_start_within(&self, offset: i64, delete_below: i64) -> Result<i64, FlushError> {
        if self.watermark.is_poisoned() {
            return Err(FlushError::Poisoned);
        }
        let doomed: Vec<Segment> = {
            let mut state = self.state();
            let target = offset.min(state.log_end);
            if target > state.log_start() {
                // Under the lock so two calls cannot store their starts out of order;
                // DeleteRecords is an admin call, rare enough for one fsync to hold appends back.
                log_start::store(&self.dir, target).map_err(FlushError::Io)?;
                state.start_floor = target;
            }
            let below = state.log_start().min(delete_below);
            state.take_segments_below(below)
        };
        if doomed.is_empty() {
            return Ok(self.log_start_offset());
        }
        // Unlinking happens outside the lock; readers holding the files keep reading them.
        delete_segments(&doomed);
        let start = self.log_start_offset();
        tracing::info!(dir = %self.dir.display(), log_start = start, segments_deleted = doomed.len(), "records deleted");
        Ok(start)
    }
}

impl State {
    /// Takes out of the log every segment wholly below the log start (a later segment begins
    /// at or below it), never the active one.
    pub(super) fn take_segments_below_start(&mut self) -> Vec<Segment> {
        self.take_segments_below(self.log_start())
    }

    /// Takes out every segment wholly below `offset` (a later segment begins at or below
    /// it), never the active one.
    pub(super) fn take_segments_below(&mut self, offset: i64) -> Vec<Segment> {
        let below = self.segments.iter().skip(1).take_while(|s| s.base_offset <= offset).count();
        self.segments.drain(..below).collect()
    }
}

/// Deletes the files of segments already taken out of the log; a failure is logged (the
/// files are unreachable either way and only take space).
pub(super) fn delete_segments(doomed: &[Segment]) {
    for segment in doomed {
        if let Err(e) = segment.delete_files() {
            tracing::warn!(segment = %segment.log_path().display(), error = %e, "could not delete segment");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::LogConfig;
    use crate::error::ReadError;
    use crate::partition::PartitionLog;
    use crate::test_batch::batch;

    /// The start moves inside a segment, whole segments below it go, reads below it are out of
    /// range, and the start survives a reopen; a lower offset changes nothing.
    #[test]
    fn advances_deletes_whole_segments_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes_max: 150, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..10 {
            log.append(&mut batch(2, 0, b"abc")).unwrap();
        }
        let segments = log.segment_count();
        assert!(segments >= 4, "{segments} segments");
        assert_eq!(log.advance_log_start(7).unwrap(), 7);
        assert_eq!(log.log_start_offset(), 7);
        assert!(log.segment_base_offsets()[0] <= 7 && log.segment_count() < segments);
        assert!(matches!(log.read(6, 1000), Err(ReadError::OffsetOutOfRange { log_start: 7, .. })));
        let read = log.read(7, 1000).unwrap();
        assert!(!read.bytes.is_empty());
        assert_eq!(log.advance_log_start(3).unwrap(), 7, "never moves back");
        assert_eq!(log.advance_log_start(99).unwrap(), 20, "never past the log end");
        drop(log);
        let log = PartitionLog::open(dir.path(), config).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
        assert_eq!(log.append(&mut batch(1, 0, b"x")).unwrap().first_offset, 20);
    }

    /// A crash after the new start was stored and before the segments below it went: the
    /// next open deletes them.
    #[test]
    fn open_deletes_segments_left_below_the_stored_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes_max: 150, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..10 {
            log.append(&mut batch(2, 0, b"abc")).unwrap();
        }
        let bases = log.segment_base_offsets();
        drop(log);
        crate::log_start::store(dir.path(), 9).unwrap();
        let log = PartitionLog::open(dir.path(), config).unwrap();
        let kept = bases.iter().copied().filter(|b| *b <= 9).max().unwrap();
        assert_eq!(log.segment_base_offsets()[0], kept);
        assert_eq!(log.log_start_offset(), 9);
        let files = std::fs::read_dir(dir.path()).unwrap().filter(|e| {
            let name = e.as_ref().unwrap().file_name().into_string().unwrap();
            name.ends_with(".log") && name[..20].parse::<i64>().unwrap() < kept
        });
        assert_eq!(files.count(), 0, "no segment file below {kept} left");
    }
}
