//! The group's vote and its committed log id, each a small JSON file in the group's directory.
//!
//! `vote` is replaced atomically and durably (`sluice_log::atomic_file`) before `save_vote`
//! returns: a node must never vote twice in a term. `committed` is replaced atomically but
//! not fsynced: openraft calls `save_committed` on every commit advance, and losing it only
//! means a restart re-applies less before the leader tells the commit index again.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use openraft::{LogId, Vote};
use sluice_log::atomic_file;

use crate::types::NodeId;

pub const VOTE_FILE: &str = "vote";
pub const COMMITTED_FILE: &str = "committed";
/// Largest file either holds: a vote or a log id in JSON is under 200 bytes.
const STATE_FILE_BYTES_MAX: u64 = 4096;

#[derive(Debug, Clone)]
pub struct VoteFiles {
    dir: PathBuf,
}

impl VoteFiles {
    pub fn new(dir: &Path) -> VoteFiles {
        VoteFiles { dir: dir.to_path_buf() }
    }

    pub fn save_vote(&self, vote: &Vote<NodeId>) -> io::Result<()> {
        let bytes = serde_json::to_vec(vote).map_err(io::Error::other)?;
        atomic_file::replace(&self.dir.join(VOTE_FILE), &bytes)
    }

    /// The stored vote; a missing file is no vote, a damaged one an error (a node that may
    /// have voted must not forget it).
    pub fn read_vote(&self) -> io::Result<Option<Vote<NodeId>>> {
        match read_small(&self.dir.join(VOTE_FILE))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other),
        }
    }

    pub fn save_committed(&self, committed: Option<LogId<NodeId>>) -> io::Result<()> {
        let bytes = serde_json::to_vec(&committed).map_err(io::Error::other)?;
        let path = self.dir.join(COMMITTED_FILE);
        let tmp = atomic_file::tmp_path(&path);
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }

    /// The stored committed log id; a missing or damaged file (a crash before the unsynced
    /// write reached the disk) is none.
    pub fn read_committed(&self) -> io::Result<Option<LogId<NodeId>>> {
        let path = self.dir.join(COMMITTED_FILE);
        match read_small(&path)? {
            None => Ok(None),
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(committed) => Ok(committed),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring damaged committed log id");
                    Ok(None)
                }
            },
        }
    }
}

fn read_small(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(STATE_FILE_BYTES_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > STATE_FILE_BYTES_MAX {
        return Err(io::Error::other(format!("{} is larger than {STATE_FILE_BYTES_MAX} bytes", path.display())));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    /// Vote and committed log id read back; a damaged committed file reads as none, a damaged
    /// vote as an error.
    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let files = VoteFiles::new(dir.path());
        assert_eq!(files.read_vote().unwrap(), None);
        assert_eq!(files.read_committed().unwrap(), None);
        let vote = Vote::new_committed(3, 2);
        files.save_vote(&vote).unwrap();
        assert_eq!(files.read_vote().unwrap(), Some(vote));
        let committed = Some(LogId::new(CommittedLeaderId::new(3, 2), 17));
        files.save_committed(committed).unwrap();
        assert_eq!(files.read_committed().unwrap(), committed);
        std::fs::write(dir.path().join(COMMITTED_FILE), b"{").unwrap();
        assert_eq!(files.read_committed().unwrap(), None);
        std::fs::write(dir.path().join(VOTE_FILE), b"{").unwrap();
        assert!(files.read_vote().is_err());
    }
}
