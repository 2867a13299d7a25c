//! Proves the broker-wide Kafka bounds: many connections each sending a maximal frame hold
//! at most `--queued-max-request-bytes` of request buffers (RSS stays within the budget plus
//! a margin) and the broker serves again once they go; and 100,000 invented idempotent
//! producer ids do not grow a partition's producer state without bound (the first ids are
//! evicted, so a gap in their sequence is accepted as a new producer's, per KIP-360).

mod common;
mod limits_support;

use bytes::{Bytes, BytesMut};
use common::raw::Raw;
use common::{unique_topic, Broker};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use limits_support::{create_topic, rss_kib, topic_name, PRODUCE_VERSION};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MIB: usize = 1024 * 1024;
const FRAME_BYTES: usize = 8 * MIB;
const BUDGET_BYTES: usize = 16 * MIB;
const CONNECTIONS: usize = 24;
/// RSS beyond the baseline and the budget tolerated: allocator slack, task stacks, logs.
const RSS_MARGIN_KIB: u64 = 64 * 1024;
/// Bound on each blocked write (the broker reads only connections that have budget).
const WRITE_WAIT: Duration = Duration::from_secs(5);

#[test]
fn many_connections_sending_large_frames_hold_at_most_the_budget() {
    let broker = Broker::start(&[
        "--socket-request-max-bytes",
        &FRAME_BYTES.to_string(),
        "--max-inflight-request-bytes",
        &FRAME_BYTES.to_string(),
        "--queued-max-request-bytes",
        &BUDGET_BYTES.to_string(),
    ]);
    let pid = broker.pid().expect("pid");
    let baseline_kib = rss_kib(pid);
    // Each connection sends a maximal frame but its last byte, so a broker that read it
    // holds the whole buffer and waits.
    let writers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let addr = broker.addr();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_write_timeout(Some(WRITE_WAIT)).expect("timeout");
                let mut frame = (FRAME_BYTES as i32).to_be_bytes().to_vec();
                frame.resize(4 + FRAME_BYTES - 1, 0);
                let _ = stream.write_all(&frame);
                stream
            })
        })
        .collect();
    let mut rss_max_kib = 0;
    let mut streams = Vec::new();
    for writer in writers {
        while !writer.is_finished() {
            rss_max_kib = rss_max_kib.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        streams.push(writer.join().expect("writer"));
    }
    rss_max_kib = rss_max_kib.max(rss_kib(pid));
    let bound_kib = baseline_kib + (BUDGET_BYTES / 1024) as u64 + RSS_MARGIN_KIB;
    eprintln!("rss: baseline {baseline_kib} KiB, max {rss_max_kib} KiB, bound {bound_kib} KiB");
    assert!(rss_max_kib <= bound_kib, "RSS {rss_max_kib} KiB exceeds baseline + budget + margin {bound_kib} KiB");
    // The budget comes back with the connections: a new request is served.
    drop(streams);
    let mut raw = Raw::connect(&broker);
    let response: ApiVersionsResponse = raw.request(0, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
}

/// One idempotent v2 batch of one record from `producer_id`, epoch 0, at `sequence`.
fn idempotent_batch(producer_id: i64, sequence: i32) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode batch");
    buf.freeze()
}

fn produce_frame(topic: &str, correlation_id: i32, batch: Bytes) -> Vec<u8> {
    let request = ProduceRequest::default().with_acks(1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch))]),
    ]);
    let header = RequestHeader::default()
        .with_request_api_key(ProduceRequest::KEY)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("pid-flood")));
    let mut body = BytesMut::new();
    header.encode(&mut body, ProduceRequest::header_version(PRODUCE_VERSION)).expect("header");
    request.encode(&mut body, PRODUCE_VERSION).expect("body");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn read_produce_error(stream: &mut TcpStream) -> i16 {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("response length");
    let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut frame).expect("response");
    let mut buf = Bytes::from(frame);
    kafka_protocol::messages::ResponseHeader::decode(&mut buf, ProduceResponse::header_version(PRODUCE_VERSION))
        .expect("response header");
    let response = ProduceResponse::decode(&mut buf, PRODUCE_VERSION).expect("produce response");
    response.responses[0].partition_responses[0].error_code
}

/// Invented producer ids sent; ten times the per-partition bound.
const PRODUCER_IDS: i64 = 100_000;
/// Requests written before their responses are read.
const PIPELINE: i64 = 500;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

#[test]
fn invented_producer_ids_do_not_grow_producer_state_without_bound() {
    let broker = Broker::start(&[]);
    let topic = unique_topic("pid-flood");
    let mut raw = Raw::connect(&broker);
    assert_eq!(create_topic(&mut raw, &topic, 1), 0);
    let mut stream = TcpStream::connect(broker.addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    // Producer 1 is tracked: a gap in its sequence is out of order.
    stream.write_all(&produce_frame(&topic, 1, idempotent_batch(1, 0))).expect("write");
    assert_eq!(read_produce_error(&mut stream), 0);
    stream.write_all(&produce_frame(&topic, 2, idempotent_batch(1, 5))).expect("write");
    assert_eq!(read_produce_error(&mut stream), OUT_OF_ORDER_SEQUENCE_NUMBER);
    let pid = broker.pid().expect("pid");
    let rss_before_kib = rss_kib(pid);
    let mut next = 0;
    while next < PRODUCER_IDS {
        let end = (next + PIPELINE).min(PRODUCER_IDS);
        let mut frames = Vec::new();
        for id in next..end {
            frames.extend(produce_frame(&topic, id as i32, idempotent_batch(1_000_000 + id, 0)));
        }
        stream.write_all(&frames).expect("write pipeline");
        for _ in next..end {
            assert_eq!(read_produce_error(&mut stream), 0);
        }
        next = end;
    }
    eprintln!("rss: before the flood {rss_before_kib} KiB, after {} KiB", rss_kib(pid));
    // Producer 1 was least recently seen: evicted, so its gap now starts a new producer.
    stream.write_all(&produce_frame(&topic, 3, idempotent_batch(1, 5))).expect("write");
    assert_eq!(read_produce_error(&mut stream), 0, "producer 1's state outlived 100,000 newer producer ids");
}
