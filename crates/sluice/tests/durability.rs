//! Proves data survives: a clean restart keeps topics and messages, `kill -9` during an acks=all produce loop loses no acknowledged message, and a corrupt or torn segment tail is truncated on start while everything before it is served.

mod common;

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;

use common::{
    acks_all_producer, client_config, consume_exact, consume_range, files_with_suffix, partition_count, produce_one,
    runtime, unique_topic, watermarks, Broker, Rng,
};

/// Bound on reading a topic back.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);
/// Acknowledged messages to collect before pulling the plug.
const KILL_AFTER_ACKS: usize = 3_000;
/// Pull the plug after this long even if fewer acks arrived (slow machine).
const KILL_AFTER: Duration = Duration::from_secs(20);
/// Messages in flight at once in the kill test: the kill lands in the middle of these.
const IN_FLIGHT_MAX: usize = 500;
/// Upper bound on messages sent by the kill test.
const SENT_MAX: usize = 200_000;

fn value(tag: &str, i: usize) -> Vec<u8> {
    let mut v = format!("{tag}-{i:07}|").into_bytes();
    v.extend((0..(i % 120)).map(|j| b'a' + ((i + j) % 26) as u8));
    v
}

#[test]
fn restart_keeps_topics_and_messages() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let single = unique_topic("dur-single");
    let multi = unique_topic("dur-multi");

    let admin: AdminClient<DefaultClientContext> = client_config(&broker.bootstrap()).create().unwrap();
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(&multi, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(15))),
        ))
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    drop(admin);

    let producer = acks_all_producer(&broker.bootstrap(), &[("linger.ms", "5")]);
    rt.block_on(async {
        let mut futs = Vec::new();
        for i in 0..500 {
            let v = value("single", i);
            let k = format!("k{i}");
            futs.push(
                producer
                    .send_result(FutureRecord::to(&single).partition(0).key(&k).payload(&v))
                    .unwrap_or_else(|(e, _)| panic!("enqueue {i}: {e}")),
            );
        }
        for p in 0..3 {
            for i in 0..30 {
                let v = value(&format!("multi{p}"), i);
                futs.push(
                    producer
                        .send_result(FutureRecord::<(), _>::to(&multi).partition(p).payload(&v))
                        .unwrap_or_else(|(e, _)| panic!("enqueue {p}/{i}: {e}")),
                );
            }
        }
        for f in futs {
            f.await.unwrap().unwrap_or_else(|(e, _)| panic!("delivery: {e}"));
        }
    });
    drop(producer);

    broker.stop();
    broker.restart();

    assert_eq!(partition_count(&broker.bootstrap(), &single), Some(1));
    assert_eq!(partition_count(&broker.bootstrap(), &multi), Some(3));
    assert_eq!(watermarks(&broker.bootstrap(), &single, 0), (0, 500));
    let recs = consume_exact(&broker.bootstrap(), &single, 0, Offset::Beginning, 500, CONSUME_TIMEOUT);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(&value("single", i)[..]), "value {i}");
    }
    for p in 0..3 {
        let recs = consume_exact(&broker.bootstrap(), &multi, p, Offset::Beginning, 30, CONSUME_TIMEOUT);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.value.as_deref(), Some(&value(&format!("multi{p}"), i)[..]));
        }
    }

    // Appends continue after the recovered end.
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &single, 0, b"k500", b"after-restart"), (0, 500));
}

/// What one produce-until-kill round saw.
struct Round {
    acked: Vec<(usize, i64)>,
    sent: usize,
    failed: usize,
    in_flight_at_kill: usize,
    killed_after: Duration,
}

/// Produces messages `first..` to `topic`/0 with up to `IN_FLIGHT_MAX` in flight, and `kill -9`s
/// the broker once `KILL_AFTER_ACKS` were acknowledged (or `KILL_AFTER` passed), in the middle of
/// the flow; then waits for every in-flight message's fate.
fn produce_until_kill(broker: &mut Broker, rt: &tokio::runtime::Runtime, topic: &str, first: usize) -> Round {
    // No retries, no idempotence: every acknowledgement is for exactly one append, so the log
    // must hold each acknowledged payload exactly once at its acknowledged offset.
    let producer = acks_all_producer(
        &broker.bootstrap(),
        &[
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
            // Bounds how long messages queued for the dead broker take to fail.
            ("message.timeout.ms", "2000"),
            ("linger.ms", "1"),
        ],
    );
    let mut round = Round { acked: Vec::new(), sent: 0, failed: 0, in_flight_at_kill: 0, killed_after: Duration::ZERO };
    let started = Instant::now();
    rt.block_on(async {
        let mut in_flight = VecDeque::new();
        let mut killed = false;
        loop {
            if !killed && (round.acked.len() >= KILL_AFTER_ACKS || started.elapsed() > KILL_AFTER) {
                round.in_flight_at_kill = in_flight.len();
                round.killed_after = started.elapsed();
                broker.kill9();
                killed = true;
            }
            if !killed && round.sent < SENT_MAX && in_flight.len() < IN_FLIGHT_MAX {
                let i = first + round.sent;
                let v = value("kill9", i);
                let key = i.to_string();
                match producer.send_result(FutureRecord::to(topic).partition(0).key(&key).payload(&v)) {
                    Ok(fut) => {
                        in_flight.push_back((i, fut));
                        round.sent += 1;
                        continue;
                    }
                    Err((e, _)) => panic!("enqueue {i}: {e}"),
                }
            }
            let Some((i, fut)) = in_flight.pop_front() else {
                if killed {
                    break;
                }
                continue;
            };
            match fut.await {
                Ok(Ok(delivery)) => {
                    assert_eq!(delivery.partition, 0);
                    round.acked.push((i, delivery.offset));
                }
                Ok(Err(_)) | Err(_) => round.failed += 1,
            }
        }
    });
    eprintln!(
        "kill -9 round from message {first}: sent {}, acknowledged {}, failed {}, in flight at kill {}, killed after {:?}, done after {:?}",
        round.sent,
        round.acked.len(),
        round.failed,
        round.in_flight_at_kill,
        round.killed_after,
        started.elapsed()
    );
    round
}

/// Kill rounds in the crash test: each one restarts from the previous crash's recovered log.
const KILL_ROUNDS: usize = 3;

#[test]
fn kill9_during_acks_all_loses_no_acknowledged_message() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("dur-kill9");

    let mut acked: Vec<(usize, i64)> = Vec::new();
    let mut next = 0usize;
    for round in 0..KILL_ROUNDS {
        let r = produce_until_kill(&mut broker, &rt, &topic, next);
        assert!(!r.acked.is_empty(), "round {round}: no message was acknowledged before the kill");
        next += r.sent;
        acked.extend(r.acked);
        broker.restart();
    }

    let (low, high) = watermarks(&broker.bootstrap(), &topic, 0);
    let max_acked = acked.iter().map(|(_, o)| *o).max().unwrap();
    assert_eq!(low, 0);
    assert!(high > max_acked, "high watermark {high} after restart, but offset {max_acked} was acknowledged");
    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, high as usize, CONSUME_TIMEOUT);
    let mut seen = HashSet::new();
    for (n, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, n as i64, "offsets after recovery are contiguous");
        let v = r.value.clone().unwrap_or_default();
        assert!(seen.insert(v.clone()), "payload stored twice: {:?}", String::from_utf8_lossy(&v));
    }
    let mut offsets = HashSet::new();
    for (i, offset) in &acked {
        assert!(offsets.insert(*offset), "offset {offset} acknowledged twice");
        let r = &recs[*offset as usize];
        assert_eq!(
            r.value.as_deref(),
            Some(&value("kill9", *i)[..]),
            "acknowledged message {i} at offset {offset} is not intact"
        );
        assert_eq!(r.key.as_deref(), Some(i.to_string().as_bytes()));
    }

    // The recovered log accepts appends at its end.
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"k", b"after-kill"), (0, high));
}

/// Messages the idempotent producer sends across a broker crash.
const IDEMPOTENT_TOTAL: usize = 6_000;
/// Crash the broker after this many of them were acknowledged.
const IDEMPOTENT_KILL_AFTER_ACKS: usize = 2_000;

#[test]
fn idempotent_producer_across_kill9_has_no_duplicates_or_gaps() {
    let mut broker = Broker::start(&[]);
    let rt = runtime();
    let topic = unique_topic("dur-idem-kill9");
    // Idempotent producer with ample retry time: it keeps (re)sending with its producer id and
    // sequence numbers through the crash, so the restarted broker must recognise the batches it
    // already has (producer state rebuilt from the log) and store each message exactly once.
    let producer = acks_all_producer(
        &broker.bootstrap(),
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "60000"),
            ("linger.ms", "1"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "500"),
        ],
    );
    let started = Instant::now();
    let mut offsets: Vec<i64> = Vec::with_capacity(IDEMPOTENT_TOTAL);
    let mut killed_at = None;
    rt.block_on(async {
        let mut in_flight = VecDeque::new();
        let mut sent = 0usize;
        loop {
            if killed_at.is_none() && offsets.len() >= IDEMPOTENT_KILL_AFTER_ACKS {
                killed_at = Some((offsets.len(), in_flight.len()));
                broker.kill9();
                broker.restart();
            }
            if sent < IDEMPOTENT_TOTAL && in_flight.len() < IN_FLIGHT_MAX {
                let v = value("idem", sent);
                let fut = producer
                    .send_result(FutureRecord::<(), _>::to(&topic).partition(0).payload(&v))
                    .unwrap_or_else(|(e, _)| panic!("enqueue {sent}: {e}"));
                in_flight.push_back((sent, fut));
                sent += 1;
                continue;
            }
            let Some((i, fut)) = in_flight.pop_front() else { break };
            let delivery = fut
                .await
                .expect("delivery future")
                .unwrap_or_else(|(e, _)| panic!("idempotent message {i} not delivered across the restart: {e}"));
            offsets.push(delivery.offset);
        }
    });
    eprintln!(
        "idempotent producer: {} messages acknowledged across a kill -9 (at {killed_at:?} acked/in flight) in {:?}",
        offsets.len(),
        started.elapsed()
    );
    assert!(killed_at.is_some(), "the broker was never killed");
    for (i, offset) in offsets.iter().enumerate() {
        assert_eq!(*offset, i as i64, "idempotent message {i} acknowledged at offset {offset}");
    }
    assert_eq!(watermarks(&broker.bootstrap(), &topic, 0), (0, IDEMPOTENT_TOTAL as i64));
    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, IDEMPOTENT_TOTAL, CONSUME_TIMEOUT);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(&value("idem", i)[..]), "message at offset {i}");
    }
}

/// Small segments so a modest topic spans many of them.
const SMALL_SEGMENT_BYTES: &str = "65536";
/// Messages for the many-segments test (about 2 MB in all).
const MANY_SEGMENTS_COUNT: usize = 20_000;

#[test]
fn many_segments_survive_restart_and_serve_any_offset() {
    let mut broker = Broker::start(&["--segment-bytes", SMALL_SEGMENT_BYTES]);
    let rt = runtime();
    let topic = unique_topic("dur-segments");
    let producer = acks_all_producer(&broker.bootstrap(), &[("linger.ms", "5"), ("batch.size", "16384")]);
    rt.block_on(async {
        let mut futs = VecDeque::new();
        for i in 0..MANY_SEGMENTS_COUNT {
            let v = value("seg", i);
            futs.push_back(
                producer
                    .send_result(FutureRecord::<(), _>::to(&topic).partition(0).payload(&v))
                    .unwrap_or_else(|(e, _)| panic!("enqueue {i}: {e}")),
            );
            if futs.len() >= IN_FLIGHT_MAX {
                let d = futs.pop_front().unwrap().await.unwrap().unwrap_or_else(|(e, _)| panic!("delivery: {e}"));
                assert_eq!(d.offset, (i + 1 - IN_FLIGHT_MAX) as i64);
            }
        }
        while let Some(f) = futs.pop_front() {
            f.await.unwrap().unwrap_or_else(|(e, _)| panic!("delivery: {e}"));
        }
    });
    drop(producer);
    let segments = files_with_suffix(&broker.data_dir(), ".log")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&topic))
        .count();
    assert!(
        segments >= 10,
        "{MANY_SEGMENTS_COUNT} messages with {SMALL_SEGMENT_BYTES}-byte segments made only {segments} segment(s)"
    );

    broker.stop();
    broker.restart();
    assert_eq!(watermarks(&broker.bootstrap(), &topic, 0), (0, MANY_SEGMENTS_COUNT as i64));

    // Seeks to arbitrary offsets (segment starts, middles, ends) land exactly.
    let mut rng = Rng::new(42);
    let mut probes: Vec<usize> = (0..25).map(|_| rng.below(MANY_SEGMENTS_COUNT as u64) as usize).collect();
    probes.extend([0, MANY_SEGMENTS_COUNT - 1]);
    for at in probes {
        let n = 3.min(MANY_SEGMENTS_COUNT - at);
        let recs = consume_range(&broker.bootstrap(), &topic, 0, Offset::Offset(at as i64), n, CONSUME_TIMEOUT);
        for (k, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, (at + k) as i64, "seek to {at}");
            assert_eq!(r.value.as_deref(), Some(&value("seg", at + k)[..]), "value at {}", at + k);
        }
    }
    // And a full read from the beginning is exact.
    let recs = consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, MANY_SEGMENTS_COUNT, CONSUME_TIMEOUT);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&value("seg", i)[..]));
    }
}

/// The newest `.log` segment of `topic` under the data dir.
fn newest_segment(broker: &Broker, topic: &str) -> PathBuf {
    let logs: Vec<PathBuf> = files_with_suffix(&broker.data_dir(), ".log")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(topic))
        .collect();
    assert!(
        !logs.is_empty(),
        "no *.log segment for {topic} under {}: {:?}",
        broker.data_dir().display(),
        files_with_suffix(&broker.data_dir(), "")
    );
    // Segments are named by zero-padded base offset, so the greatest name is the newest.
    logs.into_iter().max_by_key(|p| p.file_name().unwrap().to_owned()).unwrap()
}

/// Produces `count` messages one at a time (each its own batch) and returns nothing until all
/// are acknowledged at offsets 0..count.
fn produce_sequential(broker: &Broker, topic: &str, tag: &str, count: usize) {
    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    for i in 0..count {
        let got = produce_one(&rt, &producer, topic, 0, i.to_string().as_bytes(), &value(tag, i));
        assert_eq!(got, (0, i as i64), "acknowledgement of {i}");
    }
}

fn assert_serves(broker: &Broker, topic: &str, tag: &str, count: usize) {
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (0, count as i64));
    let recs = consume_exact(&broker.bootstrap(), topic, 0, Offset::Beginning, count, CONSUME_TIMEOUT);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&value(tag, i)[..]), "value {i}");
    }
}

#[test]
fn garbage_tail_is_truncated_on_start() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("dur-garbage");
    produce_sequential(&broker, &topic, "g", 200);
    broker.stop();

    let segment = newest_segment(&broker, &topic);
    let before = std::fs::metadata(&segment).unwrap().len();
    let garbage = Rng::new(0xBAD).bytes(1000);
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&garbage).unwrap();

    let log_mark = broker.log_len();
    broker.restart();
    let startup_log = broker.log_since(log_mark);
    assert!(
        startup_log.to_lowercase().contains("truncat"),
        "start-up log does not mention truncating {} (garbage after byte {before}):\n{startup_log}",
        segment.display()
    );
    assert_serves(&broker, &topic, "g", 200);

    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    for i in 200..210 {
        assert_eq!(produce_one(&rt, &producer, &topic, 0, i.to_string().as_bytes(), &value("g", i)), (0, i as i64));
    }
    assert_serves(&broker, &topic, "g", 210);
}

#[test]
fn torn_last_batch_is_truncated_on_start() {
    let mut broker = Broker::start(&[]);
    let topic = unique_topic("dur-torn");
    produce_sequential(&broker, &topic, "t", 100);
    // A crash, not a clean stop: a clean stop stores the recovery point at the log end, and
    // a log cut below it is refused (tests/recovery_point.rs), not truncated.
    broker.kill9();

    // Cut the last 10 bytes: the final batch (message 99 alone) is now torn.
    let segment = newest_segment(&broker, &topic);
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 10).unwrap();

    let log_mark = broker.log_len();
    broker.restart();
    let startup_log = broker.log_since(log_mark);
    assert!(
        startup_log.to_lowercase().contains("truncat"),
        "start-up log does not mention truncating the torn batch in {}:\n{startup_log}",
        segment.display()
    );
    assert_serves(&broker, &topic, "t", 99);

    let rt = runtime();
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    assert_eq!(produce_one(&rt, &producer, &topic, 0, b"99", &value("t", 99)), (0, 99));
    assert_serves(&broker, &topic, "t", 100);
}
