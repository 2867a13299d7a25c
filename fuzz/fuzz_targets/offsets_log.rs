//! An arbitrary file as the committed-offsets log (`groups/offsets.log`) at start-up: replay
//! must not panic, must cut exactly the bad tail, and the store must accept commits after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::group::offsets::OffsetStore;
use sluice_broker::group::Committed;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("offsets.log");
    std::fs::write(&path, data).expect("writing the offsets log");
    let Ok(store) = OffsetStore::open(dir.path()) else { return };
    let live = store.len();
    drop(store);
    let mut store = OffsetStore::open(dir.path()).expect("a recovered offsets log reopens");
    assert_eq!(store.len(), live, "reopening a recovered offsets log changed it");
    let commit = Committed { offset: 7, leader_epoch: 0, metadata: None, commit_ts_ms: 1 };
    store.commit("fuzz-group", &[("t".to_string(), 0, commit.clone())]).expect("commit after recovery");
    drop(store);
    let store = OffsetStore::open(dir.path()).expect("reopen");
    assert_eq!(store.get("fuzz-group", "t", 0), Some(&commit), "commit after recovery lost");
});
