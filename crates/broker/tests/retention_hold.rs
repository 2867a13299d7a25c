//! Proves a retention holder (an NSQ channel's unfinished floor) keeps the segments it still
//! needs past size retention, and that the hold lapses once the partition outgrows its cap.

use bytes::Bytes;
use sluice_broker::channel::records;
use sluice_broker::{Broker, BrokerConfig, Durability, RetentionHolder};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

/// A holder that needs everything from a fixed offset on.
struct Floor(i64);

impl RetentionHolder for Floor {
    fn retention_floor(&self, _topic: &str, _partition: i32) -> Option<i64> {
        Some(self.0)
    }
}

fn open(dir: &std::path::Path, hold_bytes_max: u64) -> Arc<Broker> {
    let mut config = BrokerConfig::new(dir);
    config.retention_hold_bytes_max = hold_bytes_max;
    Broker::open(config).expect("open broker")
}

/// A topic with 1 KiB segments and 1 KiB size retention, holding 40 messages of 100 bytes.
async fn filled_topic(broker: &Arc<Broker>) -> Arc<sluice_broker::Partition> {
    let overrides: BTreeMap<String, String> =
        [("segment.bytes", "1024"), ("retention.bytes", "1024"), ("retention.ms", "-1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let topic = broker.create_topic("held", Some(1), overrides).expect("create topic");
    let partition = topic.partition(0).expect("partition 0");
    for _ in 0..40 {
        let batch = records::encode(&[Bytes::from(vec![b'x'; 100])], 1_000, None).expect("encode");
        partition.append(batch, Durability::Written).await.expect("append");
    }
    partition
}

#[tokio::test]
async fn a_holder_keeps_what_it_needs_until_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path(), 1 << 30);
    let partition = filled_topic(&broker).await;
    assert!(partition.log().segment_count() > 3, "small segments rolled");

    let holder: Arc<dyn RetentionHolder> = Arc::new(Floor(0));
    broker.add_retention_holder(Arc::downgrade(&holder) as Weak<dyn RetentionHolder>);
    let hold = broker.retention_hold("held", 0);
    assert_eq!(hold.map(|h| h.keep_from_offset), Some(0));
    let report = partition.log().enforce_retention_holding(0, hold).expect("retention");
    assert_eq!(report.segments_deleted, 0, "the holder still needs offset 0");
    assert_eq!(partition.log_start_offset(), 0);

    drop(holder);
    assert_eq!(broker.retention_hold("held", 0), None, "a dropped holder holds nothing");
    let report = partition.log().enforce_retention_holding(0, broker.retention_hold("held", 0)).expect("retention");
    assert!(report.segments_deleted > 0, "without a holder size retention applies");
    assert!(partition.log_start_offset() > 0);
}

#[tokio::test]
async fn the_hold_lapses_when_the_partition_outgrows_its_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = open(dir.path(), 2048);
    let partition = filled_topic(&broker).await;
    let holder: Arc<dyn RetentionHolder> = Arc::new(Floor(0));
    broker.add_retention_holder(Arc::downgrade(&holder) as Weak<dyn RetentionHolder>);
    let report = partition.log().enforce_retention_holding(0, broker.retention_hold("held", 0)).expect("retention");
    assert!(report.segments_deleted > 0, "over the 2 KiB cap the hold lapses");
}
