//! Retained messages: the last retained PUBLISH per MQTT topic, kept durably in the internal
//! compacted topic `__mqtt_retained` (key = MQTT topic, value = payload, a null value clears
//! it), held in memory for new subscribers and rebuilt from that topic at start.

use crate::codec::{Publish, QoS};
use crate::publish::now_ms;
use crate::subscription::Delivery;
use crate::topics::matches;
use crate::QOS_HEADER;
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice_broker::channel::READ_BYTES_MAX;
use sluice_broker::{Broker, BrokerError, BrokerResult, Partition, Submitted, Topic};
use sluice_records::convert::{encode_batch, new_record, read_v2_records};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// The internal topic holding retained messages (`__` as Kafka's internal topics).
pub const RETAINED_TOPIC: &str = "__mqtt_retained";
/// Retained messages held at most: a new topic past it is refused (v5: quota exceeded).
pub const RETAINED_COUNT_MAX: usize = 100_000;
/// Payload bytes of retained messages held in memory at most.
pub const RETAINED_BYTES_MAX: usize = 256 << 20;
/// Segment size of the internal topic: compaction only cleans closed segments, so they are
/// kept small enough to close while the set of retained messages is small.
const RETAINED_SEGMENT_BYTES: &str = "16777216";

/// One retained message.
#[derive(Debug, Clone)]
struct Entry {
    /// Offset in the internal topic: a later store wins even if its append finished first.
    offset: i64,
    payload: Bytes,
    qos: QoS,
    user_properties: Vec<(String, String)>,
}

pub(crate) struct Retained {
    broker: Arc<Broker>,
    entries: RwLock<HashMap<String, Entry>>,
    /// Payload bytes of `entries`, kept with every change (under the entries' write lock).
    payload_bytes: std::sync::atomic::AtomicUsize,
    /// `sluice_mqtt_retained_messages`.
    gauge: sluice_broker::metrics::IntGauge,
}

impl Retained {
    /// Loads the retained messages from the internal topic (on the blocking pool).
    pub async fn open(broker: Arc<Broker>, gauge: sluice_broker::metrics::IntGauge) -> Arc<Retained> {
        let retained =
            Arc::new(Retained { broker, entries: RwLock::default(), payload_bytes: Default::default(), gauge });
        let loader = Arc::clone(&retained);
        let loaded = tokio::task::spawn_blocking(move || loader.load()).await;
        match loaded {
            Ok(Ok(count)) if count > 0 => tracing::info!(count, "mqtt retained messages loaded"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "mqtt retained messages could not be read"),
            Err(e) => tracing::warn!(error = %e, "mqtt retained message loader failed"),
        }
        retained
    }

    fn load(&self) -> BrokerResult<usize> {
        let Some(topic) = self.broker.topic(RETAINED_TOPIC) else { return Ok(0) };
        for partition in topic.partitions() {
            let mut offset = partition.log_start_offset();
            // Bounded: every round moves past at least one batch, up to the end seen now.
            let end = partition.log_end_offset();
            while offset < end {
                let read = partition.read(offset, READ_BYTES_MAX)?;
                let before = offset;
                for batch in read_v2_records(&read.bytes, offset) {
                    let Ok(batch) = batch else { break };
                    offset = offset.max(batch.last_offset.saturating_add(1));
                    for record in batch.records.unwrap_or_default() {
                        let Some(key) = record.key.as_ref().and_then(|k| std::str::from_utf8(k).ok()) else { continue };
                        let qos = match record.headers.iter().find(|(k, _)| k == QOS_HEADER) {
                            Some((_, Some(v))) if &v[..] == b"0" => QoS::AtMostOnce,
                            Some((_, Some(v))) if &v[..] == b"2" => QoS::ExactlyOnce,
                            _ => QoS::AtLeastOnce,
                        };
                        let user_properties = record
                            .headers
                            .iter()
                            .filter(|(k, _)| k != QOS_HEADER)
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into()))
                            .collect();
                        let entry = record.value.filter(|v| !v.is_empty()).map(|payload| Entry {
                            offset: record.offset,
                            payload,
                            qos,
                            user_properties,
                        });
                        self.apply(key, record.offset, entry);
                    }
                }
                if offset == before {
                    break;
                }
            }
        }
        Ok(self.entries.read().map(|e| e.len()).unwrap_or(0))
    }

    /// Whether a retained message for `topic` of `payload_len` bytes fits the bounds.
    pub fn admits(&self, topic: &str, payload_len: usize) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        if payload_len == 0 || entries.contains_key(topic) {
            return true;
        }
        let bytes = self.payload_bytes.load(std::sync::atomic::Ordering::Relaxed);
        entries.len() < RETAINED_COUNT_MAX && bytes.saturating_add(payload_len) <= RETAINED_BYTES_MAX
    }

    /// Appends `publish` to the internal topic (an empty payload: a tombstone). Call
    /// [`Retained::stored`] once it is durable.
    pub async fn submit(&self, publish: &Publish) -> BrokerResult<(Arc<Partition>, Submitted)> {
        let topic = self.topic().await?;
        let partition = topic.partitions().into_iter().next().ok_or(BrokerError::UnknownTopicOrPartition)?;
        let key = Bytes::copy_from_slice(publish.topic.as_bytes());
        let value = (!publish.payload.is_empty()).then(|| publish.payload.clone());
        let qos = Bytes::from_static(match publish.qos {
            QoS::AtMostOnce => b"0",
            QoS::AtLeastOnce => b"1",
            QoS::ExactlyOnce => b"2",
        });
        let mut record = new_record(0, now_ms(), Some(key), value, vec![(QOS_HEADER, Some(qos))]);
        for (k, v) in &publish.properties.user {
            if k != QOS_HEADER {
                record.headers.insert(StrBytes::from_string(k.clone()), Some(Bytes::copy_from_slice(v.as_bytes())));
            }
        }
        let batch = encode_batch(&[record], Compression::None)
            .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e}")))?;
        let submitted = partition.submit(batch)?;
        Ok((partition, submitted))
    }

    /// Takes a durable store at `offset` into the in-memory set.
    pub fn stored(&self, publish_topic: &str, offset: i64, publish: &Publish) {
        let entry = (!publish.payload.is_empty()).then(|| Entry {
            offset,
            payload: publish.payload.clone(),
            qos: publish.qos,
            user_properties: publish.properties.user.clone(),
        });
        self.apply(publish_topic, offset, entry);
    }

    fn apply(&self, topic: &str, offset: i64, entry: Option<Entry>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.get(topic).is_some_and(|e| e.offset > offset) {
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        let added = entry.as_ref().map_or(0, |e| e.payload.len());
        let replaced = match entry {
            Some(entry) => entries.insert(topic.to_string(), entry),
            None => entries.remove(topic),
        };
        self.gauge.set(entries.len() as i64);
        self.payload_bytes.fetch_add(added, Relaxed);
        self.payload_bytes.fetch_sub(replaced.map_or(0, |e| e.payload.len()), Relaxed);
    }

    /// The retained messages `filter` matches, as deliveries with the retain flag, at most
    /// at `granted`.
    pub fn matching(&self, filter: &str, granted: QoS) -> Vec<Delivery> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(topic, _)| matches(filter, topic))
            .map(|(topic, e)| Delivery {
                topic: topic.clone(),
                payload: e.payload.clone(),
                qos: e.qos.min(granted),
                user_properties: e.user_properties.clone(),
                retain: true,
                dup: false,
                ack: None,
                message_expiry: None,
                subscription_ids: Vec::new(),
            })
            .collect()
    }

    /// The internal topic, created compacted with one partition on first use.
    async fn topic(&self) -> BrokerResult<Arc<Topic>> {
        if let Some(topic) = self.broker.topic(RETAINED_TOPIC) {
            return Ok(topic);
        }
        let broker = Arc::clone(&self.broker);
        tokio::task::spawn_blocking(move || {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), RETAINED_SEGMENT_BYTES.to_string()),
            ]);
            match broker.create_topic_anywhere(RETAINED_TOPIC, Some(1), configs) {
                Ok(topic) => Ok(topic),
                Err(BrokerError::TopicAlreadyExists) => {
                    broker.topic(RETAINED_TOPIC).ok_or(BrokerError::UnknownTopicOrPartition)
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| BrokerError::Storage(format!("topic creation task failed: {e}")))?
    }
}
