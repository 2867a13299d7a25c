//! Proves visibility follows the durable watermark under `flush always` (a record is not
//! readable, counted in the high watermark, or signalled to waiting readers until its
//! fsync is done) and the written end under `flush os`.

use bytes::Bytes;
use sluice_broker::channel::records;
use sluice_broker::{FlushPolicy, LogConfig, Partition};
use std::sync::Arc;
use std::time::Duration;

/// Bound on waiting for a wake-up that must come; generous, never the thing measured.
const WAKE_DEADLINE: Duration = Duration::from_secs(30);

fn open(dir: &std::path::Path, flush: FlushPolicy) -> Arc<Partition> {
    let config = LogConfig { flush, ..LogConfig::default() };
    Arc::new(Partition::open(dir, Arc::from("t"), 0, config).expect("open partition"))
}

fn message(body: &[u8]) -> Vec<u8> {
    records::encode(&[Bytes::copy_from_slice(body)], 1_000, None).expect("encode")
}

/// Under `always`, a record written while its fsync is held back is invisible; once the
/// fsync completes, waiting readers are woken and the record is served.
#[test]
fn always_shows_only_durable_records() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().expect("runtime");
    let _entered = runtime.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(dir.path(), FlushPolicy::Always);
    let mut visible = partition.subscribe();
    partition.log().sync_gate().close();
    let outcome = partition.append_written(&mut message(b"held")).expect("append");
    assert_eq!(outcome.base_offset, 0);
    assert_eq!(partition.written_end_offset(), 1);
    assert_eq!(partition.log_end_offset(), 0, "high watermark passed an unsynced record");
    let read = partition.read(0, 1 << 20).expect("read");
    assert!(read.bytes.is_empty(), "an unsynced record was served");
    assert_eq!(read.log_end_offset, 0);
    assert!(!visible.has_changed().expect("sender alive"));
    partition.log().sync_gate().open();
    runtime.block_on(async {
        tokio::time::timeout(WAKE_DEADLINE, visible.changed()).await.expect("woken").expect("sender alive");
    });
    assert_eq!(*visible.borrow(), 1);
    assert_eq!(partition.log_end_offset(), 1);
    assert!(partition.durable_offset() >= 1);
    let read = partition.read(0, 1 << 20).expect("read");
    assert!(!read.bytes.is_empty());
    assert_eq!(read.log_end_offset, 1);
}

/// Under `os` the written end is visible at once, fsync or not.
#[test]
fn os_shows_written_records() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().expect("runtime");
    let _entered = runtime.enter();
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open(dir.path(), FlushPolicy::Os);
    let visible = partition.subscribe();
    partition.log().sync_gate().close();
    partition.append_written(&mut message(b"page cache")).expect("append");
    assert_eq!(partition.log_end_offset(), 1);
    assert_eq!(*visible.borrow(), 1);
    assert!(!partition.read(0, 1 << 20).expect("read").bytes.is_empty());
    partition.log().sync_gate().open();
}
