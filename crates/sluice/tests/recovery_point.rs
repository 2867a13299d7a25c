//! Segments deleted by hand while the broker runs: on restart the partition is refused over
//! Kafka (KAFKA_STORAGE_ERROR) and NSQ (E_PUB_FAILED) with both offsets named, no offset is
//! reused, and `--accept-data-loss-partitions` brings it back.

mod common;
mod nsq_common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use common::raw::{fetch_request, one_record_batch, supported_versions, Raw};
use common::{clear_sluice_env, files_with_suffix, run_bounded, Broker, SLUICE_BIN};
use nsq_common::{Wire, FRAME_ERROR};

const TOPIC: &str = "rp";
const KAFKA_STORAGE_ERROR: i16 = 56;
/// Records produced before the damage: with 1 KiB segments they span about ten segments.
const RECORDS: usize = 80;
/// Bound on waiting for the admin API after start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

fn start() -> Broker {
    // The raw records carry a 2023 timestamp: retention stays off so that every segment stays
    // until the test deletes one (retention also runs as soon as a segment rolls).
    let broker = Broker::start(&["--segment-bytes", "1024", "--retention-ms", "-1"]);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let mut cmd = Command::new(SLUICE_BIN);
        cmd.args(["topic", "create", TOPIC, "--partitions", "1", "--json", "--http"]).arg(broker.http_addr());
        clear_sluice_env(&mut cmd);
        if run_bounded(&mut cmd, READY_TIMEOUT).status.success() {
            return broker;
        }
        assert!(Instant::now() < deadline, "could not create the topic");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One raw acks=-1 Produce of one record to partition 0; returns (error_code, base_offset).
fn produce(broker: &Broker, value: &[u8]) -> (i16, i64) {
    let (_, max) = supported_versions(broker, ApiKey::Produce);
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_string(TOPIC.to_string()))).with_partition_data(
            vec![PartitionProduceData::default().with_index(0).with_records(Some(one_record_batch(value)))],
        ),
    ]);
    let resp: ProduceResponse = Raw::connect(broker).request(max.min(9), &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// One raw Fetch of partition 0 from `offset`; returns (error_code, record bytes).
fn fetch(broker: &Broker, offset: i64) -> (i16, Bytes) {
    let (_, max) = supported_versions(broker, ApiKey::Fetch);
    let req = fetch_request(TOPIC, 0, offset, 100, 1 << 20, 1 << 20);
    let resp: FetchResponse = Raw::connect(broker).request(max.min(11), &req);
    let p = &resp.responses[0].partitions[0];
    (p.error_code, p.records.clone().unwrap_or_default())
}

fn first_base_offset(records: &[u8]) -> i64 {
    let mut base = [0u8; 8];
    base.copy_from_slice(&records[..8]);
    i64::from_be_bytes(base)
}

/// NSQ PUB of one message; returns the error frame's text, or None on OK.
fn nsq_pub_error(broker: &Broker) -> Option<String> {
    let port: u16 = broker.nsq_tcp_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("nsq port");
    let mut wire = Wire::connect(port);
    wire.with_body(&format!("PUB {TOPIC}"), b"nsq message");
    let (kind, data) = wire.frame().expect("a reply to PUB");
    (kind == FRAME_ERROR).then(|| String::from_utf8_lossy(&data).into_owned())
}

fn segments(broker: &Broker) -> Vec<(i64, PathBuf)> {
    let dir = broker.data_dir().join("topics").join(TOPIC).join("0");
    let mut logs: Vec<(i64, PathBuf)> = files_with_suffix(&dir, "log")
        .into_iter()
        .map(|p| (p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("segment name"), p))
        .collect();
    logs.sort();
    logs
}

/// Fills the partition; returns its log end.
fn fill(broker: &Broker) -> i64 {
    let mut end = 0;
    for i in 0..RECORDS {
        let (code, offset) = produce(broker, format!("record {i:03} {}", "x".repeat(80)).as_bytes());
        assert_eq!(code, 0);
        end = offset + 1;
    }
    assert!(segments(broker).len() >= 6, "expected several segments, got {:?}", segments(broker));
    end
}

/// Kafka produce and fetch and NSQ PUB are all refused, and the log names `offsets`.
fn assert_refused(broker: &Broker, from_log: usize, offsets: &[i64]) {
    assert_eq!(produce(broker, b"refused").0, KAFKA_STORAGE_ERROR);
    assert_eq!(fetch(broker, 0).0, KAFKA_STORAGE_ERROR);
    let nsq = nsq_pub_error(broker).expect("NSQ PUB is refused");
    assert!(nsq.starts_with("E_PUB_FAILED"), "{nsq}");
    let log = broker.log_since(from_log);
    let line =
        log.lines().find(|l| l.contains("lost acknowledged data")).unwrap_or_else(|| panic!("no report:\n{log}"));
    for offset in offsets {
        assert!(line.contains(&offset.to_string()), "{line} names {offset}");
    }
}

/// A middle segment deleted while the broker runs is a hole: refused after the restart, and
/// once accepted a fetch into the hole gets the next batch and a produce does not reuse an
/// offset that was acknowledged before.
#[test]
fn deleted_middle_segment_is_refused_until_accepted() {
    let mut broker = start();
    let end = fill(&broker);
    let logs = segments(&broker);
    let (hole_start, hole_end) = (logs[2].0, logs[3].0);
    std::fs::remove_file(&logs[2].1).expect("delete a middle segment");
    let from = broker.log_len();
    broker.restart();
    assert_refused(&broker, from, &[hole_start, hole_end]);

    broker.set_args(&[
        "--segment-bytes",
        "1024",
        "--retention-ms",
        "-1",
        "--accept-data-loss-partitions",
        &format!("{TOPIC}-0"),
    ]);
    broker.restart();
    let (code, records) = fetch(&broker, hole_start);
    assert_eq!(code, 0);
    assert_eq!(first_base_offset(&records), hole_end, "a fetch into the hole gets the next batch");
    assert_eq!(produce(&broker, b"after").1, end, "no acknowledged offset is reused");
    assert_eq!(nsq_pub_error(&broker), None);
    broker.set_args(&["--segment-bytes", "1024", "--retention-ms", "-1"]);
    broker.restart();
    assert_eq!(produce(&broker, b"later").0, 0, "the acceptance lasts");
}

/// The newest segments deleted while the broker runs leave the log ending below its
/// recovery point: refused after the restart, naming both offsets; accepted, the partition
/// takes writes from where it now ends.
#[test]
fn deleted_newest_segments_are_refused_until_accepted() {
    let mut broker = start();
    let end = fill(&broker);
    let logs = segments(&broker);
    let kept_end = logs[logs.len() - 2].0;
    for (_, path) in &logs[logs.len() - 2..] {
        std::fs::remove_file(path).expect("delete a newest segment");
    }
    let from = broker.log_len();
    broker.restart();
    assert_refused(&broker, from, &[kept_end, end]);
    let from = broker.log_len();
    broker.restart();
    assert_refused(&broker, from, &[kept_end, end]);

    broker.set_args(&["--segment-bytes", "1024", "--retention-ms", "-1", "--accept-data-loss-partitions", TOPIC]);
    broker.restart();
    assert_eq!(produce(&broker, b"after"), (0, kept_end));
    assert_eq!(fetch(&broker, 0).0, 0);
}
