//! `latency`: produce at a fixed rate for a bounded time, with the intended
//! send time embedded in each payload; a consumer in the same process reads
//! the topic and records end-to-end latency (produce call -> consumer poll).
//!
//! The embedded time is the *scheduled* send time, not the moment `send()`
//! returned, so a producer that falls behind its schedule shows up as
//! latency instead of being hidden (no coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};
use serde_json::json;

use crate::common::{self, CommonArgs, Percentiles};
use crate::consume::assigned_consumer;
use crate::produce::{Acks, DeliveryStats};

const MAGIC: u64 = 0x5a1c_e0be_4c4a_7e11;
/// Sequence number of warm-up messages (not measured).
const WARMUP_SEQ: u64 = u64::MAX;

#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long)]
    pub topic: String,
    /// Target produce rate, messages per second.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Payload size in bytes (at least 24: magic, sequence, send time).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    #[arg(long, value_enum, default_value_t = Acks::One)]
    pub acks: Acks,
    /// Partitions to create the topic with (if it does not exist).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Producer linger.ms. Default 0: a latency test should not add 5 ms of
    /// client-side batching delay (librdkafka's default linger).
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Consumer fetch.wait.max.ms (upper bound of the broker's long poll).
    /// Default 500, librdkafka's own default: a broker that answers a
    /// waiting fetch as soon as data arrives is not slowed by it.
    #[arg(long, default_value_t = 500)]
    pub fetch_wait_ms: u64,
    /// Seconds to wait after the last send for stragglers.
    #[arg(long, default_value_t = 10)]
    pub drain_s: u64,
}

pub fn run(args: LatencyArgs) -> Result<bool> {
    if args.size < 24 {
        bail!("--size must be at least 24 bytes (magic, sequence and send time are embedded)");
    }
    if args.rate == 0 || args.seconds == 0 {
        bail!("--rate and --seconds must be at least 1");
    }
    let total = args.rate.checked_mul(args.seconds).context("--rate x --seconds overflows")?;
    if total > 100_000_000 {
        bail!("--rate x --seconds must be at most 100,000,000 messages");
    }
    let start = Instant::now();
    let deadline = args.common.deadline(start);
    let partitions = common::ensure_topic(&args.common, &args.topic, args.partitions, deadline)?;

    // Start the consumer at the current end of every partition, so it sees
    // exactly the messages of this run.
    let mut start_offsets = Vec::with_capacity(partitions as usize);
    {
        let probe = assigned_consumer(&args.common, &args.topic, 0, None)?;
        for p in 0..partitions {
            let (_low, high) = probe
                .fetch_watermarks(&args.topic, p, common::remaining(deadline).min(Duration::from_secs(10)))
                .with_context(|| format!("fetching watermarks of partition {p}"))?;
            start_offsets.push(high);
        }
    }
    let mut ccfg = args.common.clone();
    ccfg.extra.insert(0, ("fetch.wait.max.ms".into(), args.fetch_wait_ms.to_string()));
    let consumer = assigned_consumer(&ccfg, &args.topic, partitions, Some(&start_offsets))?;

    let mut pcfg = args.common.client_config();
    pcfg.set("acks", args.acks.as_str()).set("linger.ms", args.linger_ms.to_string());
    for (k, v) in &args.common.extra {
        pcfg.set(k, v);
    }
    let base = Instant::now();
    let producer: ThreadedProducer<DeliveryStats> =
        pcfg.create_with_context(DeliveryStats::new(base, total)).context("creating producer")?;
    let stats = producer.context().clone();

    println!(
        "latency: brokers={} topic={} rate={}/s seconds={} size={} acks={} partitions={} linger_ms={} fetch_wait_ms={}",
        args.common.brokers,
        args.topic,
        args.rate,
        args.seconds,
        args.size,
        args.acks.as_str(),
        partitions,
        args.linger_ms,
        args.fetch_wait_ms
    );

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(AtomicBool::new(false));
    let drain = Duration::from_secs(args.drain_s);

    // Consumer thread: records latency of every message of this run.
    let consumer_thread = {
        let sent = sent.clone();
        let done = done.clone();
        let warm = warm.clone();
        std::thread::Builder::new()
            .name("latency-consumer".into())
            .spawn(move || {
                let mut lat_us: Vec<u64> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
                let mut seen = vec![false; usize::try_from(total).unwrap_or(0)];
                let mut dups: u64 = 0;
                let mut foreign: u64 = 0;
                let mut errors: u64 = 0;
                let mut done_at: Option<Instant> = None;
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    if done.load(Ordering::Acquire) {
                        let d = *done_at.get_or_insert(now);
                        if lat_us.len() as u64 >= sent.load(Ordering::Acquire) || now.duration_since(d) >= drain {
                            break;
                        }
                    }
                    match consumer.poll(Duration::from_millis(50)) {
                        None => {}
                        Some(Err(_)) => errors += 1,
                        Some(Ok(m)) => {
                            let recv_ns = base.elapsed().as_nanos() as u64;
                            let Some(p) = m.payload() else {
                                foreign += 1;
                                continue;
                            };
                            let word = |i: usize| -> u64 {
                                let mut b = [0u8; 8];
                                b.copy_from_slice(&p[i * 8..i * 8 + 8]);
                                u64::from_le_bytes(b)
                            };
                            if p.len() < 24 || word(0) != MAGIC {
                                foreign += 1;
                                continue;
                            }
                            if word(1) == WARMUP_SEQ {
                                warm.store(true, Ordering::Release);
                                continue;
                            }
                            let seq = word(1) as usize;
                            match seen.get_mut(seq) {
                                Some(s) if *s => dups += 1,
                                Some(s) => {
                                    *s = true;
                                    lat_us.push(recv_ns.saturating_sub(word(2)) / 1000);
                                }
                                None => foreign += 1,
                            }
                        }
                    }
                }
                (lat_us, dups, foreign, errors)
            })
            .context("spawning consumer thread")?
    };

    // Producer: message i is due at base + i / rate. Send everything due,
    // then sleep until the next one is due.
    let mut buf = common::payload(args.size, 0x1a7e);
    buf[..8].copy_from_slice(&MAGIC.to_le_bytes());

    // Warm-up: until the consumer has seen one message, connections, the
    // first fetch and the producer's metadata are still being set up; that
    // start-up time is not end-to-end latency. Send a warm-up message every
    // 20 ms until the consumer reports one (bounded), then start the clock.
    buf[8..16].copy_from_slice(&WARMUP_SEQ.to_le_bytes());
    let warm_start = Instant::now();
    let warm_limit = warm_start + Duration::from_secs(30);
    while !warm.load(Ordering::Acquire) {
        if Instant::now() >= warm_limit.min(deadline) {
            done.store(true, Ordering::Release);
            let _ = consumer_thread.join();
            bail!("warm-up: the consumer saw none of the warm-up messages within 30 s");
        }
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, 0).payload(&buf[..]);
        if let Err((e, _)) = producer.send(record) {
            if !matches!(e, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) {
                done.store(true, Ordering::Release);
                let _ = consumer_thread.join();
                bail!("warm-up send failed: {e}");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let warmup_s = warm_start.elapsed().as_secs_f64();
    // Let any warm-up stragglers drain, and forget their delivery reports.
    let _ = producer.flush(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    let _ = stats.take_latencies();
    let warm_delivered = stats.delivered.load(Ordering::Relaxed);
    let warm_errors = stats.errors.load(Ordering::Relaxed);

    let produce_start = Instant::now();
    let stop_at = produce_start + Duration::from_secs(args.seconds) + Duration::from_secs(1);
    let mut i: u64 = 0;
    let mut queue_full: u64 = 0;
    let mut send_error: Option<String> = None;
    let rate = args.rate as f64;
    'outer: while i < total {
        let now = Instant::now();
        if now >= stop_at.min(deadline) {
            break;
        }
        let due = ((now.duration_since(produce_start).as_secs_f64() * rate) as u64 + 1).min(total);
        while i < due {
            let scheduled = produce_start + Duration::from_secs_f64(i as f64 / rate);
            let sched_ns = scheduled.duration_since(base).as_nanos() as u64;
            buf[8..16].copy_from_slice(&i.to_le_bytes());
            buf[16..24].copy_from_slice(&sched_ns.to_le_bytes());
            let opaque = usize::try_from(sched_ns / 1000).unwrap_or(usize::MAX);
            let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, opaque).payload(&buf[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                        queue_full += 1;
                        if Instant::now() >= deadline {
                            break 'outer;
                        }
                        std::thread::sleep(Duration::from_micros(100));
                        record = rec;
                    }
                    Err((e, _)) => {
                        send_error = Some(e.to_string());
                        break 'outer;
                    }
                }
            }
            i += 1;
            sent.store(i, Ordering::Release);
        }
        if i < total {
            let next = produce_start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    let produce_elapsed = produce_start.elapsed().as_secs_f64().max(1e-6);
    let flushed = producer.flush(common::remaining(deadline).min(drain));
    done.store(true, Ordering::Release);
    let (mut lat_us, dups, foreign, consume_errors) =
        consumer_thread.join().map_err(|_| anyhow::anyhow!("consumer thread panicked"))?;
    drop(producer);

    let received = lat_us.len() as u64;
    let e2e = Percentiles::from_micros(&mut lat_us);
    let mut ack_lat = stats.take_latencies();
    let ack = Percentiles::from_micros(&mut ack_lat);
    let delivered = stats.delivered.load(Ordering::Relaxed) - warm_delivered;
    let prod_errors = stats.errors.load(Ordering::Relaxed) - warm_errors;
    let achieved = i as f64 / produce_elapsed;
    let achieved_mb = common::mb(i * args.size as u64) / produce_elapsed;
    let complete = i == total && received == total && prod_errors == 0 && flushed.is_ok() && send_error.is_none();

    println!("warm-up: consumer saw its first message after {warmup_s:.3} s (not measured)");
    println!(
        "sent {i}/{total} msgs in {produce_elapsed:.3} s: {achieved:.0} msgs/s, {achieved_mb:.1} MB/s (target {} msgs/s); queue-full retries {queue_full}",
        args.rate
    );
    println!(
        "delivered {delivered}, produce errors {prod_errors}{}; received {received}, duplicates {dups}, foreign {foreign}, consumer errors {consume_errors}",
        stats.first_error().or(send_error).map_or(String::new(), |e| format!(" (first: {e})"))
    );
    println!("{}", e2e.line("end-to-end latency scheduled send->consumer poll"));
    println!("{}", ack.line("produce ack latency scheduled send->delivery report"));
    if !complete {
        println!("INCOMPLETE: not every scheduled message was sent, acknowledged and received in time");
    }
    let out = json!({
        "mode": "latency",
        "topic": args.topic,
        "rate": args.rate,
        "seconds": args.seconds,
        "size": args.size,
        "acks": args.acks.as_str(),
        "sent": i,
        "delivered": delivered,
        "received": received,
        "duplicates": dups,
        "errors": prod_errors + consume_errors,
        "complete": complete,
        "msgs_per_s": common::r3(achieved),
        "mb_per_s": common::r3(achieved_mb),
        "p50_ms": common::r3(e2e.p50_ms),
        "p99_ms": common::r3(e2e.p99_ms),
        "p999_ms": common::r3(e2e.p999_ms),
        "max_ms": common::r3(e2e.max_ms),
        "ack_p50_ms": common::r3(ack.p50_ms),
        "ack_p99_ms": common::r3(ack.p99_ms),
        "warmup_s": common::r3(warmup_s),
    });
    println!("{out}");
    Ok(complete)
}
