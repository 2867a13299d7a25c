//! Kafka views of a cluster through librdkafka: metadata (brokers, leaders, replicas, ISR) as
//! owned values, topic creation with a replication factor, and the final full read of every
//! partition into a history.

use crate::common::{client_config, consume_range, runtime, wait_until};
use crate::history::{Op, Recorder, FINAL_READ};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use std::collections::BTreeSet;
use std::time::Duration;

/// Bound on one metadata or watermark request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on a CreateTopics round trip (the metadata group must commit it).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerView {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub id: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    pub name: String,
    pub partitions: Vec<PartitionView>,
    pub error: Option<String>,
}

/// One Metadata answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataView {
    pub brokers: Vec<BrokerView>,
    pub topics: Vec<TopicView>,
}

impl MetadataView {
    pub fn broker_ids(&self) -> BTreeSet<i32> {
        self.brokers.iter().map(|b| b.id).collect()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicView> {
        self.topics.iter().find(|t| t.name == name)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionView> {
        self.topic(topic).and_then(|t| t.partitions.iter().find(|p| p.id == partition))
    }
}

/// A client for metadata requests only (it never creates topics by asking). It has no
/// `group.id`: librdkafka looks up a consumer's group coordinator as soon as it has one, and
/// the first FindCoordinator makes the cluster create `__consumer_offsets` (8 more partition
/// groups), which tests that do not use groups should not carry.
pub fn metadata_client(bootstrap: &str) -> BaseConsumer {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("allow.auto.create.topics", "false")
        .set("topic.metadata.refresh.interval.ms", "1000");
    config.create().unwrap_or_else(|e| panic!("create metadata client: {e}"))
}

/// One Metadata request: for `topic`, or for every topic.
pub fn metadata(client: &BaseConsumer, topic: Option<&str>) -> Result<MetadataView, KafkaError> {
    let md = client.fetch_metadata(topic, REQUEST_TIMEOUT)?;
    let brokers =
        md.brokers().iter().map(|b| BrokerView { id: b.id(), host: b.host().into(), port: b.port() }).collect();
    let topics = md
        .topics()
        .iter()
        .map(|t| TopicView {
            name: t.name().into(),
            error: t.error().map(|e| format!("{:?}", RDKafkaErrorCode::from(e))),
            partitions: t
                .partitions()
                .iter()
                .map(|p| PartitionView {
                    id: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                    error: p.error().map(|e| format!("{:?}", RDKafkaErrorCode::from(e))),
                })
                .collect(),
        })
        .collect();
    Ok(MetadataView { brokers, topics })
}

/// The leader of `topic`/`partition` per metadata now (`None` if unknown or unreachable).
pub fn leader_of(client: &BaseConsumer, topic: &str, partition: i32) -> Option<i32> {
    let md = metadata(client, Some(topic)).ok()?;
    md.partition(topic, partition).map(|p| p.leader).filter(|leader| *leader >= 0)
}

/// Creates `topic` through the admin API; the broker's error code if it refuses.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32, replication: i32) -> Result<(), RDKafkaErrorCode> {
    let rt = runtime();
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().unwrap_or_else(|e| panic!("create admin client: {e}"));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT)).request_timeout(Some(CREATE_TIMEOUT));
    let results =
        rt.block_on(admin.create_topics(&[new], &options)).unwrap_or_else(|e| panic!("create_topics {topic}: {e}"));
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((_, code))) => Err(code),
        None => panic!("create_topics {topic}: no result"),
    }
}

/// Whether every partition of `topic` in `md` has a leader, `replication` replicas, and all of
/// them in sync.
pub fn fully_replicated(md: &MetadataView, topic: &str, partitions: i32, replication: usize) -> bool {
    let Some(t) = md.topic(topic) else { return false };
    t.partitions.len() == partitions as usize
        && t.partitions.iter().all(|p| {
            p.leader >= 0
                && p.replicas.len() == replication
                && p.isr.len() == replication
                && p.replicas.contains(&p.leader)
                && p.isr.iter().collect::<BTreeSet<_>>() == p.replicas.iter().collect::<BTreeSet<_>>()
        })
}

/// Waits (bounded) until `fully_replicated`; returns the metadata that showed it.
pub fn wait_fully_replicated(
    client: &BaseConsumer,
    topic: &str,
    partitions: i32,
    replication: usize,
    timeout: Duration,
) -> MetadataView {
    let mut last = None;
    let what = format!("{topic}: {partitions} partitions with a leader and {replication} replicas in sync");
    let mut seen = String::new();
    wait_until(timeout, &what, || {
        last = metadata(client, Some(topic)).ok();
        seen = format!("{last:?}");
        last.as_ref().is_some_and(|md| fully_replicated(md, topic, partitions, replication))
    });
    last.unwrap_or_else(|| panic!("{what}: last metadata {seen}"))
}

/// Reads every partition of `topic` from its start to its high watermark and records each
/// record as a `FINAL_READ` poll. Returns how many records it read.
pub fn final_read(bootstrap: &str, topic: &str, partitions: i32, recorder: &Recorder, timeout: Duration) -> usize {
    let client = metadata_client(bootstrap);
    let ops = recorder.ops();
    let mut read = 0;
    for partition in 0..partitions {
        // Every acknowledged offset must become readable: wait until the high watermark covers
        // them. A leader that has not yet heard it was replaced (just healed from a cut, say)
        // may still answer with its old, lower watermark for a moment.
        let acked_end = ops
            .iter()
            .filter_map(|op| match op {
                Op::SendOk { partition: p, offset, .. } if *p == partition => Some(offset + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut marks = (0, 0);
        wait_until(timeout, &format!("watermarks of {topic}/{partition} covering offset {acked_end}"), || match client
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
        {
            Ok(found) => {
                marks = found;
                found.1 >= acked_end
            }
            Err(_) => false,
        });
        let (low, high) = marks;
        if high <= low {
            continue;
        }
        for rec in consume_range(bootstrap, topic, partition, Offset::Beginning, (high - low) as usize, timeout) {
            let value = String::from_utf8_lossy(rec.value.as_deref().unwrap_or_default()).into_owned();
            recorder.poll(FINAL_READ, rec.partition, rec.offset, &value);
            read += 1;
        }
    }
    read
}

/// Waits (bounded by `timeout`) until metadata names a leader of `topic`/`partition`.
pub fn wait_for_leader(client: &BaseConsumer, topic: &str, partition: i32, timeout: Duration, what: &str) -> i32 {
    let mut leader = None;
    wait_until(timeout, what, || {
        leader = leader_of(client, topic, partition);
        leader.is_some()
    });
    leader.unwrap_or_default()
}
