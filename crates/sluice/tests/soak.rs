//! Proves a sustained mixed load does not leak: Kafka produce (acks=all) and consume, NSQ
//! PUB and SUB/FIN, and connection churn on both protocols, with segments rolling and
//! retention deleting them, while the broker's RSS and open fds are sampled. After warm-up
//! neither may grow beyond a documented bound (RELIABILITY.md, "Soak").
//!
//! Runs `SLUICE_SOAK_SECS` seconds (default 60; 600 by hand for the figures in RELIABILITY.md):
//! `SLUICE_SOAK_SECS=600 cargo test -p sluice --release --test soak -- --nocapture`.

mod common;
mod limits_support;
mod nsq_common;

use common::raw::Raw;
use common::{acks_all_producer, plain_consumer, runtime, Broker};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use limits_support::{open_fds, rss_kib};
use nsq_common::Wire;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SOAK_SECS_DEFAULT: u64 = 60;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples before this share of the run are warm-up (allocator arenas, page cache of the
/// first segments, lazily created tasks); growth is measured from the end of warm-up.
const WARM_UP_SHARE: f64 = 0.25;
/// RSS may grow this much after warm-up. Generous: the allocator keeps freed memory, and
/// queued replies of a busy moment can peak; a leak of even 1 KiB per request exceeds it
/// within minutes at this load.
const RSS_GROWTH_KIB_MAX: u64 = 128 * 1024;
/// Open fds not explained by live segments (three files each, rolled quickly here and
/// deleted by retention every 30 s) may grow this much after warm-up: sockets of churned
/// connections and files of deleted segments must not accumulate. Measured on the floor
/// (the lowest count in the last third of the run), since a sample taken while retention
/// unlinks segments briefly counts files still open for readers.
const OTHER_FDS_GROWTH_MAX: usize = 64;
const KAFKA_BATCH: usize = 100;
const VALUE_BYTES: usize = 1024;

fn soak_duration() -> Duration {
    let secs = std::env::var("SLUICE_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(SOAK_SECS_DEFAULT);
    Duration::from_secs(secs)
}

/// Segments on disk: `.log` files under `data/topics/<topic>/<partition>/`.
fn segment_count(data_dir: &std::path::Path) -> usize {
    let entries = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
    };
    let partitions = entries(&data_dir.join("topics")).into_iter().flat_map(|topic| entries(&topic));
    partitions.flat_map(|p| entries(&p)).filter(|f| f.extension().is_some_and(|e| e == "log")).count()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// Work done by each load, so the test can check every one made progress.
#[derive(Default)]
struct Progress {
    kafka_produced: AtomicU64,
    kafka_consumed: AtomicU64,
    nsq_published: AtomicU64,
    nsq_finished: AtomicU64,
    connections_churned: AtomicU64,
}

fn kafka_producer(broker: &Broker, stop: &AtomicBool, progress: &Progress) {
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    let value = vec![b'k'; VALUE_BYTES];
    while !stop.load(Ordering::Relaxed) {
        let sends: Vec<_> = (0..KAFKA_BATCH)
            .map(|i| {
                let record = FutureRecord::<[u8], [u8]>::to("soak").partition((i % 2) as i32).payload(&value);
                producer.send_result(record).unwrap_or_else(|(e, _)| panic!("enqueue: {e}"))
            })
            .collect();
        for send in sends {
            rt.block_on(send).expect("not cancelled").unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
            progress.kafka_produced.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn kafka_consumer(broker: &Broker, stop: &AtomicBool, progress: &Progress) {
    let consumer = plain_consumer(&broker.bootstrap(), &[("auto.offset.reset", "earliest")]);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..2 {
        assignment.add_partition_offset("soak", partition, Offset::Beginning).expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => {
                progress.kafka_consumed.fetch_add(1, Ordering::Relaxed);
            }
            // Retention may delete what the consumer has not reached; it resets to earliest.
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
}

fn nsq_publisher(nsq_port: u16, stop: &AtomicBool, progress: &Progress) {
    let mut wire = Wire::connect(nsq_port);
    let body = vec![b'n'; VALUE_BYTES / 2];
    while !stop.load(Ordering::Relaxed) {
        wire.publish("soak_nsq", &body);
        progress.nsq_published.fetch_add(1, Ordering::Relaxed);
    }
}

fn nsq_subscriber(nsq_port: u16, stop: &AtomicBool, progress: &Progress) {
    let mut wire = Wire::connect(nsq_port);
    wire.subscribe("soak_nsq", "soaker", 100);
    wire.stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = wire.message() {
            wire.line(&format!("FIN {}", message.id));
            progress.nsq_finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Opens and closes a Kafka and an NSQ connection per round, each doing one request.
fn churn(broker: &Broker, nsq_port: u16, stop: &AtomicBool, progress: &Progress) {
    while !stop.load(Ordering::Relaxed) {
        let mut raw = Raw::connect(broker);
        let response: ApiVersionsResponse = raw.request(0, &ApiVersionsRequest::default());
        assert_eq!(response.error_code, 0);
        drop(raw);
        let mut wire = Wire::connect(nsq_port);
        wire.publish("soak_churn", b"churn");
        drop(wire);
        progress.connections_churned.fetch_add(2, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mixed_load_keeps_memory_and_fds_bounded() {
    let duration = soak_duration();
    let broker =
        Broker::start(&["--default-partitions", "2", "--segment-bytes", "8388608", "--retention-bytes", "16777216"]);
    let pid = broker.pid().expect("broker pid");
    let nsq_port = port_of(&broker.nsq_tcp_addr());
    let (stop, progress) = (AtomicBool::new(false), Progress::default());
    // (seconds, RSS KiB, open fds, fds other than live segments' files)
    let mut samples: Vec<(u64, u64, usize, usize)> = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| kafka_producer(&broker, &stop, &progress));
        scope.spawn(|| kafka_consumer(&broker, &stop, &progress));
        scope.spawn(|| nsq_publisher(nsq_port, &stop, &progress));
        scope.spawn(|| nsq_subscriber(nsq_port, &stop, &progress));
        scope.spawn(|| churn(&broker, nsq_port, &stop, &progress));
        let started = Instant::now();
        // Bounded by the soak duration; a panicking load thread ends the scope with its panic.
        while started.elapsed() < duration {
            std::thread::sleep(SAMPLE_EVERY.min(duration.saturating_sub(started.elapsed())));
            let (fds, segments) = (open_fds(pid), segment_count(&broker.data_dir()));
            let sample = (started.elapsed().as_secs(), rss_kib(pid), fds, fds.saturating_sub(3 * segments));
            eprintln!(
                "soak t={:>4}s rss={:>7} KiB fds={fds:>4} segments={segments:>4} other fds={:>4}",
                sample.0, sample.1, sample.3
            );
            samples.push(sample);
        }
        stop.store(true, Ordering::Relaxed);
    });
    let p = &progress;
    eprintln!(
        "soak done in {duration:?}: kafka produced {} consumed {}, nsq published {} finished {}, connections churned {}",
        p.kafka_produced.load(Ordering::Relaxed),
        p.kafka_consumed.load(Ordering::Relaxed),
        p.nsq_published.load(Ordering::Relaxed),
        p.nsq_finished.load(Ordering::Relaxed),
        p.connections_churned.load(Ordering::Relaxed),
    );
    for (name, count) in [
        ("kafka produce", &p.kafka_produced),
        ("kafka consume", &p.kafka_consumed),
        ("nsq publish", &p.nsq_published),
        ("nsq finish", &p.nsq_finished),
        ("connection churn", &p.connections_churned),
    ] {
        assert!(count.load(Ordering::Relaxed) > 0, "{name} made no progress");
    }
    let warm = ((samples.len() as f64 * WARM_UP_SHARE) as usize).min(samples.len().saturating_sub(1));
    let (_, rss_warm, _, other_warm) = samples[warm];
    let rss_max = samples[warm..].iter().map(|s| s.1).max().unwrap_or(rss_warm);
    let fds_max = samples.iter().map(|s| s.2).max().unwrap_or(0);
    let last_third = samples.len() - samples.len() / 3;
    let other_floor = samples[last_third.min(samples.len() - 1)..].iter().map(|s| s.3).min().unwrap_or(other_warm);
    eprintln!(
        "after warm-up: rss {rss_warm} -> max {rss_max} KiB; fds other than segments {other_warm} -> floor of the \
         last third {other_floor} (all fds max {fds_max})"
    );
    assert!(rss_max <= rss_warm + RSS_GROWTH_KIB_MAX, "RSS grew from {rss_warm} to {rss_max} KiB after warm-up");
    assert!(
        other_floor <= other_warm + OTHER_FDS_GROWTH_MAX,
        "fds other than live segments grew from {other_warm} to {other_floor} after warm-up"
    );
}
