//! A PUBLISH into the log: the first topic level names the log topic (auto-created), the
//! whole MQTT topic is the record's key (Kafka's partitioner picks the partition, so one
//! device's messages stay in order in one partition) and its `mqtt-topic` header; v5 user
//! properties become headers too.

use crate::codec::{Publish, QoS, Reason};
use crate::mapping::TopicMap;
use crate::retained::Retained;
use crate::{is_own_header, CLIENT_ID_HEADER, EXPIRY_HEADER, QOS_HEADER, RETAIN_HEADER, TOPIC_HEADER};
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice_broker::{Broker, BrokerError, BrokerResult, Durability, Partition, Submitted, Topic};
use sluice_records::convert::{encode_batch, new_record};
use sluice_records::partitioner::partition_for_key;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a publish was not taken.
#[derive(Debug)]
pub(crate) enum Refusal {
    Broker(BrokerError),
    /// A new retained message past the retained messages' bounds.
    RetainedFull,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Broker(e) => e.fmt(f),
            Refusal::RetainedFull => f.write_str("retained messages at their limit"),
        }
    }
}

impl Refusal {
    /// The v5 reason code a PUBACK or PUBREC carries for it.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::RetainedFull => Reason::QuotaExceeded,
            Refusal::Broker(BrokerError::InvalidTopic(_) | BrokerError::UnknownTopicOrPartition) => {
                Reason::TopicNameInvalid
            }
            Refusal::Broker(BrokerError::MessageTooLarge { .. }) => Reason::PacketTooLarge,
            Refusal::Broker(BrokerError::TopicLimitReached { .. }) => Reason::QuotaExceeded,
            Refusal::Broker(_) => Reason::UnspecifiedError,
        }
    }
}

/// A publish's appends under way: its record, and for a retained one the store.
pub(crate) struct Pending {
    record: Written,
    retained: Option<RetainedStore>,
}

/// A retained message's append to the internal topic: the store, the append, the publish
/// and when it expires (ms since the epoch).
struct RetainedStore(Arc<Retained>, Written, Publish, Option<i64>);

impl Pending {
    /// Waits until every append is durable (the wait of Kafka acks=all), then takes a
    /// retained message into the in-memory set.
    pub async fn wait(self) -> Result<(), Refusal> {
        self.record.committed().await.map_err(Refusal::Broker)?;
        if let Some(RetainedStore(retained, written, publish, expires_at_ms)) = self.retained {
            let base_offset = written.committed().await.map_err(Refusal::Broker)?;
            retained.stored(&publish.topic, base_offset, &publish, expires_at_ms);
        }
        Ok(())
    }
}

/// One append: under way here, or already committed through the partition's leader on
/// another node.
pub(crate) enum Written {
    Here(Arc<Partition>, Submitted),
    /// Forwarded to the leader and committed there, at this offset.
    Forwarded(i64),
}

impl Written {
    /// Waits for the majority commit (a single node: the flush policy); the batch's offset.
    async fn committed(self) -> BrokerResult<i64> {
        match self {
            Written::Here(partition, submitted) => {
                Ok(submitted.wait(&partition, Durability::Committed).await?.base_offset)
            }
            Written::Forwarded(base_offset) => Ok(base_offset),
        }
    }
}

/// Appends `batch` to `partition` of `topic` here, or, in a cluster where another node leads
/// it, through that leader (an MQTT client may connect to any node; its key's partition is
/// fixed). A forward is awaited here, so one connection's publishes keep their order.
pub(crate) async fn write(
    broker: &Broker,
    topic: &str,
    partition: &Arc<Partition>,
    batch: Vec<u8>,
) -> BrokerResult<Written> {
    // Led here (or a single node): submitted here, no copy of the batch kept for a forward; a
    // leadership lost in between fails this publish as any failed append does.
    let led_elsewhere = partition.is_clustered() && !partition.role(broker.node_id()).is_leader;
    match (led_elsewhere, broker.cluster()) {
        (true, Some(cluster)) => {
            Ok(Written::Forwarded(cluster.forward_to_partition(topic, partition.index, batch).await?))
        }
        _ => Ok(Written::Here(Arc::clone(partition), partition.submit(batch)?)),
    }
}

/// Appends `publish` (from the client `client_id`) as one record, and a retained one to the
/// retained messages too. The appends are written (single node) or proposed (cluster) when
/// this returns, in the order the connection called it; the caller waits on the result for
/// the durability its QoS needs.
pub(crate) async fn append(
    broker: &Arc<Broker>,
    retained: &Arc<Retained>,
    mapping: &TopicMap,
    publish: &Publish,
    client_id: &str,
) -> Result<Pending, Refusal> {
    if publish.retain && !retained.admits(&publish.topic, publish.payload.len()) {
        return Err(Refusal::RetainedFull);
    }
    // One clock reading: the record and the retained copy expire at the same instant.
    let received_ms = now_ms();
    let expires_at_ms =
        publish.properties.message_expiry_interval.map(|secs| received_ms.saturating_add(i64::from(secs) * 1000));
    let origin = Origin { client_id, received_ms, expires_at_ms };
    let record =
        submit(broker, &mapping.log_topic_for(&publish.topic), publish, &origin).await.map_err(Refusal::Broker)?;
    let retained = match publish.retain {
        true => {
            let written = retained.submit(publish, expires_at_ms).await.map_err(Refusal::Broker)?;
            Some(RetainedStore(Arc::clone(retained), written, publish.clone(), expires_at_ms))
        }
        false => None,
    };
    Ok(Pending { record, retained })
}

/// Where and when a publish came from, as its record's timestamp and headers say.
struct Origin<'a> {
    client_id: &'a str,
    received_ms: i64,
    /// When a v5 Message Expiry Interval runs out (ms since the epoch).
    expires_at_ms: Option<i64>,
}

/// Appends `publish` as one record; the returned append is written (single node), proposed
/// (cluster), or committed through its leader elsewhere, and the caller waits for the
/// durability its QoS needs.
async fn submit(
    broker: &Arc<Broker>,
    log_topic_name: &str,
    publish: &Publish,
    origin: &Origin<'_>,
) -> BrokerResult<Written> {
    let topic = log_topic(broker, log_topic_name).await?;
    let partitions = topic.partitions();
    if partitions.is_empty() {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let index = partition_for_key(publish.topic.as_bytes(), partitions.len() as u32) as usize;
    let partition = Arc::clone(&partitions[index]);
    let batch = encode(publish, origin)?;
    write(broker, &topic.name, &partition, batch).await
}

/// The log topic, created as NSQ and Kafka auto-creation create it when it is missing.
pub(crate) async fn log_topic(broker: &Arc<Broker>, name: &str) -> BrokerResult<Arc<Topic>> {
    if let Some(topic) = broker.topic(name) {
        return Ok(topic);
    }
    if !broker.config().auto_create_topics {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let (broker, name) = (Arc::clone(broker), name.to_string());
    // Creation fsyncs directories (and in a cluster waits for the metadata group).
    tokio::task::spawn_blocking(move || match broker.create_topic_anywhere(&name, None, BTreeMap::new()) {
        Ok(topic) => Ok(topic),
        Err(BrokerError::TopicAlreadyExists) => broker.topic(&name).ok_or(BrokerError::UnknownTopicOrPartition),
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| BrokerError::Storage(format!("topic creation task failed: {e}")))?
}

/// One uncompressed v2 batch of one record.
fn encode(publish: &Publish, origin: &Origin<'_>) -> BrokerResult<Vec<u8>> {
    let topic = Bytes::copy_from_slice(publish.topic.as_bytes());
    let qos = match publish.qos {
        QoS::AtMostOnce => "0",
        QoS::AtLeastOnce => "1",
        QoS::ExactlyOnce => "2",
    };
    let mut headers = vec![
        (TOPIC_HEADER, Some(topic.clone())),
        (QOS_HEADER, Some(Bytes::from_static(qos.as_bytes()))),
        (CLIENT_ID_HEADER, Some(Bytes::copy_from_slice(origin.client_id.as_bytes()))),
    ];
    if let Some(expires_at) = origin.expires_at_ms {
        headers.push((EXPIRY_HEADER, Some(Bytes::from(expires_at.to_string()))));
    }
    if publish.retain {
        headers.push((RETAIN_HEADER, Some(Bytes::from_static(b"1"))));
    }
    let mut record = new_record(0, origin.received_ms, Some(topic), Some(publish.payload.clone()), headers);
    for (key, value) in &publish.properties.user {
        // The listener's own headers keep their meaning; Kafka headers hold one value per key
        // here, so a repeated user property keeps its last value.
        if !is_own_header(key) {
            record.headers.insert(StrBytes::from_string(key.clone()), Some(Bytes::copy_from_slice(value.as_bytes())));
        }
    }
    encode_batch(&[record], Compression::None)
        .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode record batch: {e}")))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
