//! An arbitrary batch applied as a replica applies a committed batch of a partition's log
//! (`Partition::on_applied`): a channel-state control batch is decoded, anything else is
//! ignored, and nothing panics whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::channel::ChannelStates;

fuzz_target!(|data: &[u8]| {
    let states = ChannelStates::default();
    states.apply(data, 0);
    let snapshot = states.snapshot();
    // A floor is only held for a channel the batch named.
    assert_eq!(states.retention_floor().is_some(), snapshot.values().any(|r| !r.deleted));
});
