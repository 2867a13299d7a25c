//! Helpers shared by the resource-limit, disk-full, flood and soak tests: raw Kafka
//! produce/create-topics with their error codes, and the broker's RSS and open fds from /proc.
#![allow(dead_code)]

use crate::common::raw::{one_record_batch, Raw};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

pub const PRODUCE_VERSION: i16 = 7;
pub const CREATE_TOPICS_VERSION: i16 = 4;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const INVALID_PARTITIONS: i16 = 37;
pub const POLICY_VIOLATION: i16 = 44;

pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Produces one record with acks=all to partition 0; returns (error code, base offset).
pub fn produce(raw: &mut Raw, topic: &str, value: &[u8]) -> (i16, i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(one_record_batch(value))),
        ]),
    ]);
    let response: ProduceResponse = raw.request(PRODUCE_VERSION, &request);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// CreateTopics for one topic; returns its error code.
pub fn create_topic(raw: &mut Raw, topic: &str, partitions: i32) -> i16 {
    let request = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let response: CreateTopicsResponse = raw.request(CREATE_TOPICS_VERSION, &request);
    response.topics[0].error_code
}

/// Resident set size of `pid` in KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// This process's (soft, hard) open-file limits, from /proc/self/limits.
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default();
    let mut numbers = line.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// Raises this process's soft open-file limit towards `wanted` (capped at the hard limit)
/// with util-linux `prlimit`; children (the broker) inherit it. Returns the soft limit now.
pub fn raise_nofile(wanted: u64) -> u64 {
    let (soft, hard) = nofile_limits();
    let target = wanted.min(hard);
    if soft < target {
        let pid = std::process::id().to_string();
        let limit = format!("--nofile={target}:{hard}");
        let status = std::process::Command::new("prlimit").args(["--pid", &pid, &limit]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not raise the open-file limit with prlimit ({status:?})");
        }
    }
    nofile_limits().0
}
