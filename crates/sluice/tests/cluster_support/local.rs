//! One node's own view, asked of that node only (never redirected to a leader): the records
//! its local partition log holds, read through its admin API
//! (`GET /api/topics/<t>/partitions/<p>/messages`), and the leader its own Kafka Metadata
//! answer names. A follower serves both, so a test can prove what a replica holds.

use crate::common::raw::Raw;
use crate::history::{Op, Recorder, FINAL_READ};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound on one admin API request (connect, write, read).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest admin API answer read (a page of 1000 small records is far below).
const ANSWER_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Records one browse request asks for (the admin API's maximum).
const BROWSE_LIMIT: usize = 1000;
/// Browse requests one partition read makes at most: bounds a read that stops advancing.
const BROWSE_PAGES_MAX: usize = 10_000;
/// Metadata version asked (v4: leaders, replicas and ISR, no tagged fields).
const METADATA_VERSION: i16 = 4;

/// One `GET` over HTTP/1.0 (so the answer is never chunked); (status, body).
pub fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    exchange(addr, "GET", path)
}

/// One bodiless `POST` (nsqd's actions: `/channel/create?…`) that must be answered 200.
pub fn post_ok(addr: &str, path: &str) {
    match exchange(addr, "POST", path) {
        Ok((200, _)) => {}
        Ok((status, body)) => panic!("POST {path} on {addr}: status {status}: {body}"),
        Err(e) => panic!("POST {path} on {addr}: {e}"),
    }
}

fn exchange(addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let socket: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(HTTP_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HTTP_TIMEOUT));
    let request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("write to {addr}: {e}"))?;
    let mut answer = Vec::new();
    stream.take(ANSWER_BYTES_MAX).read_to_end(&mut answer).map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// A GET answered 200 with JSON.
pub fn get_json(addr: &str, path: &str) -> Result<serde_json::Value, String> {
    let (status, body) = get(addr, path)?;
    if status != 200 {
        return Err(format!("GET {path} on {addr}: status {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {path} on {addr}: {e}: {body}"))
}

/// The end offset of every partition of `topic` in the node's own log (on a replica: what it
/// has applied), by partition index.
pub fn end_offsets(http_addr: &str, topic: &str) -> Result<Vec<i64>, String> {
    let detail = get_json(http_addr, &format!("/api/topics/{topic}"))?;
    let partitions = detail["partitions"].as_array().ok_or_else(|| format!("no partitions in {detail}"))?;
    let mut ends = vec![0; partitions.len()];
    for p in partitions {
        let (Some(index), Some(end)) = (p["partition"].as_u64(), p["log_end_offset"].as_i64()) else {
            return Err(format!("partition summary without index or end: {p}"));
        };
        *ends.get_mut(index as usize).ok_or_else(|| format!("partition {index} out of range"))? = end;
    }
    Ok(ends)
}

/// Reads `partition` of `topic` from the node's own log, start to end, recording each record
/// as a poll by `consumer`. Returns how many it read.
pub fn read_partition(
    http_addr: &str,
    topic: &str,
    partition: i32,
    recorder: &Recorder,
    consumer: &str,
) -> Result<usize, String> {
    let end = *end_offsets(http_addr, topic)?.get(partition as usize).ok_or("no such partition")?;
    let mut offset = 0;
    let mut read = 0;
    for _ in 0..BROWSE_PAGES_MAX {
        if offset >= end {
            return Ok(read);
        }
        let path = format!("/api/topics/{topic}/partitions/{partition}/messages?offset={offset}&limit={BROWSE_LIMIT}");
        let page = get_json(http_addr, &path)?;
        let messages = page["messages"].as_array().ok_or_else(|| format!("no messages in {page}"))?;
        for m in messages {
            let (Some(at), Some(value)) = (m["offset"].as_i64(), m["value"].as_str()) else {
                return Err(format!("record without offset or text value: {m}"));
            };
            recorder.poll(consumer, partition, at, value);
            read += 1;
        }
        let next = page["next_offset"].as_i64().ok_or_else(|| format!("no next_offset in {page}"))?;
        if next <= offset {
            return Err(format!("browse of {topic}/{partition} stuck at offset {offset} (end {end})"));
        }
        offset = next;
    }
    Err(format!("browse of {topic}/{partition} took more than {BROWSE_PAGES_MAX} pages"))
}

/// Reads every partition in `partitions` of the node's own log (`read_partition`).
pub fn read_all(
    http_addr: &str,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    recorder: &Recorder,
    consumer: &str,
) -> Result<usize, String> {
    partitions.into_iter().map(|p| read_partition(http_addr, topic, p, recorder, consumer)).sum()
}

/// A node's own copy of partitions, held against what producers had acknowledged there.
#[derive(Debug)]
pub struct LocalCopy {
    /// Records the node's log holds on those partitions.
    pub held: usize,
    /// Acknowledgements with an offset on those partitions.
    pub acknowledged: usize,
    /// The first acknowledged (partition, offset) whose value the node's log lacks.
    pub missing: Vec<((i32, i64), String)>,
}

/// Reads `partitions` of the node's own log and compares every record `sends` saw
/// acknowledged there (at an offset) with what the log holds at that offset.
pub fn copy_against_acknowledged(
    http_addr: &str,
    topic: &str,
    partitions: &[i32],
    sends: &Recorder,
) -> Result<LocalCopy, String> {
    let own = Recorder::new();
    read_all(http_addr, topic, partitions.iter().copied(), &own, FINAL_READ)?;
    let held: BTreeMap<(i32, i64), String> = own
        .ops()
        .into_iter()
        .filter_map(|op| match op {
            Op::Poll { partition, offset, value, .. } => Some(((partition, offset), value)),
            _ => None,
        })
        .collect();
    let acknowledged: Vec<((i32, i64), String)> = sends
        .ops()
        .into_iter()
        .filter_map(|op| match op {
            Op::SendOk { value, partition, offset } if partitions.contains(&partition) && offset >= 0 => {
                Some(((partition, offset), value))
            }
            _ => None,
        })
        .collect();
    let missing = acknowledged.iter().filter(|(at, value)| held.get(at) != Some(value)).take(10).cloned().collect();
    Ok(LocalCopy { held: held.len(), acknowledged: acknowledged.len(), missing })
}

/// The leader of `topic`/`partition` named by the node's own Metadata answer (-1: none).
/// Panics if the node does not answer within the raw client's bound.
pub fn leader_named_by(kafka_addr: &str, topic: &str, partition: i32) -> i32 {
    let addr: SocketAddr = kafka_addr.parse().unwrap_or_else(|e| panic!("{kafka_addr}: {e}"));
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
    ]));
    let response: MetadataResponse = Raw::connect_addr(addr).request(METADATA_VERSION, &request);
    response
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map_or(-1, |p| p.leader_id.0)
}

/// The in-sync replicas of `topic`/`partition` named by the node's own Metadata answer, sorted
/// (empty when it names none). Panics if the node does not answer within the raw client's bound.
pub fn isr_named_by(kafka_addr: &str, topic: &str, partition: i32) -> Vec<i32> {
    let addr: SocketAddr = kafka_addr.parse().unwrap_or_else(|e| panic!("{kafka_addr}: {e}"));
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
    ]));
    let response: MetadataResponse = Raw::connect_addr(addr).request(METADATA_VERSION, &request);
    let mut isr: Vec<i32> = response
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .map(|p| p.isr_nodes.iter().map(|id| id.0).collect())
        .unwrap_or_default();
    isr.sort_unstable();
    isr
}
