//! Writes the seed corpus `fuzz/corpus/<target>/seed-*` from real encoders and real files:
//! Kafka request frames for every served API and version (kafka-protocol's encoders), Produce
//! with v2 and legacy records, NSQ command streams, compressed NSQ streams, stored batches in
//! every codec, real segment/index files, channel checkpoints and an offsets log.
//!
//! Run from `fuzz/`: `cargo run --example seeds` (it replaces the seeds, keeps other inputs).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use sluice_broker::channel::{Channels, ChannelsConfig, ClientInfo};
use sluice_broker::group::offsets::OffsetStore;
use sluice_broker::group::Committed;
use sluice_broker::{Broker, BrokerConfig};
use sluice_log::{LogConfig, PartitionLog};
use sluice_records::convert;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let batches = stored_batches()?;
    save("kafka_request", kafka_frames(&batches)?)?;
    save("nsq_command", nsq_streams())?;
    save("nsq_stream", compressed_streams()?)?;
    save("nsq_auth", auth_seeds())?;
    save("record_batch", record_seeds(&batches)?)?;
    save("segment_recovery", segment_seeds(&batches)?)?;
    save("channel_checkpoint", runtime.block_on(checkpoint_seeds())?)?;
    save("offsets_log", offsets_seeds()?)?;
    Ok(())
}

fn save(target: &str, seeds: Seeds) -> anyhow::Result<()> {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    for old in std::fs::read_dir(&dir)?.flatten() {
        if old.file_name().to_string_lossy().starts_with("seed-") {
            std::fs::remove_file(old.path())?;
        }
    }
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    println!("{target}: {} seeds", seeds.len());
    Ok(())
}

/// One v2 batch per codec, three records each (keys, values, a header).
fn stored_batches() -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut out = Vec::new();
    for (name, codec) in codecs {
        let records: Vec<_> = (0..3)
            .map(|i| {
                let headers = vec![("nsq-defer-until", Some(Bytes::from_static(b"0")))];
                convert::new_record(
                    i,
                    1_700_000_000_000 + i,
                    Some(Bytes::from(format!("k{i}"))),
                    Some(Bytes::from(format!("value {i}"))),
                    headers,
                )
            })
            .collect();
        out.push((name, convert::encode_batch(&records, codec)?));
    }
    Ok(out)
}

fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> anyhow::Result<Vec<u8>> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("seed"));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api.request_header_version(version))?;
    body.encode(&mut buf, version)?;
    Ok(buf.to_vec())
}

fn kafka_frames(batches: &[(&str, Vec<u8>)]) -> anyhow::Result<Seeds> {
    let mut seeds = Seeds::new();
    let mut add = |name: String, bytes: anyhow::Result<Vec<u8>>| {
        if let Ok(bytes) = bytes {
            seeds.push((name, bytes));
        }
    };
    for &(api, min, max) in sluice_kafka_served() {
        for version in [min, max] {
            let name = format!("{api:?}-v{version}");
            let bytes = match api {
                ApiKey::ApiVersions => frame(api, version, &ApiVersionsRequest::default()),
                ApiKey::Metadata => frame(api, version, &metadata(version)),
                ApiKey::Fetch => frame(api, version, &fetch()),
                ApiKey::OffsetCommit => frame(api, version, &offset_commit()),
                ApiKey::JoinGroup => frame(api, version, &join_group()),
                ApiKey::CreateTopics => frame(api, version, &create_topics()),
                ApiKey::Produce => continue,
                _ => default_frame(api, version),
            };
            add(name, bytes);
        }
    }
    for version in [0, 2, 3, 9] {
        let records = if version < 3 {
            convert::downconvert_batches(&batches[0].1, if version == 0 { 0 } else { 1 }, 0)?
        } else {
            batches[version as usize % batches.len()].1.clone()
        };
        add(format!("Produce-v{version}"), frame(ApiKey::Produce, version, &produce(records)));
    }
    Ok(seeds)
}

fn sluice_kafka_served() -> &'static [(ApiKey, i16, i16)] {
    sluice_kafka::SUPPORTED_APIS
}

/// A request with every field at its default, for APIs whose defaults encode.
fn default_frame(api: ApiKey, version: i16) -> anyhow::Result<Vec<u8>> {
    match api {
        ApiKey::ListOffsets => frame(api, version, &ListOffsetsRequest::default()),
        ApiKey::OffsetForLeaderEpoch => frame(api, version, &OffsetForLeaderEpochRequest::default()),
        ApiKey::DeleteTopics => frame(api, version, &DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => frame(api, version, &InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => frame(api, version, &DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => frame(api, version, &AlterConfigsRequest::default()),
        ApiKey::CreatePartitions => frame(api, version, &CreatePartitionsRequest::default()),
        ApiKey::IncrementalAlterConfigs => frame(api, version, &IncrementalAlterConfigsRequest::default()),
        ApiKey::DescribeCluster => frame(api, version, &DescribeClusterRequest::default()),
        ApiKey::FindCoordinator => frame(api, version, &FindCoordinatorRequest::default()),
        ApiKey::SyncGroup => frame(api, version, &SyncGroupRequest::default()),
        ApiKey::Heartbeat => frame(api, version, &HeartbeatRequest::default()),
        ApiKey::LeaveGroup => frame(api, version, &LeaveGroupRequest::default()),
        ApiKey::OffsetFetch => frame(api, version, &OffsetFetchRequest::default()),
        ApiKey::DescribeGroups => frame(api, version, &DescribeGroupsRequest::default()),
        ApiKey::ListGroups => frame(api, version, &ListGroupsRequest::default()),
        ApiKey::DeleteGroups => frame(api, version, &DeleteGroupsRequest::default()),
        ApiKey::OffsetDelete => frame(api, version, &OffsetDeleteRequest::default()),
        other => anyhow::bail!("no seed for {other:?}"),
    }
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str("seed-topic"))
}

fn metadata(version: i16) -> MetadataRequest {
    let mut topic = metadata_request::MetadataRequestTopic::default();
    topic.name = Some(topic_name());
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![topic]);
    request.allow_auto_topic_creation = version >= 4;
    request
}

fn fetch() -> FetchRequest {
    let mut partition = fetch_request::FetchPartition::default();
    partition.partition_max_bytes = 1 << 20;
    let mut topic = fetch_request::FetchTopic::default();
    topic.topic = topic_name();
    topic.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.max_wait_ms = 100;
    request.max_bytes = 1 << 20;
    request.topics = vec![topic];
    request
}

fn produce(records: Vec<u8>) -> ProduceRequest {
    let mut partition = produce_request::PartitionProduceData::default();
    partition.records = Some(Bytes::from(records));
    let mut topic = produce_request::TopicProduceData::default();
    topic.name = topic_name();
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 1000;
    request.topic_data = vec![topic];
    request
}

fn offset_commit() -> OffsetCommitRequest {
    let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
    partition.committed_offset = 42;
    let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
    topic.name = topic_name();
    topic.partitions = vec![partition];
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str("g"));
    request.topics = vec![topic];
    request
}

fn join_group() -> JoinGroupRequest {
    let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x0aseed-topic\x00\x00\x00\x00");
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str("g"));
    request.session_timeout_ms = 10_000;
    request.protocol_type = StrBytes::from_static_str("consumer");
    request.protocols = vec![protocol];
    request
}

fn create_topics() -> CreateTopicsRequest {
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = topic_name();
    topic.num_partitions = 3;
    topic.replication_factor = 1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request
}

fn nsq_streams() -> Seeds {
    let identify = br#"{"client_id":"seed","hostname":"h","feature_negotiation":true,"heartbeat_interval":30000,"msg_timeout":60000,"user_agent":"seed/1"}"#;
    let mut stream = b"  V2".to_vec();
    put_body(&mut stream, b"IDENTIFY\n", identify);
    stream.extend_from_slice(b"SUB seed-topic seed-channel\nRDY 10\nFIN 0000000000000001\nREQ 0000000000000002 1000\nTOUCH 0000000000000003\nNOP\n");
    let mut publish = b"  V2".to_vec();
    put_body(&mut publish, b"PUB seed-topic\n", b"hello");
    put_body(&mut publish, b"DPUB seed-topic 1000\n", b"later");
    let mut mpub = BytesMut::new();
    mpub.put_i32(2);
    for body in [&b"one"[..], b"two"] {
        mpub.put_i32(body.len() as i32);
        mpub.put_slice(body);
    }
    put_body(&mut publish, b"MPUB seed-topic\n", &mpub);
    publish.extend_from_slice(b"CLS\n");
    let mut secure = b"  V2".to_vec();
    put_body(&mut secure, b"IDENTIFY\n", br#"{"feature_negotiation":true,"tls_v1":true,"snappy":true}"#);
    put_body(&mut secure, b"AUTH\n", b"a secret & more");
    vec![("subscriber".into(), stream), ("publisher".into(), publish), ("secure".into(), secure)]
}

/// For `nsq_auth`: the first byte picks the reader (0: an auth server's HTTP answer, 1: its
/// JSON). Client certificates (selector 2) are kept as `cert-*` files made with openssl.
fn auth_seeds() -> Seeds {
    let json = br#"{"ttl":3600,"identity":"alice","identity_url":"http://auth/alice","authorizations":[{"topic":"^orders$","channels":[".*"],"permissions":["publish"]},{"topic":"logs.*","channels":["^audit$","x+"],"permissions":["subscribe","publish"]}]}"#;
    let mut sized = vec![0u8];
    sized.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", json.len()).as_bytes());
    sized.extend_from_slice(json);
    let mut chunked = vec![0u8];
    chunked.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for part in json.chunks(50) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut reply = vec![1u8];
    reply.extend_from_slice(json);
    vec![("http-sized".into(), sized), ("http-chunked".into(), chunked), ("reply".into(), reply)]
}

fn put_body(out: &mut Vec<u8>, line: &[u8], body: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

fn compressed_streams() -> anyhow::Result<Seeds> {
    let plain = &nsq_streams()[1].1;
    let mut snappy = snap::write::FrameEncoder::new(Vec::new());
    snappy.write_all(plain)?;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(plain)?;
    // The first byte says where the input is split in two feeds.
    let split = |mut body: Vec<u8>| {
        body.insert(0, 17);
        body
    };
    Ok(vec![
        ("snappy".into(), split(snappy.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)),
        ("deflate".into(), split(deflate.finish()?)),
    ])
}

fn record_seeds(batches: &[(&str, Vec<u8>)]) -> anyhow::Result<Seeds> {
    let mut seeds: Seeds = batches.iter().map(|(name, b)| (format!("v2-{name}"), b.clone())).collect();
    let all: Vec<u8> = batches.iter().flat_map(|(_, b)| b.clone()).collect();
    seeds.push(("v2-all-codecs".into(), all));
    // Counts that lie about the records (produce refuses them with INVALID_RECORD).
    for (name, count, last_delta) in [("count-1000", 1000, 999), ("count-0", 0, 0)] {
        for (codec, batch) in &batches[..2] {
            seeds.push((format!("v2-{codec}-{name}"), with_count(batch, count, last_delta)));
        }
    }
    for magic in [0, 1] {
        seeds.push((format!("magic{magic}"), convert::downconvert_batches(&batches[0].1, magic, 0)?));
        seeds.push((format!("magic{magic}-gzip"), convert::downconvert_batches(&batches[1].1, magic, 0)?));
    }
    Ok(seeds)
}

/// `batch` with its record count and last offset delta rewritten and its CRC-32C resealed.
fn with_count(batch: &[u8], count: i32, last_delta: i32) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[57..61].copy_from_slice(&count.to_be_bytes());
    b[23..27].copy_from_slice(&last_delta.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Real logs with small segments, laid out as the target's input (see segment_recovery.rs).
fn segment_seeds(batches: &[(&str, Vec<u8>)]) -> anyhow::Result<Seeds> {
    let mut seeds = Seeds::new();
    for (name, count) in [("one-segment", 2), ("rolled", 12)] {
        let dir = tempfile::tempdir()?;
        let config = LogConfig { segment_bytes_max: 4096, index_interval_bytes: 64, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config)?;
        for i in 0..count {
            let mut b = batches[i % batches.len()].1.clone();
            log.append(&mut b)?;
        }
        let bases = log.segment_base_offsets();
        log.close()?;
        let file = |base: i64, suffix: &str| std::fs::read(dir.path().join(format!("{base:020}.{suffix}")));
        let active = *bases.last().unwrap_or(&0);
        let mut input = (active as u32).to_le_bytes().to_vec();
        if bases.len() > 1 {
            for suffix in ["log", "index", "timeindex"] {
                let bytes = file(bases[0], suffix)?;
                input.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                input.extend_from_slice(&bytes);
            }
        } else {
            input.extend_from_slice(&[0; 12]);
        }
        input.extend_from_slice(&file(active, "log")?);
        seeds.push((name.into(), input));
    }
    Ok(seeds)
}

async fn checkpoint_seeds() -> anyhow::Result<Seeds> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::open(BrokerConfig::new(dir.path()))?;
    let channels = Channels::open(broker, ChannelsConfig::default())?;
    let bodies: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("m{i}"))).collect();
    channels.publish("t", &bodies, None).await?;
    let channel = channels.channel_or_create("t", "c")?;
    let me = ClientInfo { id: 1, ..ClientInfo::default() };
    me.ready_count.store(10, Ordering::Relaxed);
    let got: Vec<_> = (0..4).filter_map(|_| channel.try_pop(&me, Duration::from_secs(60))).collect();
    for d in got.iter().skip(1).step_by(2) {
        let _ = channel.fin(d.id, &me);
    }
    if let Some(d) = got.first() {
        let _ = channel.req(d.id, &me, Duration::from_secs(5));
    }
    channels.checkpoint(true);
    let real = std::fs::read(dir.path().join("channels/t/c.json"))?;
    let hand = br#"{"version":1,"paused":true,"partitions":{"0":{"floor":2,"finished":[3,4]}},"pending":[{"partition":0,"offset":2,"attempts":3,"defer_until_ms":1700000000000}]}"#;
    Ok(vec![("real".into(), real), ("paused-pending".into(), hand.to_vec())])
}

fn offsets_seeds() -> anyhow::Result<Seeds> {
    let dir = tempfile::tempdir()?;
    let mut store = OffsetStore::open(dir.path())?;
    let c = |offset| Committed { offset, leader_epoch: 0, metadata: Some("m".into()), commit_ts_ms: 1_700_000_000_000 };
    store.commit("g1", &[("t".into(), 0, c(5)), ("t".into(), 1, c(9))])?;
    store.commit("g2", &[("u".into(), 0, c(1))])?;
    store.delete("g1", &[("t".into(), 1)])?;
    store.delete_group("g2")?;
    store.commit("g1", &[("t".into(), 0, c(6))])?;
    drop(store);
    Ok(vec![("commits-deletes".into(), std::fs::read(dir.path().join("offsets.log"))?)])
}
