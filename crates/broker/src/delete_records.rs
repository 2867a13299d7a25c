//! DeleteRecords (KIP-107) on one partition: Kafka's rules for the requested offset, then
//! the log moves its start (`PartitionLog::advance_log_start`).

use crate::error::{BrokerError, BrokerResult, LogError};
use crate::partition::Partition;

/// The offset a request gives to mean "up to the high watermark".
pub const HIGH_WATERMARK: i64 = -1;

impl Partition {
    /// Deletes the records below `offset` (`HIGH_WATERMARK`: every visible record) and
    /// returns the new log start offset (Kafka's `low_watermark`). An offset past the high
    /// watermark, or negative, is `OffsetOutOfRange`; one at or below the log start changes
    /// nothing. A replicated partition goes through its cluster instead
    /// (`delete_records_replicated`); this refuses it. Blocking: it fsyncs.
    pub fn delete_records(&self, offset: i64) -> BrokerResult<i64> {
        if self.is_clustered() {
            return Err(BrokerError::NotInCluster(
                "DeleteRecords on a replicated partition goes through its cluster".to_string(),
            ));
        }
        let high_watermark = self.log_end_offset();
        let target = if offset == HIGH_WATERMARK { high_watermark } else { offset };
        if !(0..=high_watermark).contains(&target) {
            let log_start = self.log_start_offset();
            return Err(BrokerError::OffsetOutOfRange { offset, log_start, log_end: high_watermark });
        }
        self.log().advance_log_start(target).map_err(|e| BrokerError::Log {
            partition: format!("{}-{}", self.topic, self.index),
            source: LogError::from(e),
        })
    }
}
