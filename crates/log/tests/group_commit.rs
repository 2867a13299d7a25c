//! Group commit: concurrent producers share fsyncs and every acknowledged offset is durable.

mod common;

use std::sync::Arc;

use common::batch;
use sluice_log::{LogConfig, PartitionLog};

/// Many threads appending and syncing: all records durable, offsets unique, fsyncs shared.
#[test]
fn concurrent_producers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), LogConfig::default()).unwrap());
    let threads = 8;
    let appends_each = 40;
    let before = log.fsync_count();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut offsets = Vec::new();
                for i in 0..appends_each {
                    let info = log.append(&mut batch(1, i, &[t as u8; 64])).unwrap();
                    log.sync_through(info.last_offset + 1).unwrap();
                    assert!(log.durable_offset() > info.last_offset);
                    offsets.push(info.first_offset);
                }
                offsets
            })
        })
        .collect();
    let mut offsets: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    offsets.sort();
    let appends = threads * appends_each;
    assert_eq!(offsets, (0..appends).collect::<Vec<_>>());
    let fsyncs = log.fsync_count() - before;
    assert!(fsyncs < appends as u64, "{fsyncs} fsyncs for {appends} appends");
    eprintln!("{fsyncs} fsyncs for {appends} appends");
}
