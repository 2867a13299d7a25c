//! An MQTT client's byte stream through the framing and the packet decoder (3.1.1 and 5.0).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sluice_mqtt::fuzz_entry::decode_stream(data);
});
