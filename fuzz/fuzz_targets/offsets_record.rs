//! Arbitrary bytes as the key and value of a `__consumer_offsets` record (read back from a
//! replicated partition when a node becomes a group's coordinator): decoding must not panic,
//! and whatever decodes re-encodes to a record that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::group::offsets_record::{decode_key, decode_value, encode_key, encode_value};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (key, value) = data.split_at(split);
    if let Some(k) = decode_key(key) {
        assert_eq!(decode_key(&encode_key(&k)), Some(k), "an offset key round-trips");
    }
    if let Some(v) = decode_value(value) {
        let again = decode_value(&encode_value(&v)).expect("an encoded value decodes");
        assert_eq!((again.offset, again.commit_ts_ms, again.metadata), (v.offset, v.commit_ts_ms, v.metadata));
    }
});
