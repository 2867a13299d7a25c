//! Bytes claimed to be stored v2 batches (or a legacy message set) through every reader of
//! batches: the log's validator, produce validation (and its keyless-record check), record decoding for NSQ
//! delivery, compaction's record visit and rewrite, down- and up-conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::channel::records;
use sluice_records::convert;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = sluice_log::batch::validate(data, usize::MAX) {
        assert!(header.total_len() <= data.len(), "validated batch longer than its bytes");
        assert_eq!(header.magic, 2);
    }
    if convert::validate_produced(data).is_ok() {
        // What produce accepts, the log's own checks accept too.
        let header = sluice_log::batch::validate(data, usize::MAX).expect("the log refuses a batch produce accepts");
        assert!(sluice_log::batch::check_record_count(&header).is_ok(), "the log refuses a count produce accepts");
    }
    let _ = convert::keyless_records(data);
    let _ = convert::visit_records(data, &mut |_| {});
    let mut parity = false;
    let rewritten = convert::retain_records(data, &mut |_| {
        parity = !parity;
        parity
    });
    if let (Ok(stored), Ok(convert::Retained::Rewritten { batch, .. })) =
        (sluice_log::batch::validate(data, usize::MAX), rewritten)
    {
        // Compaction of a batch the log accepts gives a batch the log accepts, same offsets.
        let header = sluice_log::batch::validate(&batch, usize::MAX).expect("a compacted batch fails the log's checks");
        assert_eq!((header.base_offset, header.last_offset_delta), (stored.base_offset, stored.last_offset_delta));
    }
    for batch in convert::read_v2_records(data, 0).take(1000) {
        let _ = batch.map(|b| b.records.map(|r| r.len()));
    }
    let decoded = records::decode(data, 0);
    assert!(decoded.next_offset >= 0);
    let _ = convert::downconvert_batches(data, 0, 0);
    let _ = convert::downconvert_batches(data, 1, 0);
    let _ = convert::first_record_at_or_after(data, 0);
    let _ = convert::upconvert_message_set(data, 0);
});
