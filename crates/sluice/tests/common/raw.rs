//! Raw Kafka wire client for black-box tests: length-prefixed frames, typed requests encoded
//! and responses decoded with the kafka-protocol crate, and detection of closed connections.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::Broker;

/// Bound on waiting for any single response or for the broker to close a connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response frame this test client accepts.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A raw Kafka connection speaking length-prefixed frames.
pub struct Raw {
    stream: TcpStream,
    correlation_id: i32,
}

pub enum Reply {
    Frame(Vec<u8>),
    Closed,
}

impl Raw {
    pub fn connect(broker: &Broker) -> Raw {
        Raw::connect_addr(broker.addr())
    }

    pub fn connect_addr(addr: std::net::SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to broker");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Raw { stream, correlation_id: 1000 }
    }

    /// This end's address: the peer the broker lists for this connection.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id += 1;
        self.correlation_id
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed; a failed write is fine for hostile-input tests.
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    pub fn send_frame(&mut self, body: &[u8]) {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.write_raw(&frame);
    }

    /// Reads one response frame, or reports that the broker closed the connection.
    /// Panics if nothing happens within `IO_TIMEOUT` (a hung connection is a failure).
    pub fn read_reply(&mut self) -> Reply {
        let mut len = [0u8; 4];
        if let Err(e) = self.read_exact_or_closed(&mut len) {
            return e;
        }
        let len = i32::from_be_bytes(len);
        assert!(len >= 4 && (len as usize) <= RESPONSE_BYTES_MAX, "broker sent a response frame of length {len}");
        let mut body = vec![0u8; len as usize];
        if let Err(e) = self.read_exact_or_closed(&mut body) {
            return e;
        }
        Reply::Frame(body)
    }

    pub fn read_exact_or_closed(&mut self, buf: &mut [u8]) -> Result<(), Reply> {
        match self.stream.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("broker neither answered nor closed the connection within {IO_TIMEOUT:?}")
            }
            Err(_) => Err(Reply::Closed), // EOF or reset
        }
    }

    /// Asserts the broker closes this connection (EOF or reset) within `IO_TIMEOUT`.
    pub fn expect_closed(&mut self, what: &str) {
        // The read timeout on the socket bounds this read at `IO_TIMEOUT`.
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("{what}: broker answered {n} bytes instead of closing"),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("{what}: connection still open after {IO_TIMEOUT:?}")
            }
            Err(_) => {} // reset: closed
        }
    }

    /// Encodes `header` at `header_version` followed by `body`, sends it as one frame.
    pub fn send_request_bytes(&mut self, header: &RequestHeader, header_version: i16, body: &[u8]) {
        let mut buf = BytesMut::new();
        header.encode(&mut buf, header_version).expect("encode request header");
        buf.extend_from_slice(body);
        self.send_frame(&buf);
    }

    /// Sends a typed request at `version` and decodes the typed response.
    pub fn request<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let correlation_id = self.next_correlation_id();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-raw-test")));
        let mut body = BytesMut::new();
        req.encode(&mut body, version).expect("encode request body");
        self.send_request_bytes(&header, R::header_version(version), &body);
        let frame = match self.read_reply() {
            Reply::Frame(f) => f,
            Reply::Closed => panic!("broker closed the connection on a valid request (key {})", R::KEY),
        };
        let mut buf = Bytes::from(frame);
        let rh =
            ResponseHeader::decode(&mut buf, R::Response::header_version(version)).expect("decode response header");
        assert_eq!(rh.correlation_id, correlation_id, "correlation id echoed");
        R::Response::decode(&mut buf, version).expect("decode response body")
    }
}

/// The broker's supported version range for `key`, from ApiVersions v0.
pub fn supported_versions(broker: &Broker, key: ApiKey) -> (i16, i16) {
    let mut raw = Raw::connect(broker);
    let resp: ApiVersionsResponse = raw.request(0, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0, "ApiVersions v0 error");
    let entry = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == key as i16)
        .unwrap_or_else(|| panic!("broker does not list API {key:?}"));
    (entry.min_version, entry.max_version)
}

/// A consumer's Fetch (replica -1, no session) of one partition from `offset`.
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(partition_max_bytes)])])
}

/// Fetches partition `partition` of `topic` from `offset` with a raw Fetch (v4..=11) and returns
/// the raw record bytes the broker sent (stored batches, verbatim per the design).
pub fn fetch_raw_records(broker: &Broker, topic: &str, partition: i32, offset: i64) -> Bytes {
    let (_, max) = supported_versions(broker, ApiKey::Fetch);
    assert!(max >= 4, "broker supports Fetch only up to v{max}");
    let version = max.min(11);
    let req = fetch_request(topic, partition, offset, 500, 8 * 1024 * 1024, 4 * 1024 * 1024);
    let mut raw = Raw::connect(broker);
    let resp: FetchResponse = raw.request(version, &req);
    assert_eq!(resp.error_code, 0, "fetch top-level error");
    let t = resp
        .responses
        .iter()
        .find(|t| t.topic.0.as_str() == topic)
        .unwrap_or_else(|| panic!("fetch response lacks topic {topic}"));
    let p = t.partitions.iter().find(|p| p.partition_index == partition).expect("fetch response lacks the partition");
    assert_eq!(p.error_code, 0, "fetch partition error");
    p.records.clone().unwrap_or_default()
}

/// The `attributes` field of every complete RecordBatch in `records` (v2 layout: base offset 8,
/// batch length 4, leader epoch 4, magic 1, crc 4, then attributes 2). A partial batch at the
/// end (allowed in fetch responses) is ignored.
pub fn batch_attributes(records: &[u8]) -> Vec<i16> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while records.len() - pos >= 23 {
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap());
        assert!(len >= 49, "batch at byte {pos} has length {len}");
        let end = pos + 12 + len as usize;
        if end > records.len() {
            break;
        }
        assert_eq!(records[pos + 16], 2, "magic of batch at byte {pos}");
        out.push(i16::from_be_bytes([records[pos + 21], records[pos + 22]]));
        pos = end;
    }
    out
}

/// One v2 batch holding one record with `value`.
pub fn one_record_batch(value: &[u8]) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode batch");
    buf.freeze()
}
