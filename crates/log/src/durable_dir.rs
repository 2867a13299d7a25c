//! Creating directories so that they survive power loss: a new directory's entry lives in
//! its parent, so the parent is fsynced after each directory this creates (`mkdir -p`
//! alone leaves the entries in the page cache, and a power cut can drop a whole topic).

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents, fsyncing the parent of every directory created.
/// A directory that exists already is left alone (it is as durable as whoever made it).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        // Raced with another creator: it exists now, made durable by whoever made it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the file `path` if it does not exist and makes its directory entry durable.
pub fn create_file(path: &Path) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
    sync_parent(path)
}

/// fsyncs the directory that holds `path`'s entry.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every missing level is created, an existing tree is accepted, a file in the way is refused.
    #[test]
    fn creates_missing_levels_only() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
        std::fs::write(root.path().join("f"), b"x").unwrap();
        assert!(create_dir_all(&root.path().join("f/g")).is_err());
        let file = root.path().join("a/new.log");
        create_file(&file).unwrap();
        create_file(&file).unwrap();
        assert!(file.is_file());
    }
}
