//! What NSQ AUTH reads from the network: an auth server's HTTP answer and its JSON
//! permissions (regular expressions, TTL), and a TLS client certificate's subject.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice_nsq::fuzz_entry::auth_inputs(data);
});
