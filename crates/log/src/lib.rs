//! Sluice storage engine: one partition's log as a directory of segments of Kafka
//! RecordBatch v2 batches, stored verbatim, with a sparse offset index and a time index.
//!
//! This crate knows files, offsets, batch headers, CRCs, recovery, retention and
//! flushing. It knows nothing of protocols or networking. Every method takes
//! `&self`: a `PartitionLog` is internally synchronised and can be shared in an `Arc`.
//! Calls do blocking file I/O, except `wait_durable`, which awaits the durability
//! watermark while a flusher fsyncs on tokio's blocking pool. The file formats are described in `docs/format.md`.

mod append;
pub mod atomic_file;
pub mod batch;
mod cadence;
mod compact;
mod compaction_checkpoint;
mod config;
mod disk;
pub mod durable_dir;
mod error;
mod fd_limit;
mod file_cache;
mod group_commit;
mod index;
mod index_file;
mod layout;
mod log_start;
mod partition;
mod read;
mod recovery;
mod recovery_point;
mod retention;
mod scan;
mod sealed;
mod segment;
pub mod stats;
#[cfg(test)]
mod test_batch;
mod time_index;

pub use batch::{BatchHeader, BATCH_HEADER_LEN};
pub use compact::KEY_MAP_BYTES_MAX;
pub use config::{Compaction, FlushPolicy, LogConfig};
#[cfg(feature = "test-seams")]
pub use disk::gate::Gate as SyncGate;
pub use error::{AppendError, CompactError, FlushError, OpenError, ReadError, TruncateError};
pub use fd_limit::{raise_open_files_limit, OpenFilesLimit};
pub use file_cache::{open_files, open_files_max, reopens, set_open_files_max, OPEN_FILES_MAX_DEFAULT};
pub use group_commit::Durable;
pub use layout::RAFT_DIR;
pub use partition::{
    AppendInfo, CompactionReport, PartitionLog, ReadResult, RecoveryReport, RetentionReport, TimestampHit, Truncation,
};
pub use read::FirstBatch;
pub use retention::RetentionHold;
