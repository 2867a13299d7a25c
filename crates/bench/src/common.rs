//! Shared pieces: client configuration, logging context, topic creation,
//! percentiles and payload generation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// At most this many librdkafka log/error lines are echoed per process, so a
/// broker that refuses connections cannot flood the terminal.
const MAX_LOG_LINES: usize = 20;
static LOG_LINES: AtomicUsize = AtomicUsize::new(0);

pub fn echo_client_log(kind: &str, msg: &str) {
    let n = LOG_LINES.fetch_add(1, Ordering::Relaxed);
    if n < MAX_LOG_LINES {
        eprintln!("librdkafka {kind}: {msg}");
    } else if n == MAX_LOG_LINES {
        eprintln!("librdkafka: further log lines suppressed");
    }
}

/// Client context that echoes librdkafka warnings and errors to stderr
/// (rdkafka's default context routes them to the `log` crate, which nobody
/// listens to here).
#[derive(Default)]
pub struct LogContext;

impl ConsumerContext for LogContext {}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            echo_client_log("log", &format!("{fac}: {log_message}"));
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        echo_client_log("error", &format!("{error}: {reason}"));
    }
}

/// Options every subcommand shares.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Bootstrap address(es) of any Kafka-compatible broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Hard upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Replication factor of topics the run creates (-1: the cluster's default).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub replication_factor: i32,
    /// Extra librdkafka property for every client, `key=value` (repeatable).
    #[arg(long = "set", value_parser = parse_kv)]
    pub extra: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

impl CommonArgs {
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers)
            .set("client.id", "sluice-bench")
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &self.extra {
            cfg.set(k, v);
        }
        cfg
    }

    pub fn deadline(&self, start: Instant) -> Instant {
        start + Duration::from_secs(self.timeout_s)
    }
}

/// Creates `topic` with `partitions` partitions (`--replication-factor`) if it does not
/// exist, then waits until metadata shows it with a leader for every
/// partition. Returns the partition count the broker reports.
pub fn ensure_topic(common: &CommonArgs, topic: &str, partitions: i32, deadline: Instant) -> Result<i32> {
    if partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().context("building tokio runtime")?;
    let admin: AdminClient<LogContext> =
        common.client_config().create_with_context(LogContext).context("creating admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(common.replication_factor));
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let budget = remaining(deadline).min(Duration::from_secs(15));
    let outcome = rt.block_on(async { tokio::time::timeout(budget, admin.create_topics([&new_topic], &opts)).await });
    match outcome {
        Ok(Ok(results)) => {
            for r in results {
                match r {
                    Ok(name) => println!("created topic {name} with {partitions} partition(s)"),
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        println!("topic {name} already exists")
                    }
                    Err((name, code)) => {
                        eprintln!("warning: CreateTopics({name}) failed: {code}; relying on auto-creation")
                    }
                }
            }
        }
        Ok(Err(e)) => {
            eprintln!("warning: CreateTopics request failed: {e}; relying on auto-creation")
        }
        Err(_) => eprintln!("warning: CreateTopics timed out; relying on auto-creation"),
    }
    drop(admin);
    wait_for_topic(common, topic, deadline)
}

/// Polls metadata (bounded by `deadline`) until `topic` exists with a leader
/// for each partition; returns the partition count.
pub fn wait_for_topic(common: &CommonArgs, topic: &str, deadline: Instant) -> Result<i32> {
    let consumer: BaseConsumer<LogContext> = common
        .client_config()
        .set("allow.auto.create.topics", "true")
        .create_with_context(LogContext)
        .context("creating metadata client")?;
    let mut last_problem = String::from("no metadata yet");
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            bail!("topic {topic} not usable before the timeout: {last_problem}");
        }
        match consumer.fetch_metadata(Some(topic), left.min(Duration::from_secs(5))) {
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) => {
                    if let Some(err) = t.error() {
                        last_problem = format!("topic error {:?}", RDKafkaErrorCode::from(err));
                    } else if t.partitions().is_empty() {
                        last_problem = "topic has no partitions".into();
                    } else if let Some(p) = t.partitions().iter().find(|p| p.leader() < 0) {
                        last_problem = format!("partition {} has no leader", p.id());
                    } else {
                        return i32::try_from(t.partitions().len()).map_err(|_| anyhow!("absurd partition count"));
                    }
                }
                None => last_problem = "topic missing from metadata".into(),
            },
            Err(e) => last_problem = format!("metadata request failed: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200).min(remaining(deadline)));
    }
}

pub fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Latency figures in milliseconds, from samples in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub count: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles; sorts `samples_us` in place.
    pub fn from_micros(samples_us: &mut [u64]) -> Percentiles {
        samples_us.sort_unstable();
        let n = samples_us.len();
        if n == 0 {
            return Percentiles::default();
        }
        // `per_mille`: 500 = p50, 999 = p99.9. Integer maths, so p99 of 1000
        // samples is exactly the 990th.
        let at = |per_mille: usize| -> f64 {
            let rank = (per_mille * n).div_ceil(1000);
            samples_us[rank.clamp(1, n) - 1] as f64 / 1000.0
        };
        Percentiles {
            p50_ms: at(500),
            p99_ms: at(990),
            p999_ms: at(999),
            max_ms: samples_us[n - 1] as f64 / 1000.0,
            count: n,
        }
    }

    pub fn line(&self, what: &str) -> String {
        format!(
            "{what} (ms, n={}): p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.count, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// Payload of `size` bytes drawn from a 16-symbol alphabet: roughly 2:1
/// compressible, so `--compression` runs are neither trivial nor pointless.
pub fn payload(size: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 16] = b"abcdefghijklmnop";
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x & 15) as usize]
        })
        .collect()
}

/// MB = 10^6 bytes throughout.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Rounds for JSON output (3 decimals).
pub fn r3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let p = Percentiles::from_micros(&mut v);
        assert_eq!(p.p50_ms, 500.0);
        assert_eq!(p.p99_ms, 990.0);
        assert_eq!(p.p999_ms, 999.0);
        assert_eq!(p.max_ms, 1000.0);
        assert_eq!(Percentiles::from_micros(&mut []).count, 0);
    }

    #[test]
    fn kv_parse() {
        assert_eq!(parse_kv("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_kv("novalue").is_err());
        assert!(parse_kv("=x").is_err());
    }

    #[test]
    fn payload_is_deterministic_and_sized() {
        assert_eq!(payload(1024, 7), payload(1024, 7));
        assert_eq!(payload(1024, 7).len(), 1024);
    }
}
