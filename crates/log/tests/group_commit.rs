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

/// Many async producers awaiting the durable watermark: every acknowledged offset is
/// durable, and they share fsyncs (the flusher runs on the blocking pool).
#[test]
fn async_producers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), LogConfig::default()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let tasks = 16;
    let appends_each = 40;
    let before = log.fsync_count();
    let offsets = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut offsets = Vec::new();
                    for i in 0..appends_each {
                        let info = log.append(&mut batch(1, i, &[t as u8; 64])).unwrap();
                        log.wait_durable(info.last_offset + 1).await.unwrap();
                        assert!(log.durable_offset() > info.last_offset);
                        offsets.push(info.first_offset);
                    }
                    offsets
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await.unwrap());
        }
        all
    });
    let mut offsets = offsets;
    offsets.sort();
    let appends = tasks * appends_each;
    assert_eq!(offsets, (0..appends).collect::<Vec<_>>());
    let fsyncs = log.fsync_count() - before;
    assert!(fsyncs < appends as u64, "{fsyncs} fsyncs for {appends} appends");
    eprintln!("{fsyncs} fsyncs for {appends} async appends");
}

/// Readers running beside appends and rolls only ever see whole, valid, dense batches.
#[test]
fn reads_during_appends_see_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), common::small_config()).unwrap());
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..300 {
                log.append(&mut batch(2, i, &[i as u8; 37])).unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let end = log.log_end_offset();
        let r = log.read(0, usize::MAX).unwrap();
        let got = common::split(&r.bytes);
        assert!(got.iter().map(|(o, _)| *o).eq((0..got.len() as i64).map(|i| i * 2)));
        assert!(got.len() as i64 * 2 >= end);
        reads += 1;
    }
    writer.join().unwrap();
}
