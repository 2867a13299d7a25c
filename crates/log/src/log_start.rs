//! The partition's log start offset when DeleteRecords (KIP-107) moved it above the first
//! segment's base offset (as Kafka's log-start-offset checkpoint). Without the file the
//! log starts at its first segment.
//!
//! File `log-start-offset`, 16 bytes: magic `SLS1`, the log start offset (i64 LE), CRC-32C
//! of the first 12 bytes (u32 LE). Replaced whole through `atomic_file`.

use std::io;
use std::path::Path;

use crate::atomic_file;
use crate::layout::LOG_START_FILE;
use crate::sealed;

const MAGIC: &[u8; 4] = b"SLS1";
/// The payload: the log start offset.
const PAYLOAD_LEN: usize = 8;
pub const LOG_START_LEN: usize = sealed::sealed_len(PAYLOAD_LEN);

const _: () = assert!(LOG_START_LEN == 16);

/// The stored log start offset: None when DeleteRecords never moved it.
pub fn load(dir: &Path) -> Result<Option<i64>, String> {
    let path = dir.join(LOG_START_FILE);
    let Some(bytes) = sealed::read(&path)? else { return Ok(None) };
    decode(&bytes).map(Some).map_err(|why| format!("{}: {why}", path.display()))
}

/// Replaces the stored log start offset durably (synced file, rename, synced directory).
pub fn store(dir: &Path, offset: i64) -> io::Result<()> {
    atomic_file::replace(&dir.join(LOG_START_FILE), &encode(offset))
}

fn encode(offset: i64) -> Vec<u8> {
    sealed::seal(MAGIC, &offset.to_le_bytes())
}

fn decode(bytes: &[u8]) -> Result<i64, String> {
    let offset = sealed::i64_at(sealed::unseal(MAGIC, PAYLOAD_LEN, bytes)?, 0);
    if offset < 0 {
        return Err(format!("negative offset {offset}"));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A stored log start reads back; a damaged file is reported, a missing one is None.
    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Ok(None));
        store(dir.path(), 4242).unwrap();
        assert_eq!(load(dir.path()), Ok(Some(4242)));
        let path = dir.path().join(LOG_START_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[6] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(load(dir.path()).unwrap_err().contains("checksum"));
    }
}
