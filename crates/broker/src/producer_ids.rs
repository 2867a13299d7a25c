//! Producer id allocation for idempotent producers (InitProducerId).
//!
//! Ids are handed out from blocks: the file `producer_ids` holds the first id of the
//! next unreserved block, written (and fsynced) before any id of the current block is
//! used, so ids are never reused across restarts and a restart costs at most one block.

use crate::error::BrokerError;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Ids reserved per fsync of the counter file.
const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIds {
    path: PathBuf,
    state: Mutex<Block>,
}

struct Block {
    next: i64,
    end: i64,
}

impl ProducerIds {
    pub fn open(data_dir: &Path) -> Result<ProducerIds, BrokerError> {
        let path = data_dir.join("producer_ids");
        let stored = match fs::read_to_string(&path) {
            Ok(text) => {
                text.trim().parse::<i64>().map_err(|e| BrokerError::Storage(format!("{}: {e}", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(BrokerError::Storage(format!("{}: {e}", path.display()))),
        };
        let start = stored.max(0);
        Ok(ProducerIds { path, state: Mutex::new(Block { next: start, end: start }) })
    }

    /// A producer id never handed out before.
    pub fn allocate(&self) -> Result<i64, BrokerError> {
        let mut block = self.state.lock().map_err(|_| BrokerError::Storage("producer id lock poisoned".into()))?;
        if block.next >= block.end {
            let end = block.next + BLOCK_SIZE;
            persist(&self.path, end)?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

fn persist(path: &Path, value: i64) -> Result<(), BrokerError> {
    sluice_log::atomic_file::replace(path, value.to_string().as_bytes())
        .map_err(|e| BrokerError::Storage(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        let a = ids.allocate().expect("id");
        let b = ids.allocate().expect("id");
        assert_ne!(a, b);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).expect("reopen");
        let c = ids.allocate().expect("id");
        assert!(c > b);
    }
}
