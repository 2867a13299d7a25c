//! An NSQ client's byte stream through the command codec and every handler's argument parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice_nsq::fuzz_entry::parse_commands(data);
});
