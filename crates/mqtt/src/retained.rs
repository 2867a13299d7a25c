//! Retained messages: the last retained PUBLISH per MQTT topic, kept durably in the internal
//! compacted topic `__mqtt_retained` (key = MQTT topic, value = payload, a null value clears
//! it), held in memory for new subscribers and rebuilt from that topic at start. A v5
//! Message Expiry Interval travels as the `mqtt-expires-at` header: an expired retained
//! message is not sent any more (and is dropped from memory when room is needed).

use crate::codec::{Publish, QoS};
use crate::publish::now_ms;
use crate::subscription::Delivery;
use crate::topics::matches;
use crate::{is_own_header, EXPIRY_HEADER, QOS_HEADER};
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice_broker::channel::READ_BYTES_MAX;
use sluice_broker::{Broker, BrokerError, BrokerResult, Topic};
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
    /// When its Message Expiry Interval runs out (ms since the epoch).
    expires_at_ms: Option<i64>,
}

impl Entry {
    fn expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

pub(crate) struct Retained {
    broker: Arc<Broker>,
    entries: RwLock<HashMap<String, Entry>>,
    /// Payload bytes of `entries`, kept with every change (under the entries' write lock).
    payload_bytes: std::sync::atomic::AtomicUsize,
    /// `sluice_mqtt_retained_messages`.
    gauge: sluice_broker::metrics::IntGauge,
    /// The next offset of the internal topic (one partition) to read into memory.
    read_to: std::sync::atomic::AtomicI64,
}

impl Retained {
    /// Loads the retained messages from the internal topic (on the blocking pool). In a
    /// cluster it keeps reading that topic's replica here: a retained message published
    /// through another node is served by this one too.
    pub async fn open(broker: Arc<Broker>, gauge: sluice_broker::metrics::IntGauge) -> Arc<Retained> {
        let clustered = broker.cluster().is_some();
        let retained = Arc::new(Retained {
            broker,
            entries: RwLock::default(),
            payload_bytes: Default::default(),
            gauge,
            read_to: Default::default(),
        });
        match Arc::clone(&retained).catch_up().await {
            Ok(count) if count > 0 => tracing::info!(count, "mqtt retained messages loaded"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mqtt retained messages could not be read"),
        }
        if clustered {
            tokio::spawn(follow(Arc::downgrade(&retained)));
        }
        retained
    }

    /// Reads what the internal topic gained since the last call (on the blocking pool);
    /// the number of retained messages held.
    async fn catch_up(self: Arc<Self>) -> BrokerResult<usize> {
        tokio::task::spawn_blocking(move || self.load())
            .await
            .map_err(|e| BrokerError::Storage(format!("retained message reader failed: {e}")))?
    }

    fn load(&self) -> BrokerResult<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(topic) = self.broker.topic(RETAINED_TOPIC) else { return Ok(0) };
        for partition in topic.partitions() {
            // Bounded: every round moves past at least one batch, up to the end seen now.
            let end = partition.log_end_offset();
            let read_to = self.read_to.load(Relaxed);
            // A log that ends before what was read is a new one (the topic made again).
            let mut offset = partition.log_start_offset().max(if read_to > end { 0 } else { read_to });
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
                            .filter(|(k, _)| !is_own_header(k))
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into()))
                            .collect();
                        let expires_at_ms = (record.headers.iter().find(|(k, _)| k == EXPIRY_HEADER))
                            .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok()?.parse::<i64>().ok());
                        let entry = record.value.filter(|v| !v.is_empty()).map(|payload| Entry {
                            offset: record.offset,
                            payload,
                            qos,
                            user_properties,
                            expires_at_ms,
                        });
                        // One that expired while the broker was down clears the topic.
                        let entry = entry.filter(|e| !e.expired(now_ms()));
                        self.apply(key, record.offset, entry);
                    }
                }
                if offset == before {
                    break;
                }
            }
            self.read_to.store(offset, Relaxed);
        }
        Ok(self.entries.read().map(|e| e.len()).unwrap_or(0))
    }

    /// Whether a retained message for `topic` of `payload_len` bytes fits the bounds.
    pub fn admits(&self, topic: &str, payload_len: usize) -> bool {
        let fits = || {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if payload_len == 0 || entries.contains_key(topic) {
                return true;
            }
            let bytes = self.payload_bytes.load(std::sync::atomic::Ordering::Relaxed);
            entries.len() < RETAINED_COUNT_MAX && bytes.saturating_add(payload_len) <= RETAINED_BYTES_MAX
        };
        // Expired ones make room only when room is short: the sweep walks every entry.
        fits() || (self.drop_expired() > 0 && fits())
    }

    /// Drops expired retained messages from memory (their records stay in the compacted topic
    /// until a later store for the topic replaces them; a restart skips them); how many.
    fn drop_expired(&self) -> usize {
        let now = now_ms();
        let expired: Vec<(String, i64)> = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            entries.iter().filter(|(_, e)| e.expired(now)).map(|(t, e)| (t.clone(), e.offset)).collect()
        };
        for (topic, offset) in &expired {
            self.apply(topic, *offset, None);
        }
        expired.len()
    }

    /// Appends `publish` to the internal topic (an empty payload: a tombstone). Call
    /// [`Retained::stored`] once it is durable.
    pub async fn submit(&self, publish: &Publish, expires_at_ms: Option<i64>) -> BrokerResult<crate::publish::Written> {
        let topic = self.topic().await?;
        let partition = topic.partitions().into_iter().next().ok_or(BrokerError::UnknownTopicOrPartition)?;
        let key = Bytes::copy_from_slice(publish.topic.as_bytes());
        let value = (!publish.payload.is_empty()).then(|| publish.payload.clone());
        let qos = Bytes::from_static(match publish.qos {
            QoS::AtMostOnce => b"0",
            QoS::AtLeastOnce => b"1",
            QoS::ExactlyOnce => b"2",
        });
        let mut headers = vec![(QOS_HEADER, Some(qos))];
        if let Some(at) = expires_at_ms {
            headers.push((EXPIRY_HEADER, Some(Bytes::from(at.to_string()))));
        }
        let mut record = new_record(0, now_ms(), Some(key), value, headers);
        for (k, v) in &publish.properties.user {
            if !is_own_header(k) {
                record.headers.insert(StrBytes::from_string(k.clone()), Some(Bytes::copy_from_slice(v.as_bytes())));
            }
        }
        let batch = encode_batch(&[record], Compression::None)
            .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e}")))?;
        crate::publish::write(&self.broker, RETAINED_TOPIC, &partition, batch).await
    }

    /// Takes a durable store at `offset` into the in-memory set.
    pub fn stored(&self, publish_topic: &str, offset: i64, publish: &Publish, expires_at_ms: Option<i64>) {
        let entry = (!publish.payload.is_empty()).then(|| Entry {
            offset,
            payload: publish.payload.clone(),
            qos: publish.qos,
            user_properties: publish.properties.user.clone(),
            expires_at_ms,
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

    /// The retained messages `filter` matches and that have not expired, as deliveries with
    /// the retain flag (and what is left of their expiry interval), at most at `granted`.
    pub fn matching(&self, filter: &str, granted: QoS) -> Vec<Delivery> {
        let now = now_ms();
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(topic, e)| !e.expired(now) && matches(filter, topic))
            .map(|(topic, e)| Delivery {
                topic: topic.clone(),
                payload: e.payload.clone(),
                qos: e.qos.min(granted),
                user_properties: e.user_properties.clone(),
                retain: true,
                dup: false,
                ack: None,
                // Rounded up, as for records: a message with 300 ms left still says 1 s.
                message_expiry: e.expires_at_ms.map(|at| u32::try_from((at - now + 999) / 1000).unwrap_or(u32::MAX)),
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

/// How often a cluster node reads the retained messages other nodes stored.
const FOLLOW_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

/// In a cluster: keeps the retained messages held here up with the internal topic's replica
/// on this node, until the listener (and its `Retained`) is gone.
async fn follow(retained: std::sync::Weak<Retained>) {
    let mut tick = tokio::time::interval(FOLLOW_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(retained) = retained.upgrade() else { return };
        let behind = retained.broker.topic(RETAINED_TOPIC).is_some_and(|t| {
            let read_to = retained.read_to.load(std::sync::atomic::Ordering::Relaxed);
            t.partitions().iter().any(|p| p.log_end_offset() > read_to)
        });
        if behind {
            if let Err(e) = retained.catch_up().await {
                tracing::warn!(error = %e, "mqtt retained messages stored elsewhere could not be read");
            }
        }
    }
}
