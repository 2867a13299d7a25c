//! A small blocking Kafka client for the data commands: length-prefixed frames over one TCP
//! connection, requests encoded and responses decoded by `kafka-protocol`.
//!
//! Sluice is one node, so every request goes to the bootstrap address; the broker addresses
//! that Metadata returns are not followed. Versions are fixed (all served by Sluice and by
//! Kafka 2.4+): Metadata v9, Produce v8, ListOffsets v5, Fetch v11, OffsetCommit v8,
//! OffsetFetch v7.

use anyhow::{anyhow, bail, Context as _};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, GroupId, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::net::{connect, describe_io_error};

/// Largest response frame accepted (a Fetch is capped at `FETCH_BYTES_MAX` plus headers).
const RESPONSE_BYTES_MAX: usize = 128 << 20;
/// Most record bytes one Fetch asks for, in total and per partition.
pub const FETCH_BYTES_MAX: i32 = 16 << 20;
pub const FETCH_PARTITION_BYTES_MAX: i32 = 4 << 20;
/// How long the broker may take to acknowledge a produce (acks=all includes the fsync).
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Socket timeout: above the longest wait a request asks of the broker.
const IO_TIMEOUT: Duration = Duration::from_secs(45);
const CLIENT_ID: &str = "sluice-cli";

const METADATA_VERSION: i16 = 9;
const PRODUCE_VERSION: i16 = 8;
const LIST_OFFSETS_VERSION: i16 = 5;
const FETCH_VERSION: i16 = 11;
const OFFSET_COMMIT_VERSION: i16 = 8;
const OFFSET_FETCH_VERSION: i16 = 7;

/// ListOffsets timestamps that mean "log start" and "log end".
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

pub struct KafkaClient {
    stream: TcpStream,
    addr: String,
    correlation_id: i32,
}

/// One partition of a Fetch answer.
pub struct FetchedPartition {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: Bytes,
}

impl KafkaClient {
    pub fn connect(addr: &str) -> anyhow::Result<KafkaClient> {
        let stream = connect(addr, IO_TIMEOUT)?;
        Ok(KafkaClient { stream, addr: addr.to_string(), correlation_id: 0 })
    }

    /// The partition ids of `topic`; "unknown topic" unless `auto_create` lets the broker make it.
    pub fn partitions(&mut self, topic: &str, auto_create: bool) -> anyhow::Result<Vec<i32>> {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(topic)))]))
            .with_allow_auto_topic_creation(auto_create);
        let response = self.request(METADATA_VERSION, &request)?;
        let found = response.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic));
        let Some(found) = found else { bail!("unknown topic {topic}") };
        if found.error_code == ResponseError::UnknownTopicOrPartition.code() {
            bail!("unknown topic {topic}");
        }
        check(found.error_code, || format!("metadata for topic {topic}"))?;
        let mut ids: Vec<i32> = found.partitions.iter().map(|p| p.partition_index).collect();
        ids.sort_unstable();
        if ids.is_empty() {
            bail!("topic {topic} has no partitions");
        }
        Ok(ids)
    }

    /// The offset of `timestamp` in each partition: `EARLIEST`, `LATEST`, or the first record
    /// at or after a time in ms (the log end when there is none).
    pub fn list_offsets(&mut self, topic: &str, partitions: &[i32], timestamp: i64) -> anyhow::Result<Vec<i64>> {
        let request =
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp))
                        .collect(),
                )]);
        let response = self.request(LIST_OFFSETS_VERSION, &request)?;
        let answered: Vec<_> = response.topics.iter().flat_map(|t| t.partitions.iter()).collect();
        let mut out = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let entry = answered
                .iter()
                .find(|a| a.partition_index == p)
                .ok_or_else(|| anyhow!("broker did not answer ListOffsets for {topic}/{p}"))?;
            check(entry.error_code, || format!("list offsets of {topic}/{p}"))?;
            if entry.offset < 0 {
                // No record at or after that time: start at the end, as Kafka clients do.
                out.push(self.list_offsets(topic, &[p], LATEST)?[0]);
            } else {
                out.push(entry.offset);
            }
        }
        Ok(out)
    }

    /// Sends one produce request with one batch per partition; returns each partition's base
    /// offset (`None` everywhere for acks=0, which the broker does not answer).
    pub fn produce(
        &mut self,
        topic: &str,
        acks: i16,
        batches: Vec<(i32, Bytes)>,
    ) -> anyhow::Result<Vec<(i32, Option<i64>)>> {
        let partitions: Vec<i32> = batches.iter().map(|(p, _)| *p).collect();
        let request =
            ProduceRequest::default().with_acks(acks).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(vec![
                TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(
                    batches
                        .into_iter()
                        .map(|(p, records)| PartitionProduceData::default().with_index(p).with_records(Some(records)))
                        .collect(),
                ),
            ]);
        if acks == 0 {
            self.send(PRODUCE_VERSION, &request)?;
            return Ok(partitions.into_iter().map(|p| (p, None)).collect());
        }
        let response: ProduceResponse = self.request(PRODUCE_VERSION, &request)?;
        let answered: Vec<_> = response.responses.iter().flat_map(|t| t.partition_responses.iter()).collect();
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            let entry = answered
                .iter()
                .find(|a| a.index == p)
                .ok_or_else(|| anyhow!("broker did not answer the produce to {topic}/{p}"))?;
            let detail = entry.error_message.as_ref().map(|m| format!(" ({})", m.as_str())).unwrap_or_default();
            check(entry.error_code, || format!("produce to {topic}/{p}{detail}"))?;
            out.push((p, Some(entry.base_offset)));
        }
        Ok(out)
    }

    /// One Fetch of `topic` at the given (partition, offset) positions, waiting up to
    /// `max_wait` for at least one byte.
    pub fn fetch(
        &mut self,
        topic: &str,
        positions: &[(i32, i64)],
        max_wait: Duration,
    ) -> anyhow::Result<Vec<FetchedPartition>> {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES_MAX)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(
                positions
                    .iter()
                    .map(|&(p, offset)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_current_leader_epoch(-1)
                            .with_fetch_offset(offset)
                            .with_last_fetched_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(FETCH_PARTITION_BYTES_MAX)
                    })
                    .collect(),
            )]);
        let response: FetchResponse = self.request(FETCH_VERSION, &request)?;
        check(response.error_code, || format!("fetch from {topic}"))?;
        Ok(response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .map(|p| FetchedPartition {
                partition: p.partition_index,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                records: p.records.unwrap_or_default(),
            })
            .collect())
    }

    /// Commits offsets as a standalone consumer: generation -1 and no member id, which a
    /// group without members accepts (Kafka's assign() + commitSync()).
    pub fn commit(&mut self, group: &str, topic: &str, offsets: &[(i32, i64)]) -> anyhow::Result<()> {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(
                offsets
                    .iter()
                    .map(|&(p, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
        let response = self.request(OFFSET_COMMIT_VERSION, &request)?;
        let member_errors =
            [ResponseError::UnknownMemberId, ResponseError::IllegalGeneration, ResponseError::RebalanceInProgress];
        for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
            if member_errors.iter().any(|e| e.code() == p.error_code) {
                bail!("group {group} has active members: a standalone consumer cannot commit for it");
            }
            check(p.error_code, || format!("commit offset of group {group} for {topic}/{}", p.partition_index))?;
        }
        Ok(())
    }

    /// The group's committed offset per partition (absent when none is committed).
    pub fn committed(&mut self, group: &str, topic: &str, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]));
        let response = self.request(OFFSET_FETCH_VERSION, &request)?;
        check(response.error_code, || format!("fetch committed offsets of group {group}"))?;
        let mut out = BTreeMap::new();
        for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
            check(p.error_code, || format!("committed offset of group {group} for {topic}/{}", p.partition_index))?;
            if p.committed_offset >= 0 {
                out.insert(p.partition_index, p.committed_offset);
            }
        }
        Ok(out)
    }

    /// Logs in with SASL PLAIN (SaslHandshake v1, then SaslAuthenticate v0): for a
    /// SASL_PLAINTEXT listener, so the principal is `User:<user>` rather than anonymous.
    pub fn login_plain(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let handshake = kafka_protocol::messages::SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str("PLAIN"));
        let answer = self.request(1, &handshake)?;
        check(answer.error_code, || format!("SASL PLAIN at {}", self.addr))?;
        let token = format!("\0{user}\0{password}").into_bytes();
        let login = kafka_protocol::messages::SaslAuthenticateRequest::default().with_auth_bytes(token.into());
        let answer = self.request(0, &login)?;
        if answer.error_code != 0 {
            let message = answer.error_message.as_deref().unwrap_or("").to_string();
            bail!("login as {user} at {} failed: {message} (error code {})", self.addr, answer.error_code);
        }
        Ok(())
    }

    /// Sends `request` at `version` and decodes its response.
    pub fn request<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        let correlation_id = self.send(version, request)?;
        let mut frame = self.read_frame()?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| anyhow!("undecodable response header from {}: {e:#}", self.addr))?;
        if header.correlation_id != correlation_id {
            bail!("broker at {} answered out of order (correlation id {})", self.addr, header.correlation_id);
        }
        R::Response::decode(&mut frame, version)
            .map_err(|e| anyhow!("undecodable response to API {} from {}: {e:#}", R::KEY, self.addr))
    }

    /// Writes one request frame; returns its correlation id.
    fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<i32> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut body = BytesMut::with_capacity(64);
        body.extend_from_slice(&[0; 4]);
        header.encode(&mut body, R::header_version(version)).context("encode request header")?;
        request.encode(&mut body, version).context("encode request")?;
        let length = u32::try_from(body.len() - 4).context("request too large")?;
        body[..4].copy_from_slice(&length.to_be_bytes());
        self.stream.write_all(&body).map_err(|e| self.lost(&e))?;
        Ok(self.correlation_id)
    }

    fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).map_err(|e| self.lost(&e))?;
        let length = u32::from_be_bytes(length) as usize;
        if length > RESPONSE_BYTES_MAX {
            bail!("broker at {} sent a {length}-byte response (limit {RESPONSE_BYTES_MAX})", self.addr);
        }
        let mut frame = vec![0u8; length];
        self.stream.read_exact(&mut frame).map_err(|e| self.lost(&e))?;
        Ok(Bytes::from(frame))
    }

    fn lost(&self, e: &std::io::Error) -> anyhow::Error {
        anyhow!("lost connection to broker at {}: {}", self.addr, describe_io_error(e))
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Turns a Kafka error code into an error naming what failed; "unknown topic" in plain words.
pub fn check(code: i16, what: impl FnOnce() -> String) -> anyhow::Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(ResponseError::UnknownTopicOrPartition) => bail!("{}: unknown topic or partition", what()),
        Some(error) => bail!("{}: broker answered {error} (error code {code})", what()),
    }
}
