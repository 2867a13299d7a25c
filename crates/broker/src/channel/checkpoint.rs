//! The checkpoint of one durable channel: `<data_dir>/channels/<topic>/<channel>.json`,
//! written atomically (temp file, fsync, rename, fsync directory).
//!
//! It holds only what a restart needs to redeliver without loss and without repeating
//! finished messages: per partition the acknowledged floor and the finished offsets above
//! it, and for unfinished messages their delivery attempts and REQ deferral. Everything at
//! or above the floor that is not finished is delivered again after a restart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub const CHECKPOINT_VERSION: u32 = 1;
/// Largest checkpoint file read back: bounded by the window (every offset finished or pending).
pub const CHECKPOINT_BYTES_MAX: u64 = 64 << 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub version: u32,
    /// When the channel was created: its incarnation in a cluster's replicated state.
    #[serde(default)]
    pub created_ms: i64,
    /// Created after its topic's first channel (a partition it starts on starts at the tail).
    #[serde(default)]
    pub from_tail: bool,
    #[serde(default)]
    pub paused: bool,
    /// Partition index → cursor.
    #[serde(default)]
    pub partitions: BTreeMap<i32, CursorState>,
    /// Unfinished messages with attempts or a deferral to remember.
    #[serde(default)]
    pub pending: Vec<PendingState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CursorState {
    pub floor: i64,
    #[serde(default)]
    pub finished: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingState {
    pub partition: i32,
    pub offset: i64,
    pub attempts: u16,
    #[serde(default)]
    pub defer_until_ms: Option<i64>,
}

pub fn write(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("checkpoint path has no parent"))?;
    sluice_log::durable_dir::create_dir_all(dir)?;
    let text = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
    sluice_log::atomic_file::replace(path, &text)
}

/// `Ok(None)` when there is no file; an error when it is unreadable or damaged.
pub fn read(path: &Path) -> std::io::Result<Option<Checkpoint>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.len() > CHECKPOINT_BYTES_MAX {
        return Err(std::io::Error::other(format!("checkpoint larger than {CHECKPOINT_BYTES_MAX} bytes")));
    }
    let bytes = fs::read(path)?;
    let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    if checkpoint.version != CHECKPOINT_VERSION {
        return Err(std::io::Error::other(format!("unknown checkpoint version {}", checkpoint.version)));
    }
    Ok(Some(checkpoint))
}
