//! `sluice bench produce|consume`: bounded load against a running broker (by message count
//! and optionally by time), then a summary: messages/s, MB/s (10^6 bytes of message values)
//! and, for produce, the latency of each acknowledged request.

use anyhow::bail;
use bytes::Bytes;
use serde_json::json;
use sluice_records::convert::read_v2_records;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{BenchCommand, BenchConsumeArgs, BenchProduceArgs};
use super::kafka_client::{check, KafkaClient, EARLIEST, LATEST};
use super::net::parse_duration;
use super::produce::{build_batch, parse_acks, Message};
use super::progress::{Counters, Progress};
use super::table::{print_json, Table};

/// Upper bounds on the knobs, so a typo cannot ask for absurd memory or threads.
const CONNECTIONS_MAX: usize = 64;
const SIZE_BYTES_MAX: usize = 1 << 20;
const BATCH_MAX: usize = 10_000;
/// Fetch wait while reading a topic that already holds the data.
const CONSUME_WAIT: Duration = Duration::from_millis(100);

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(args) => produce(args),
        BenchCommand::Consume(args) => consume(args),
    }
}

/// What one bench run measured.
struct Summary {
    direction: &'static str,
    topic: String,
    messages: u64,
    bytes: u64,
    elapsed: Duration,
    /// Per produce request, sorted ascending (empty for consume).
    latencies: Vec<Duration>,
}

fn produce(args: BenchProduceArgs) -> anyhow::Result<()> {
    let acks = parse_acks(&args.acks)?;
    if acks == 0 {
        bail!("bench produce measures acknowledgements: use --acks all or 1");
    }
    check_range("--connections", args.connections, 1, CONNECTIONS_MAX)?;
    check_range("--batch", args.batch, 1, BATCH_MAX)?;
    check_range("--size", args.size, 0, SIZE_BYTES_MAX)?;
    let deadline = args.bounds.duration.as_deref().map(parse_duration).transpose()?;
    let partitions = KafkaClient::connect(&args.kafka.addr)?.partitions(&args.bounds.topic, true)?;
    let total = args.bounds.messages;
    let claimed = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("produce", total, Arc::clone(&counters));
    let started = Instant::now();
    let deadline = deadline.map(|d| started + d);
    let workers: Vec<_> = (0..args.connections)
        .map(|worker| {
            let job = ProduceJob {
                addr: args.kafka.addr.clone(),
                topic: args.bounds.topic.clone(),
                partitions: partitions.clone(),
                acks,
                size: args.size,
                batch: args.batch,
                total,
                deadline,
                worker,
            };
            let (claimed, counters) = (Arc::clone(&claimed), Arc::clone(&counters));
            std::thread::spawn(move || job.run(&claimed, &counters))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut first_error = None;
    for worker in workers {
        match worker.join() {
            Ok(Ok(mut l)) => latencies.append(&mut l),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(anyhow::anyhow!("a producer thread panicked"))),
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    latencies.sort_unstable();
    let summary = Summary {
        direction: "produce",
        topic: args.bounds.topic,
        messages: counters.messages.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        elapsed,
        latencies,
    };
    summary.print(args.out.json);
    Ok(())
}

/// One producer connection's share of the load.
struct ProduceJob {
    addr: String,
    topic: String,
    partitions: Vec<i32>,
    acks: i16,
    size: usize,
    batch: usize,
    total: u64,
    deadline: Option<Instant>,
    worker: usize,
}

impl ProduceJob {
    /// Claims batches from the shared count until it is used up or time runs out; returns the
    /// latency of each request.
    fn run(self, claimed: &AtomicU64, counters: &Counters) -> anyhow::Result<Vec<Duration>> {
        let mut client = KafkaClient::connect(&self.addr)?;
        let value = Bytes::from(vec![b'x'; self.size]);
        let messages =
            |n: usize| -> Vec<Message> { (0..n).map(|_| Message { key: None, value: value.clone() }).collect() };
        // Batches are built once: the broker stores them as sent, so reuse changes nothing.
        let full = build_batch(&messages(self.batch), &[])?;
        let mut latencies = Vec::new();
        let mut round = self.worker;
        loop {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let start = claimed.fetch_add(self.batch as u64, Ordering::Relaxed);
            if start >= self.total {
                break;
            }
            let count = (self.total - start).min(self.batch as u64) as usize;
            let records = if count == self.batch { full.clone() } else { build_batch(&messages(count), &[])? };
            let partition = self.partitions[round % self.partitions.len()];
            round += 1;
            let sent = Instant::now();
            client.produce(&self.topic, self.acks, vec![(partition, records)])?;
            latencies.push(sent.elapsed());
            counters.messages.fetch_add(count as u64, Ordering::Relaxed);
            counters.bytes.fetch_add((count * self.size) as u64, Ordering::Relaxed);
        }
        Ok(latencies)
    }
}

fn consume(args: BenchConsumeArgs) -> anyhow::Result<()> {
    let deadline = args.bounds.duration.as_deref().map(parse_duration).transpose()?;
    let topic = args.bounds.topic.clone();
    let mut client = KafkaClient::connect(&args.kafka.addr)?;
    let partitions = client.partitions(&topic, false)?;
    let mut positions: Vec<(i32, i64)> =
        partitions.iter().copied().zip(client.list_offsets(&topic, &partitions, EARLIEST)?).collect();
    let ends = client.list_offsets(&topic, &partitions, LATEST)?;
    let available: i64 = positions.iter().zip(&ends).map(|((_, start), end)| (end - start).max(0)).sum();
    let total = args.bounds.messages.min(available as u64);
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("consume", total, Arc::clone(&counters));
    let started = Instant::now();
    let deadline = deadline.map(|d| started + d);
    let outcome = read_until(&mut client, &topic, &mut positions, &ends, total, deadline, &counters);
    let elapsed = started.elapsed();
    progress.finish();
    outcome?;
    let summary = Summary {
        direction: "consume",
        topic,
        messages: counters.messages.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        elapsed,
        latencies: Vec::new(),
    };
    summary.print(args.out.json);
    Ok(())
}

/// Fetches from `positions` until `total` messages are read, every partition reaches its end
/// in `ends`, or the deadline passes.
fn read_until(
    client: &mut KafkaClient,
    topic: &str,
    positions: &mut [(i32, i64)],
    ends: &[i64],
    total: u64,
    deadline: Option<Instant>,
    counters: &Counters,
) -> anyhow::Result<()> {
    loop {
        let read = counters.messages.load(Ordering::Relaxed);
        let active: Vec<(i32, i64)> =
            positions.iter().zip(ends).filter(|((_, next), end)| next < end).map(|(p, _)| *p).collect();
        if read >= total || active.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        for fetched in client.fetch(topic, &active, CONSUME_WAIT)? {
            check(fetched.error_code, || format!("fetch from {topic}/{}", fetched.partition))?;
            let Some(position) = positions.iter_mut().find(|(p, _)| *p == fetched.partition) else { continue };
            for batch in read_v2_records(&fetched.records, position.1) {
                let batch = batch?;
                let records = batch.records?;
                let bytes: usize = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len())).sum();
                counters.messages.fetch_add(records.len() as u64, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                position.1 = position.1.max(batch.last_offset + 1);
            }
        }
    }
}

impl Summary {
    fn print(&self, as_json: bool) {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        let msgs_per_sec = self.messages as f64 / seconds;
        let mb_per_sec = self.bytes as f64 / 1e6 / seconds;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let latency = (!self.latencies.is_empty()).then(|| {
            (
                ms(percentile(&self.latencies, 50.0)),
                ms(percentile(&self.latencies, 99.0)),
                ms(self.latencies[self.latencies.len() - 1]),
            )
        });
        if as_json {
            let mut value = json!({
                "direction": self.direction,
                "topic": self.topic,
                "messages": self.messages,
                "bytes": self.bytes,
                "seconds": seconds,
                "msgs_per_sec": msgs_per_sec,
                "mb_per_sec": mb_per_sec,
            });
            if let Some((p50, p99, max)) = latency {
                value["requests"] = json!(self.latencies.len());
                value["latency_ms"] = json!({ "p50": p50, "p99": p99, "max": max });
            }
            print_json(&value);
            return;
        }
        let mut table = Table::new(&["METRIC", "VALUE"]);
        let mut row = |name: &str, value: String| table.row(vec![name.to_string(), value]);
        row("messages", self.messages.to_string());
        row("bytes", self.bytes.to_string());
        row("seconds", format!("{seconds:.3}"));
        row("msgs/s", format!("{msgs_per_sec:.0}"));
        row("MB/s", format!("{mb_per_sec:.2}"));
        if let Some((p50, p99, max)) = latency {
            row("requests", self.latencies.len().to_string());
            row("latency p50 ms", format!("{p50:.3}"));
            row("latency p99 ms", format!("{p99:.3}"));
            row("latency max ms", format!("{max:.3}"));
        }
        println!("bench {} {}", self.direction, self.topic);
        table.print();
    }
}

/// Nearest-rank percentile of sorted, non-empty `values`.
fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn check_range(flag: &str, value: usize, min: usize, max: usize) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{flag} must be between {min} and {max}, not {value}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
    }

    #[test]
    fn summary_json_has_the_figures() {
        let s = Summary {
            direction: "produce",
            topic: "t".into(),
            messages: 10,
            bytes: 1000,
            elapsed: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(2)],
        };
        // Printing must not panic with a single latency sample.
        s.print(true);
        s.print(false);
    }
}
