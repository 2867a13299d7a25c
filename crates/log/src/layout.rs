//! File names and on-disk sizes of a partition directory (see `docs/format.md`).

use std::path::{Path, PathBuf};

/// Digits of a segment's base offset in its file names: every non-negative `i64` fits,
/// and zero padding makes a lexical sort the offset order.
pub const NAME_DIGITS: usize = 20;
pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Suffix of an index being rebuilt; such files are incomplete and deleted on open.
pub const TMP_SUFFIX: &str = "tmp";
/// The partition's recovery point (see `recovery_point.rs`).
pub const RECOVERY_POINT_FILE: &str = "recovery-point";
/// The log start offset DeleteRecords set (see `log_start.rs`).
pub const LOG_START_FILE: &str = "log-start-offset";
/// Where compaction stands (see `compaction_checkpoint.rs`).
pub const COMPACTION_CHECKPOINT_FILE: &str = "compaction-checkpoint";
/// The subdirectory where a clustered partition keeps its Raft state (side index, vote,
/// snapshot; see `docs/format.md`); recovery leaves it alone.
pub const RAFT_DIR: &str = "raft";

/// Offset index entry: relative offset (u32) then position (u32).
pub const OFFSET_ENTRY_LEN: usize = 4 + 4;
/// Time index entry: max timestamp so far (i64) then relative offset (u32).
pub const TIME_ENTRY_LEN: usize = 8 + 4;

/// A segment never grows past this: positions in the offset index are `u32`.
pub const SEGMENT_BYTES_LIMIT: u64 = u32::MAX as u64;
/// Offsets in one segment stay within a `u32` of its base: relative offsets are `u32`.
pub const RELATIVE_OFFSET_LIMIT: i64 = u32::MAX as i64;

/// Bytes read per call when scanning a segment: large enough for sequential throughput,
/// small enough to keep scans of many partitions at once cheap in memory.
pub const SCAN_CHUNK_BYTES: usize = 256 * 1024;

const _: () = assert!(SEGMENT_BYTES_LIMIT <= u32::MAX as u64);
const _: () = assert!(SCAN_CHUNK_BYTES >= crate::batch::BATCH_HEADER_LEN);

/// What a file in a partition directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Log(i64),
    Index(i64),
    TimeIndex(i64),
    Temp,
    RecoveryPoint,
    LogStart,
    CompactionCheckpoint,
    RaftDir,
    Unknown,
}

pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:0width$}.{suffix}", width = NAME_DIGITS)
}

pub fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(file_name(base_offset, suffix))
}

pub fn classify(name: &str) -> FileKind {
    if name.ends_with(&format!(".{TMP_SUFFIX}")) {
        return FileKind::Temp;
    }
    if name == RECOVERY_POINT_FILE {
        return FileKind::RecoveryPoint;
    }
    if name == LOG_START_FILE {
        return FileKind::LogStart;
    }
    if name == COMPACTION_CHECKPOINT_FILE {
        return FileKind::CompactionCheckpoint;
    }
    if name == RAFT_DIR {
        return FileKind::RaftDir;
    }
    let Some((stem, suffix)) = name.split_once('.') else {
        return FileKind::Unknown;
    };
    let Some(base) = parse_base(stem) else {
        return FileKind::Unknown;
    };
    match suffix {
        LOG_SUFFIX => FileKind::Log(base),
        INDEX_SUFFIX => FileKind::Index(base),
        TIME_INDEX_SUFFIX => FileKind::TimeIndex(base),
        _ => FileKind::Unknown,
    }
}

fn parse_base(stem: &str) -> Option<i64> {
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip and anything else is recognised as foreign.
    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(classify("00000000000000000042.log"), FileKind::Log(42));
        assert_eq!(classify("00000000000000000042.index"), FileKind::Index(42));
        assert_eq!(classify("00000000000000000042.timeindex"), FileKind::TimeIndex(42));
        assert_eq!(classify("00000000000000000042.index.tmp"), FileKind::Temp);
        assert_eq!(classify("recovery-point"), FileKind::RecoveryPoint);
        assert_eq!(classify("recovery-point.tmp"), FileKind::Temp);
        assert_eq!(classify("raft"), FileKind::RaftDir);
        assert_eq!(classify("compaction-checkpoint"), FileKind::CompactionCheckpoint);
        assert_eq!(classify("42.log"), FileKind::Unknown);
        assert_eq!(classify("0000000000000000004x.log"), FileKind::Unknown);
        assert_eq!(classify("00000000000000000042.txt"), FileKind::Unknown);
        assert_eq!(classify("99999999999999999999.log"), FileKind::Unknown);
    }
}
