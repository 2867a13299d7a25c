//! The data directory's lock: one process at a time owns `<data_dir>/.lock`.
//!
//! Two brokers on one directory would assign the same offsets to different messages and
//! overwrite each other's segments, so `serve` takes an exclusive `flock` before recovery
//! touches anything and holds it for the life of the process. The kernel releases it when the
//! process ends, however it ends (`kill -9` included), so a stale file never blocks a restart.
//! The holder's PID is written into the file only to name it in the refusal.

use anyhow::{bail, Context as _};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = ".lock";
/// Most bytes of the file read back to name the holder (a PID and a newline).
const HOLDER_TEXT_MAX: u64 = 64;

/// Held for as long as the value lives; dropping it (or exiting) releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    /// The locked file; the lock is the open file description's, so it must stay open.
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and locks it, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        // Not truncated on open: the holder's PID must still be readable by a refused second process.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder_of(&mut file);
                bail!(
                    "data directory {} is in use by another sluice process ({holder}); \
                     stop it or choose another --data-dir",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        write_pid(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(DataDirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()
}

/// "pid N" from the lock file, or a plain phrase when it holds no readable PID.
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let read = file.seek(SeekFrom::Start(0)).and_then(|_| file.take(HOLDER_TEXT_MAX).read_to_string(&mut text));
    match read.ok().and_then(|_| text.trim().parse::<u32>().ok()) {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A second lock on the same directory is refused, naming this process; dropping frees it.
    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let refused = DataDirLock::acquire(dir.path()).expect_err("second lock must fail");
        assert!(refused.to_string().contains(&format!("pid {}", std::process::id())), "{refused}");
        drop(first);
        DataDirLock::acquire(dir.path()).expect("lock after release");
    }
}
