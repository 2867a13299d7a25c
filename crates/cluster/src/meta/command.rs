//! What the metadata group agrees on: commands (each one record of one v2 batch, its value
//! JSON, so the log reads like KRaft's `__cluster_metadata`) and their replies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::{frame, unframe, FrameError, UnframeError};
use super::security::{ScramDeletion, ScramUpsert};
use crate::types::{Applied, Batches, NodeId};

/// One change to the cluster's metadata. Validation happens in `ClusterState::apply`, so a
/// bad command is refused the same way on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Names the cluster, once (the bootstrapping node proposes it; later ones must match).
    InitCluster {
        cluster_id: String,
    },
    /// A node announces (or updates) its listener addresses on start. `at_ms` is the
    /// proposer's clock, recorded as registration / last-seen time (apply reads no clock).
    RegisterNode {
        node_id: NodeId,
        cluster_addr: String,
        kafka_addr: String,
        nsq_tcp_addr: String,
        http_addr: String,
        rack: Option<String>,
        at_ms: i64,
        /// Every Kafka listener by name (its security protocol) → advertised HOST:PORT, so
        /// Metadata asked on one listener names every node by its listener of that name.
        /// Empty from older nodes: `kafka_addr` serves for all.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        kafka_listeners: BTreeMap<String, String>,
    },
    /// A new topic: replicas per partition, the first being the preferred leader.
    CreateTopic {
        name: String,
        partitions: Vec<Vec<NodeId>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Replaces the topic's whole config map (the proposer merges incremental changes).
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Appends partitions with these replicas.
    CreatePartitions {
        name: String,
        new: Vec<Vec<NodeId>>,
        /// The partition count the proposer saw: refused when the topic has another, so a
        /// retried or concurrent request never adds partitions twice. None: not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count_before: Option<u32>,
    },
    /// A partition's new leader publishes itself once its term's first entry commits;
    /// ignored unless `epoch` (the Raft term) is newer than the recorded one.
    ReportLeader {
        topic: String,
        partition: i32,
        leader: NodeId,
        epoch: i32,
        /// The topic's id the reporting group belongs to: a report from a deleted topic's
        /// group never lands on a re-created one. None: not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_id: Option<u64>,
    },
    /// A partition leader's view of the replicas caught up with it; ignored when `epoch` is
    /// older than the recorded leader epoch or ISR epoch.
    ReportIsr {
        topic: String,
        partition: i32,
        isr: Vec<NodeId>,
        epoch: i32,
        /// As `ReportLeader`'s: a deleted topic's report never lands on a re-created one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_id: Option<u64>,
    },
    /// Reserves `count` producer ids; the reply names the first of a block never handed out before.
    AllocateProducerIds {
        count: i64,
    },
    /// Records the replicas a partition should move to (the move itself is the partition
    /// group's membership change).
    ReassignPartition {
        topic: String,
        partition: i32,
        replicas: Vec<NodeId>,
    },
    /// The partition group's membership now is `replicas`, the recorded target: they become
    /// the replicas. Refused unless they equal the target, so a superseded move cannot finish.
    FinishReassignment {
        topic: String,
        partition: i32,
        replicas: Vec<NodeId>,
    },
    /// Kafka's DeleteRecords on a replicated partition: its log start moves up to `offset`
    /// on every replica (each applies it to its own log once it applied that far), and never
    /// moves back, so a failover does not bring the deleted records back.
    DeleteRecords {
        topic: String,
        partition: i32,
        offset: i64,
        /// As `ReportLeader`'s: a request for a deleted topic never lands on a re-created one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic_id: Option<u64>,
    },
    /// Forgets a node (`sluice cluster remove-node`); refused while it holds a replica or is
    /// the target of a move, so no partition is left naming it.
    RemoveNode {
        node_id: NodeId,
    },
    /// Kafka's AlterUserScramCredentials, cluster-wide (`security`): all or nothing.
    AlterScramCredentials {
        upserts: Vec<ScramUpsert>,
        deletions: Vec<ScramDeletion>,
    },
    /// Kafka's CreateAcls: bindings (the Kafka layer's records) added once each.
    CreateAcls {
        bindings: Vec<String>,
    },
    /// Kafka's DeleteAcls: exactly these bindings (the proposer matched its filters) removed.
    DeleteAcls {
        bindings: Vec<String>,
    },
    /// Kafka's AlterClientQuotas: entities' quota values set (entity record, values record)
    /// or removed (entity record), all or nothing.
    AlterClientQuotas {
        upserts: Vec<(String, String)>,
        deletions: Vec<String>,
    },
}

/// What applying a command answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Ok,
    TopicCreated,
    TopicExists,
    UnknownTopic,
    /// A fresh block: ids `first .. first + count`.
    ProducerIds {
        first: i64,
        count: i64,
    },
    /// A leader or ISR report older than what is recorded; nothing changed.
    StaleEpoch {
        current: i32,
    },
    /// The command breaks a rule or a bound; nothing changed.
    Invalid(String),
}

/// Why a command could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("cannot serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Why bytes are not a command (or a reply).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error(transparent)]
    Frame(#[from] UnframeError),
    #[error("not a metadata command or reply: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the applied entry carries no metadata reply")]
    NoReply,
}

/// A command read from an entry, with the log offsets its batch took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCommand {
    pub command: MetaCommand,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl MetaCommand {
    /// The entry data that proposes this command: one v2 batch of one record.
    pub fn encode(&self, timestamp_ms: i64) -> Result<Batches, EncodeError> {
        let value = serde_json::to_vec(self)?;
        Ok(Batches(frame(&value, timestamp_ms)?))
    }

    /// Reads the one command of an entry's data; malformed data is an error, never a panic.
    pub fn decode(batches: &[u8]) -> Result<DecodedCommand, DecodeError> {
        let unframed = unframe(batches)?;
        let command = serde_json::from_slice(&unframed.value)?;
        Ok(DecodedCommand { command, first_offset: unframed.first_offset, last_offset: unframed.last_offset })
    }
}

impl MetaReply {
    /// The bytes carried in `Applied::reply`.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads `Applied::reply` back (the proposer's side of `client_write`).
    pub fn decode(bytes: &[u8]) -> Result<MetaReply, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The reply of a committed metadata command, from what `Raft::client_write` returned.
    pub fn from_applied(applied: &Applied) -> Result<MetaReply, DecodeError> {
        let bytes = applied.reply.as_deref().ok_or(DecodeError::NoReply)?;
        Ok(Self::decode(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_command() -> Vec<MetaCommand> {
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        vec![
            MetaCommand::InitCluster { cluster_id: "abc".into() },
            MetaCommand::RegisterNode {
                node_id: 3,
                cluster_addr: "127.0.0.3:7000".into(),
                kafka_addr: "127.0.0.3:9092".into(),
                nsq_tcp_addr: "127.0.0.3:4150".into(),
                http_addr: "127.0.0.3:4151".into(),
                rack: Some("r1".into()),
                at_ms: 5,
                kafka_listeners: BTreeMap::from([("SASL_SSL".to_string(), "127.0.0.3:9094".to_string())]),
            },
            MetaCommand::CreateTopic {
                name: "t".into(),
                partitions: vec![vec![1, 2], vec![2, 1]],
                configs: configs.clone(),
            },
            MetaCommand::DeleteTopic { name: "t".into() },
            MetaCommand::SetTopicConfigs { name: "t".into(), configs },
            MetaCommand::CreatePartitions { name: "t".into(), new: vec![vec![3]], count_before: Some(2) },
            MetaCommand::ReportLeader { topic: "t".into(), partition: 1, leader: 2, epoch: 7, topic_id: Some(0) },
            MetaCommand::ReportIsr { topic: "t".into(), partition: 1, isr: vec![2, 1], epoch: 7, topic_id: Some(0) },
            MetaCommand::AllocateProducerIds { count: 1000 },
            MetaCommand::ReassignPartition { topic: "t".into(), partition: 0, replicas: vec![3, 1] },
            MetaCommand::FinishReassignment { topic: "t".into(), partition: 0, replicas: vec![3, 1] },
            MetaCommand::RemoveNode { node_id: 3 },
            MetaCommand::DeleteRecords { topic: "t".into(), partition: 0, offset: 42, topic_id: Some(1) },
            MetaCommand::AlterScramCredentials {
                upserts: vec![ScramUpsert {
                    user: "a".into(),
                    mechanism: "SCRAM-SHA-512".into(),
                    credential: "{}".into(),
                }],
                deletions: vec![ScramDeletion { user: "b".into(), mechanism: "SCRAM-SHA-256".into() }],
            },
            MetaCommand::CreateAcls { bindings: vec!["{}".into()] },
            MetaCommand::DeleteAcls { bindings: vec!["{}".into()] },
            MetaCommand::AlterClientQuotas { upserts: vec![("{}".into(), "{}".into())], deletions: vec!["{}".into()] },
        ]
    }

    #[test]
    fn every_command_round_trips_through_a_batch() {
        // Proves encode → decode gives back the same command from a valid one-record batch.
        for command in every_command() {
            let batches = command.encode(1_000).unwrap();
            let decoded = MetaCommand::decode(&batches.0).unwrap();
            assert_eq!(decoded, DecodedCommand { command, first_offset: 0, last_offset: 0 });
        }
    }

    #[test]
    fn every_reply_round_trips() {
        // Proves what the state machine puts in Applied::reply is what the proposer reads.
        for reply in [
            MetaReply::Ok,
            MetaReply::TopicCreated,
            MetaReply::TopicExists,
            MetaReply::UnknownTopic,
            MetaReply::ProducerIds { first: 1000, count: 1000 },
            MetaReply::StaleEpoch { current: 4 },
            MetaReply::Invalid("why".into()),
        ] {
            assert_eq!(MetaReply::decode(&reply.encode().unwrap()).unwrap(), reply);
        }
    }

    #[test]
    fn a_valid_batch_of_something_else_is_an_error() {
        // Proves a well-framed record whose value is not a command is refused, not applied.
        for value in [&b"not json"[..], b"{\"Unknown\":{}}", b"{\"DeleteTopic\":{}}", b""] {
            let batch = frame(value, 0).unwrap();
            assert!(matches!(MetaCommand::decode(&batch), Err(DecodeError::Json(_))), "{value:?}");
        }
        assert!(matches!(MetaCommand::decode(b"short"), Err(DecodeError::Frame(_))));
        assert!(MetaReply::decode(b"\"Nope\"").is_err());
        assert!(matches!(MetaReply::from_applied(&Applied::default()), Err(DecodeError::NoReply)));
    }
}
