//! The partition's log start offset when DeleteRecords (KIP-107) moved it above the first
//! segment's base offset (as Kafka's log-start-offset checkpoint). Without the file the
//! log starts at its first segment.
//!
//! File `log-start-offset`, 16 bytes: magic `SLS1`, the log start offset (i64 LE), CRC-32C
//! of the first 12 bytes (u32 LE). Replaced whole through `atomic_file`.

use std::fs;
use std::io;
use std::path::Path;

use crate::atomic_file;
use crate::layout::LOG_START_FILE;

const MAGIC: &[u8; 4] = b"SLS1";
const OFFSET_AT: usize = MAGIC.len();
const CRC_AT: usize = OFFSET_AT + 8;
pub const LOG_START_LEN: usize = CRC_AT + 4;

const _: () = assert!(LOG_START_LEN == 16);

/// The stored log start offset: None when DeleteRecords never moved it.
pub fn load(dir: &Path) -> Result<Option<i64>, String> {
    let path = dir.join(LOG_START_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    decode(&bytes).map(Some).map_err(|why| format!("{}: {why}", path.display()))
}

/// Replaces the stored log start offset durably (synced file, rename, synced directory).
pub fn store(dir: &Path, offset: i64) -> io::Result<()> {
    atomic_file::replace(&dir.join(LOG_START_FILE), &encode(offset))
}

fn encode(offset: i64) -> [u8; LOG_START_LEN] {
    let mut out = [0u8; LOG_START_LEN];
    out[..OFFSET_AT].copy_from_slice(MAGIC);
    out[OFFSET_AT..CRC_AT].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32c::crc32c(&out[..CRC_AT]);
    out[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() != LOG_START_LEN {
        return Err(format!("{} bytes, expected {LOG_START_LEN}", bytes.len()));
    }
    if &bytes[..OFFSET_AT] != MAGIC {
        return Err("bad magic".to_string());
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[CRC_AT..]);
    if crc32c::crc32c(&bytes[..CRC_AT]) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch".to_string());
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[OFFSET_AT..CRC_AT]);
    let offset = i64::from_le_bytes(offset);
    if offset < 0 {
        return Err(format!("negative offset {offset}"));
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

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
