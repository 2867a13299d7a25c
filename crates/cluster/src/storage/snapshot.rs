//! A partition group's snapshot: metadata only. The records are the partition log itself;
//! what a snapshot carries is where Raft's applied state meets Kafka's offsets.
//!
//! The current snapshot is the file `snapshot` in the group's directory (JSON of
//! `StoredSnapshot`, replaced atomically and durably). Its data, as sent to a follower, is
//! JSON of `SnapshotData`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};
use sluice_log::atomic_file;

use crate::types::NodeId;

pub const SNAPSHOT_FILE: &str = "snapshot";
/// Largest snapshot file or data: metadata with a membership of many nodes stays far below.
pub const SNAPSHOT_BYTES_MAX: u64 = 1024 * 1024;

/// What a partition snapshot says about the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotData {
    /// The Kafka offset after the last applied record: the high watermark at the snapshot.
    pub next_offset: i64,
    /// The snapshotting replica's log start offset then (informational: a follower reset by
    /// this snapshot starts at `next_offset`).
    pub log_start_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub data: SnapshotData,
}

pub fn store(dir: &Path, snapshot: &StoredSnapshot) -> io::Result<()> {
    let bytes = serde_json::to_vec(snapshot).map_err(io::Error::other)?;
    atomic_file::replace(&dir.join(SNAPSHOT_FILE), &bytes)
}

/// The current snapshot, or None if the group has none yet.
pub fn load(dir: &Path) -> io::Result<Option<StoredSnapshot>> {
    let path = dir.join(SNAPSHOT_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = read_bounded(file)?;
    serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other)
}

/// Decodes snapshot data received from a leader.
pub fn decode_data(bytes: &[u8]) -> io::Result<SnapshotData> {
    if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
        return Err(io::Error::other(format!("snapshot data of {} bytes exceeds {SNAPSHOT_BYTES_MAX}", bytes.len())));
    }
    serde_json::from_slice(bytes).map_err(io::Error::other)
}

pub fn encode_data(data: &SnapshotData) -> io::Result<Vec<u8>> {
    serde_json::to_vec(data).map_err(io::Error::other)
}

fn read_bounded(file: File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(SNAPSHOT_BYTES_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
        return Err(io::Error::other(format!("snapshot file larger than {SNAPSHOT_BYTES_MAX} bytes")));
    }
    Ok(bytes)
}
