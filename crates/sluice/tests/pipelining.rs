//! Proves requests a client pipelines on one connection are answered in request order,
//! even when an early one waits (a long-poll fetch) and later ones could answer at once,
//! and that pipelined acks=all produces are appended in order.

mod common;

use bytes::{Bytes, BytesMut};
use common::raw::{one_record_batch, Raw, Reply};
use common::{unique_topic, Broker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
use std::time::{Duration, Instant};

const FETCH_VERSION: i16 = 11;
const PRODUCE_VERSION: i16 = 7;
const METADATA_VERSION: i16 = 1;
/// Long enough that an out-of-order writer would answer the later requests first.
const FETCH_WAIT_MS: i32 = 1500;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Sends `req` without reading the answer; returns its correlation id.
fn send<R: Request>(raw: &mut Raw, version: i16, req: &R) -> i32 {
    let correlation_id = raw.next_correlation_id();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("pipelining-test")));
    let mut body = BytesMut::new();
    req.encode(&mut body, version).expect("encode request");
    raw.send_request_bytes(&header, R::header_version(version), &body);
    correlation_id
}

/// Reads the next response and returns its correlation id and the remaining body.
fn receive<R: Request>(raw: &mut Raw, version: i16) -> (i32, Bytes) {
    let Reply::Frame(frame) = raw.read_reply() else { panic!("broker closed a healthy connection") };
    let mut buf = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version)).expect("response header");
    (header.correlation_id, buf)
}

fn create_topic(raw: &mut Raw, topic: &str) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]));
    let resp: MetadataResponse = raw.request(METADATA_VERSION, &req);
    assert_eq!(resp.topics[0].error_code, 0, "auto-created");
}

#[test]
fn a_waiting_fetch_is_answered_before_the_requests_pipelined_behind_it() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("pipeline-fetch");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic);

    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(&topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20),
        ])]);
    let started = Instant::now();
    let fetch_id = send(&mut raw, FETCH_VERSION, &fetch);
    let versions_id = send(&mut raw, 0, &ApiVersionsRequest::default());
    let metadata_id = send(&mut raw, METADATA_VERSION, &MetadataRequest::default());

    let (first, _) = receive::<FetchRequest>(&mut raw, FETCH_VERSION);
    let waited = started.elapsed();
    let (second, _) = receive::<ApiVersionsRequest>(&mut raw, 0);
    let (third, _) = receive::<MetadataRequest>(&mut raw, METADATA_VERSION);
    assert_eq!((first, second, third), (fetch_id, versions_id, metadata_id), "answers in request order");
    // The empty fetch really waited (it was not answered early to unblock the others).
    assert!(waited >= Duration::from_millis(FETCH_WAIT_MS as u64 / 2), "fetch answered after {waited:?}");
}

#[test]
fn pipelined_acks_all_produces_are_appended_and_answered_in_order() {
    const REQUESTS: usize = 20;
    let broker = Broker::start(&[]);
    let topic = unique_topic("pipeline-produce");
    let mut raw = Raw::connect(&broker);
    create_topic(&mut raw, &topic);

    let ids: Vec<i32> = (0..REQUESTS)
        .map(|i| {
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
                TopicProduceData::default().with_name(name(&topic)).with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(one_record_batch(format!("m{i}").as_bytes()))),
                ]),
            ]);
            send(&mut raw, PRODUCE_VERSION, &req)
        })
        .collect();
    for (i, expected_id) in ids.iter().enumerate() {
        let (id, mut body) = receive::<ProduceRequest>(&mut raw, PRODUCE_VERSION);
        assert_eq!(id, *expected_id, "response {i} in request order");
        let resp = ProduceResponse::decode(&mut body, PRODUCE_VERSION).expect("produce response");
        let partition = &resp.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "request {i}");
        assert_eq!(partition.base_offset, i as i64, "request {i} appended in order");
    }
}
