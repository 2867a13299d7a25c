//! The power-cut filesystem's durability model, checked through real syscalls on a mount.

use sluice_powercut::PowerCutFs;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

fn mounted() -> (tempfile::TempDir, PowerCutFs) {
    let dir = tempfile::Builder::new().prefix("powercut-test-").tempdir().expect("temp dir");
    let fs = PowerCutFs::mount(dir.path()).unwrap_or_else(|e| {
        panic!("cannot mount the power-cut FUSE filesystem (needs /dev/fuse and fusermount3 from fuse3): {e}")
    });
    (dir, fs)
}

fn sync_dir(path: &Path) {
    File::open(path).expect("open dir").sync_all().expect("fsync dir");
}

fn append(path: &Path, bytes: &[u8]) -> File {
    let mut f = OpenOptions::new().create(true).append(true).open(path).expect("open");
    f.write_all(bytes).expect("write");
    f
}

#[test]
fn only_fsynced_data_survives() {
    // write, fsync, write, cut: only the first write survives.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    let path = root.join("log");
    let f = append(&path, b"first");
    f.sync_all().expect("fsync");
    sync_dir(&root);
    drop(f);
    append(&path, b"-second");
    assert_eq!(fs::read(&path).expect("read"), b"first-second");
    let report = fs.power_cycle().expect("power cycle");
    assert_eq!(report.files_reverted, 1);
    assert_eq!(fs::read(&path).expect("read"), b"first");
}

#[test]
fn fdatasync_and_overwrites_are_durable() {
    // fdatasync makes data durable like fsync, including overwrites and truncation.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    let path = root.join("data");
    let f = append(&path, b"aaaaaaaaaa");
    sync_dir(&root);
    f.sync_data().expect("fdatasync");
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    std::os::unix::fs::FileExt::write_at(&f, b"BB", 3).expect("write_at");
    f.set_len(8).expect("truncate");
    f.sync_data().expect("fdatasync");
    std::os::unix::fs::FileExt::write_at(&f, b"CC", 0).expect("write_at");
    fs.power_cycle().expect("power cycle");
    assert_eq!(fs::read(&path).expect("read"), b"aaaBBaaa");
}

#[test]
fn create_without_dir_fsync_is_lost() {
    // A file created and fsynced, but whose directory was not fsynced, is gone after a cut.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    let f = append(&root.join("new"), b"data");
    f.sync_all().expect("fsync file");
    drop(f);
    fs::create_dir(root.join("sub")).expect("mkdir");
    fs.power_cycle().expect("power cycle");
    assert!(!root.join("new").exists(), "created file survived without a directory fsync");
    assert!(!root.join("sub").exists(), "created directory survived without a directory fsync");
}

#[test]
fn dir_fsync_makes_entries_durable() {
    // After fsync of the directory a created file (with no data fsync) exists, empty; a
    // subdirectory's own entries still need the subdirectory's fsync.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    append(&root.join("named"), b"unsynced");
    fs::create_dir(root.join("sub")).expect("mkdir");
    append(&root.join("sub/inner"), b"x").sync_all().expect("fsync");
    sync_dir(&root);
    fs.power_cycle().expect("power cycle");
    assert_eq!(fs::read(root.join("named")).expect("named survives"), b"");
    assert!(root.join("sub").is_dir());
    assert!(!root.join("sub/inner").exists(), "entry survived without fsync of its own directory");
}

#[test]
fn rename_and_unlink_revert_without_dir_fsync() {
    // An atomic replace (write tmp, fsync, rename) without a directory fsync reverts to the
    // old file; an unlink without one brings the file back; with the fsync both stick.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    append(&root.join("state"), b"old").sync_all().expect("fsync");
    append(&root.join("doomed"), b"keep").sync_all().expect("fsync");
    sync_dir(&root);
    append(&root.join("state.tmp"), b"new").sync_all().expect("fsync");
    fs::rename(root.join("state.tmp"), root.join("state")).expect("rename");
    fs::remove_file(root.join("doomed")).expect("unlink");
    assert_eq!(fs::read(root.join("state")).expect("read"), b"new");
    fs.power_cycle().expect("power cycle");
    assert_eq!(fs::read(root.join("state")).expect("read"), b"old");
    assert_eq!(fs::read(root.join("doomed")).expect("unlinked file is back"), b"keep");
    assert!(!root.join("state.tmp").exists());

    append(&root.join("state.tmp"), b"new").sync_all().expect("fsync");
    fs::rename(root.join("state.tmp"), root.join("state")).expect("rename");
    fs::remove_file(root.join("doomed")).expect("unlink");
    sync_dir(&root);
    fs.power_cycle().expect("power cycle");
    assert_eq!(fs::read(root.join("state")).expect("read"), b"new");
    assert!(!root.join("doomed").exists());
    assert!(!root.join("state.tmp").exists());
}

#[test]
fn cut_fails_every_later_operation() {
    // Between the cut and the restore the disk is dead: writes and fsyncs fail, and nothing
    // written then survives.
    let (_dir, mut fs) = mounted();
    let root = fs.mountpoint().to_path_buf();
    let mut f = append(&root.join("f"), b"a");
    f.sync_all().expect("fsync");
    sync_dir(&root);
    fs.cut();
    let wrote = f.write_all(b"b").and_then(|()| f.sync_all());
    assert!(wrote.is_err(), "a write and fsync after the cut succeeded");
    drop(f);
    fs.restore().expect("restore");
    assert_eq!(fs::read(root.join("f")).expect("read"), b"a");
}
