//! The snappy and deflate stream decoders an NSQ connection switches to after IDENTIFY.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice_nsq::fuzz_entry::inflate_streams(data);
});
