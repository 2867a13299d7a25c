//! The partition's recovery point (as Kafka's recovery-point checkpoint): the offset below
//! which every record is known to have been fsynced. A log that opens ending below it, or
//! with segments whose offsets do not join up, has lost acknowledged data; it is refused
//! until an operator accepts it (see `docs/format.md`).
//!
//! File `recovery-point`, 24 bytes: magic `SRP1`, the recovery point (i64 LE), the offset
//! through which the operator accepted holes (i64 LE; holes ending at or below it are not
//! refused again), CRC-32C of the first 20 bytes (u32 LE). Written whole through a synced
//! temp file and a rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::disk::Disk;
use crate::layout::{RECOVERY_POINT_FILE, TMP_SUFFIX};
use crate::sealed;

const MAGIC: &[u8; 4] = b"SRP1";
/// The payload: the recovery point, then the offset holes were accepted through.
const PAYLOAD_LEN: usize = 16;
pub const RECOVERY_POINT_LEN: usize = sealed::sealed_len(PAYLOAD_LEN);

const _: () = assert!(RECOVERY_POINT_LEN == 24);

/// What the file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    /// Every record below this offset was fsynced when it was stored.
    pub offset: i64,
    /// Holes whose missing range ends at or below this were accepted by the operator.
    pub holes_accepted_through: i64,
}

/// The stored recovery point: None when the partition has none yet (new, or written by a
/// version without recovery points).
pub fn load(dir: &Path) -> Result<Option<Stored>, String> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let Some(bytes) = sealed::read(&path)? else { return Ok(None) };
    decode(&bytes).map(Some).map_err(|why| format!("{}: {why}", path.display()))
}

/// Replaces the stored recovery point: temp file, fsync, rename, fsync of the directory.
pub fn store(dir: &Path, disk: &Disk, stored: Stored) -> io::Result<()> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let tmp = dir.join(format!("{RECOVERY_POINT_FILE}.{TMP_SUFFIX}"));
    let mut file: File = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    file.write_all(&encode(stored))?;
    disk.sync_data(&file)?;
    drop(file);
    fs::rename(&tmp, &path)?;
    disk.sync_dir(dir)
}

fn encode(stored: Stored) -> Vec<u8> {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[..8].copy_from_slice(&stored.offset.to_le_bytes());
    payload[8..].copy_from_slice(&stored.holes_accepted_through.to_le_bytes());
    sealed::seal(MAGIC, &payload)
}

fn decode(bytes: &[u8]) -> Result<Stored, String> {
    let payload = sealed::unseal(MAGIC, PAYLOAD_LEN, bytes)?;
    let (offset, holes_accepted_through) = (sealed::i64_at(payload, 0), sealed::i64_at(payload, 8));
    if offset < 0 || holes_accepted_through < 0 {
        return Err(format!("negative offset {offset} or {holes_accepted_through}"));
    }
    Ok(Stored { offset, holes_accepted_through })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored recovery point reads back; a damaged or missing file is told apart.
    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Ok(None));
        let stored = Stored { offset: 1969, holes_accepted_through: 7 };
        store(dir.path(), &Disk::default(), stored).unwrap();
        assert_eq!(load(dir.path()), Ok(Some(stored)));
        assert!(!dir.path().join(format!("{RECOVERY_POINT_FILE}.{TMP_SUFFIX}")).exists());
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[5] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(load(dir.path()).unwrap_err().contains("checksum"));
        fs::write(&path, b"short").unwrap();
        assert!(load(dir.path()).is_err());
    }
}
