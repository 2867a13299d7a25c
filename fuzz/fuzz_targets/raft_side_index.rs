//! An arbitrary file as a partition group's Raft side index (`raft/side-index`) when the
//! node starts: opening must keep the longest valid prefix of records (a torn or corrupt tail
//! is cut) or refuse with an error, never panic; what it kept must be consistent (Raft
//! indexes increasing) and survive a reopen.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::storage::side_index::{SideIndex, SIDE_INDEX_FILE};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    std::fs::write(dir.path().join(SIDE_INDEX_FILE), data).expect("writing the side index");
    let Ok(side) = SideIndex::open(dir.path(), 0) else { return };
    let kept: Vec<u64> = side.range(0, u64::MAX).iter().map(|r| r.log_id.index).collect();
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "side index kept indexes out of order: {kept:?}");
    drop(side);
    let again = SideIndex::open(dir.path(), 0).expect("a side index opened once opens again");
    let reopened: Vec<u64> = again.range(0, u64::MAX).iter().map(|r| r.log_id.index).collect();
    assert_eq!(kept, reopened, "reopening changed what the side index holds");
});
