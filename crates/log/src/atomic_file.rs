//! The one way Sluice replaces a file atomically: write a temp file beside it, fsync the
//! file, rename it over the target, fsync the directory. A crash leaves either the old
//! file or the new one, never a mix, and once this returns the new one survives power
//! loss. Every state file (topic metadata, cluster id, producer ids, channel
//! checkpoints, offsets-log compaction, rebuilt indexes) goes through here.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::durable_dir::sync_parent;

/// Suffix of the temp file, `<name>.tmp` beside the target; a leftover one is the
/// remains of a crash before the rename and can be deleted (recovery does so in a
/// partition directory).
pub use crate::layout::TMP_SUFFIX;

/// Replaces `path` with `contents`.
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_with(path, |file| file.write_all(contents)).map(drop)
}

/// Replaces `path` with what `write` writes into the (empty) temp file, and returns the
/// new file, open for reading and writing, positioned where `write` left it.
pub fn replace_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<File> {
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)?;
    Ok(file)
}

/// `<path>.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".");
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    /// A replacement leaves only the new contents and no temp file; the returned handle is
    /// the new file.
    #[test]
    fn replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old contents").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!tmp_path(&path).exists());
        let mut file = replace_with(&path, |f| f.write_all(b"abc")).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut read = String::new();
        file.read_to_string(&mut read).unwrap();
        assert_eq!(read, "abc");
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    /// A failed write leaves the old file untouched.
    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        std::fs::write(&path, b"1000").unwrap();
        let failed = replace_with(&path, |f| {
            f.write_all(b"20")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"1000");
    }
}
