//! A full disk refuses an offset commit but does not stop later ones: the offsets log cuts
//! the failed write back to a whole record, so commits go through again once space is freed
//! and everything committed before and after reads back after a reopen.

use sluice_broker::group::offsets::OffsetStore;
use sluice_broker::group::Committed;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for this test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn committed(offset: i64) -> Committed {
    Committed { offset, leader_epoch: -1, metadata: Some("m".repeat(200)), commit_ts_ms: 1 }
}

/// Writes a filler file until the file system refuses; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![0u8; 4096];
    for _ in 0..10_000 {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    // Single bytes for the slack the page-sized writes left.
    for _ in 0..4096 {
        if file.write_all(&[0]).and_then(|()| file.flush()).is_err() {
            break;
        }
    }
    path
}

#[test]
fn commits_resume_after_a_full_disk_with_nothing_partial_kept() {
    let temp = tempfile::tempdir().expect("temp dir");
    let _mount = match Tmpfs::mount(temp.path(), "256k") {
        Ok(mount) => mount,
        Err(reason) => panic!(
            "offsets full-disk test cannot run: mounting a small tmpfs failed ({reason}); it needs root and \
             permission to mount (CI runs as root)"
        ),
    };
    let dir = temp.path().join("groups");
    let mut store = OffsetStore::open(&dir).expect("open");
    store.commit("g", &[("t".into(), 0, committed(10))]).expect("commit before the disk fills");
    let filler = fill(temp.path());

    // Many partitions in one commit: far more than the slack left, so a write fails part way.
    let big: Vec<(String, i32, Committed)> = (0..200).map(|p| ("t".to_string(), p, committed(20))).collect();
    assert!(store.commit("g", &big).is_err(), "a commit must fail on a full disk");
    assert_eq!(store.get("g", "t", 0).map(|c| c.offset), Some(10), "a failed commit is not applied");

    std::fs::remove_file(&filler).expect("free the space");
    store.commit("g", &[("t".into(), 0, committed(30))]).expect("commits go through once space is freed");
    store.commit("g", &big[1..]).expect("a large commit too");
    drop(store);

    let store = OffsetStore::open(&dir).expect("reopen");
    assert_eq!(store.get("g", "t", 0).map(|c| c.offset), Some(30), "the commit after the full disk survives a reopen");
    assert_eq!(store.all("g").len(), 200);
    assert!(store.all("g").iter().skip(1).all(|(_, _, c)| c.offset == 20));
}
