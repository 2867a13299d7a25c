//! `produce`: N messages as fast as librdkafka will take them; delivery
//! latency is measured from `send()` to the delivery report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use serde_json::json;

use crate::common::{self, CommonArgs, Percentiles};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    #[value(name = "all")]
    All,
    #[value(name = "1")]
    One,
    #[value(name = "0")]
    Zero,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::One => "1",
            Acks::Zero => "0",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long)]
    pub topic: String,
    /// Number of messages to produce.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Payload size in bytes (no key).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Partitions to create the topic with (if it does not exist). Messages
    /// are spread round-robin over the partitions the topic really has.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// linger.ms (librdkafka default if not given).
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// batch.size in bytes (librdkafka default if not given).
    #[arg(long)]
    pub batch_bytes: Option<u64>,
    /// compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// enable.idempotence=true (requires --acks all).
    #[arg(long)]
    pub idempotent: bool,
}

/// Delivery bookkeeping shared with librdkafka's polling thread.
pub struct DeliveryStats {
    base: Instant,
    latencies_us: Mutex<Vec<u64>>,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    last_delivery_us: AtomicU64,
}

impl DeliveryStats {
    pub fn new(base: Instant, expected: u64) -> DeliveryStats {
        let cap = usize::try_from(expected.min(50_000_000)).unwrap_or(0);
        DeliveryStats {
            base,
            latencies_us: Mutex::new(Vec::with_capacity(cap)),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            last_delivery_us: AtomicU64::new(0),
        }
    }

    /// Microseconds since `base`; this is the delivery opaque of each record.
    pub fn now_us(&self) -> usize {
        usize::try_from(self.base.elapsed().as_micros()).unwrap_or(usize::MAX)
    }

    pub fn take_latencies(&self) -> Vec<u64> {
        match self.latencies_us.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    pub fn first_error(&self) -> Option<String> {
        match self.first_error.lock() {
            Ok(e) => e.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Time of the last delivery report, relative to `base`.
    pub fn last_delivery(&self) -> Duration {
        Duration::from_micros(self.last_delivery_us.load(Ordering::Relaxed))
    }
}

impl ClientContext for DeliveryStats {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            common::echo_client_log("log", &format!("{fac}: {log_message}"));
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        common::echo_client_log("error", &format!("{error}: {reason}"));
    }
}

impl ProducerContext for DeliveryStats {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        let now = self.now_us() as u64;
        self.last_delivery_us.fetch_max(now, Ordering::Relaxed);
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let lat = now.saturating_sub(sent_us as u64);
                match self.latencies_us.lock() {
                    Ok(mut v) => v.push(lat),
                    Err(p) => p.into_inner().push(lat),
                }
            }
            Err((e, _)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = match self.first_error.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

pub fn run(args: ProduceArgs) -> Result<bool> {
    if args.idempotent && args.acks != Acks::All {
        bail!("--idempotent requires --acks all (Kafka's rule, enforced by librdkafka)");
    }
    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }
    let start = Instant::now();
    let deadline = args.common.deadline(start);
    let partitions = common::ensure_topic(&args.common, &args.topic, args.partitions, deadline)?;

    let mut cfg = args.common.client_config();
    cfg.set("acks", args.acks.as_str())
        .set("compression.type", &args.compression)
        .set("enable.idempotence", if args.idempotent { "true" } else { "false" });
    if let Some(l) = args.linger_ms {
        cfg.set("linger.ms", l.to_string());
    }
    if let Some(b) = args.batch_bytes {
        cfg.set("batch.size", b.to_string());
    }
    // Extra properties given with --set win over ours.
    for (k, v) in &args.common.extra {
        cfg.set(k, v);
    }
    let stats = DeliveryStats::new(Instant::now(), args.messages);
    let producer: ThreadedProducer<DeliveryStats> =
        cfg.create_with_context(stats).context("creating producer (check --compression / --set values)")?;
    let stats = producer.context().clone();

    println!(
        "produce: brokers={} topic={} messages={} size={} acks={} partitions={} linger_ms={} batch_bytes={} compression={} idempotent={}",
        args.common.brokers,
        args.topic,
        args.messages,
        args.size,
        args.acks.as_str(),
        partitions,
        args.linger_ms.map_or("default".into(), |v| v.to_string()),
        args.batch_bytes.map_or("default".into(), |v| v.to_string()),
        args.compression,
        args.idempotent
    );

    let payload = common::payload(args.size, 0x5eed);
    let send_start = stats.now_us();
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    let mut timed_out = false;
    'outer: for i in 0..args.messages {
        let partition = i32::try_from(i % partitions as u64).unwrap_or(0);
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, stats.now_us())
            .payload(&payload[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                    if Instant::now() >= deadline {
                        timed_out = true;
                        break 'outer;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                    record = rec;
                    record.delivery_opaque = stats.now_us();
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
        sent += 1;
    }
    let enqueued = t0.elapsed();
    let flushed = producer.flush(common::remaining(deadline));
    if flushed.is_err() {
        timed_out = true;
    }
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let end_us = stats.last_delivery().as_micros() as u64;
    let elapsed = Duration::from_micros(end_us.saturating_sub(send_start as u64)).max(Duration::from_micros(1));
    let secs = elapsed.as_secs_f64();
    let bytes = delivered * args.size as u64;
    let msgs_per_s = delivered as f64 / secs;
    let mb_per_s = common::mb(bytes) / secs;
    let mut lat = stats.take_latencies();
    let p = Percentiles::from_micros(&mut lat);
    let complete = !timed_out && delivered == args.messages && errors == 0;

    println!("enqueued {sent} msgs in {:.3} s; last delivery report after {:.3} s", enqueued.as_secs_f64(), secs);
    println!(
        "delivered {delivered}/{} msgs: {:.0} msgs/s, {:.1} MB/s (payload bytes, MB = 10^6 B)",
        args.messages, msgs_per_s, mb_per_s
    );
    println!("{}", p.line("delivery latency send->report"));
    println!("errors: {errors}{}", stats.first_error().map_or(String::new(), |e| format!(" (first: {e})")));
    if timed_out {
        println!("TIMEOUT: run hit --timeout-s {} before all reports arrived", args.common.timeout_s);
    }
    let out = json!({
        "mode": "produce",
        "topic": args.topic,
        "messages": args.messages,
        "size": args.size,
        "acks": args.acks.as_str(),
        "partitions": partitions,
        "compression": args.compression,
        "idempotent": args.idempotent,
        "delivered": delivered,
        "errors": errors,
        "complete": complete,
        "elapsed_s": common::r3(secs),
        "msgs_per_s": common::r3(msgs_per_s),
        "mb_per_s": common::r3(mb_per_s),
        "p50_ms": common::r3(p.p50_ms),
        "p99_ms": common::r3(p.p99_ms),
        "p999_ms": common::r3(p.p999_ms),
        "max_ms": common::r3(p.max_ms),
    });
    println!("{out}");
    Ok(complete)
}
