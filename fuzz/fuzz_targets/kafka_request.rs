//! A Kafka request frame through the listener's decoding (header, served version, body), and
//! Produce records through what the produce path does with them before appending.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_records::convert;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = sluice_kafka::fuzz_entry::decode_request(Bytes::copy_from_slice(data)) else { return };
    for records in request.produce_records {
        let batches = match convert::records_magic(&records) {
            Some(2) => records.to_vec(),
            Some(0 | 1) => match convert::upconvert_message_set(&records, 0) {
                Ok(batches) => batches,
                Err(_) => continue,
            },
            _ => continue,
        };
        // What the log checks before writing: every batch whole and valid.
        let mut rest = &batches[..];
        while let Ok(header) = sluice_log::batch::validate(rest, 1 << 20) {
            assert!(header.total_len() <= rest.len());
            rest = &rest[header.total_len()..];
        }
    }
});
