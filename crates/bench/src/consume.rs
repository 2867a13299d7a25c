//! `consume`: assign every partition from the beginning (no consumer group)
//! and read N messages.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::json;

use crate::common::{self, CommonArgs, LogContext};

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long)]
    pub topic: String,
    /// Number of messages to read.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
}

/// A consumer with no group, assigned to every partition of `topic` at the
/// given per-partition offsets (or the beginning).
pub fn assigned_consumer(
    common: &CommonArgs,
    topic: &str,
    partitions: i32,
    start_offsets: Option<&[i64]>,
) -> Result<BaseConsumer<LogContext>> {
    let mut cfg = common.client_config();
    // librdkafka refuses assign() without a group.id; a unique one that is
    // never joined nor committed to keeps this a group-less reader.
    let group = format!(
        "sluice-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    cfg.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    for (k, v) in &common.extra {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer<LogContext> = cfg.create_with_context(LogContext).context("creating consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let off = match start_offsets.and_then(|o| o.get(p as usize)) {
            Some(&o) => Offset::Offset(o),
            None => Offset::Beginning,
        };
        tpl.add_partition_offset(topic, p, off).context("building assignment")?;
    }
    consumer.assign(&tpl).context("assigning partitions")?;
    Ok(consumer)
}

pub fn run(args: ConsumeArgs) -> Result<bool> {
    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }
    let start = Instant::now();
    let deadline = args.common.deadline(start);
    let partitions = common::wait_for_topic(&args.common, &args.topic, deadline)?;
    println!(
        "consume: brokers={} topic={} messages={} partitions={} (assign from beginning, no group membership)",
        args.common.brokers, args.topic, args.messages, partitions
    );
    let consumer = assigned_consumer(&args.common, &args.topic, partitions, None)?;
    let assigned_at = Instant::now();
    let mut first: Option<Instant> = None;
    let mut count: u64 = 0;
    let mut bytes: u64 = 0;
    let mut errors: u64 = 0;
    let mut first_error: Option<String> = None;
    while count < args.messages {
        let left = common::remaining(deadline);
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            None => {}
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some(Instant::now());
                }
                count += 1;
                bytes += m.payload_len() as u64 + m.key().map_or(0, |k| k.len() as u64);
            }
            Some(Err(e)) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(e.to_string());
                }
            }
        }
    }
    let end = Instant::now();
    let complete = count >= args.messages;
    let total = end.duration_since(assigned_at).as_secs_f64().max(1e-6);
    // Rate from the first message on: excludes connection set-up and the
    // first fetch's round trip, which are not throughput.
    let steady = first.map_or(total, |f| end.duration_since(f).as_secs_f64().max(1e-6));
    let msgs_per_s = count as f64 / steady;
    let mb_per_s = common::mb(bytes) / steady;
    println!(
        "read {count}/{} msgs, {:.1} MB in {:.3} s from first message ({:.3} s from assign)",
        args.messages,
        common::mb(bytes),
        steady,
        total
    );
    println!("{msgs_per_s:.0} msgs/s, {mb_per_s:.1} MB/s (payload+key bytes, MB = 10^6 B)");
    println!("from assign: {:.0} msgs/s, {:.1} MB/s", count as f64 / total, common::mb(bytes) / total);
    println!("errors: {errors}{}", first_error.map_or(String::new(), |e| format!(" (first: {e})")));
    if !complete {
        println!("TIMEOUT: run hit --timeout-s {} before N messages", args.common.timeout_s);
    }
    let out = json!({
        "mode": "consume",
        "topic": args.topic,
        "messages": args.messages,
        "received": count,
        "bytes": bytes,
        "errors": errors,
        "complete": complete,
        "elapsed_s": common::r3(steady),
        "msgs_per_s": common::r3(msgs_per_s),
        "mb_per_s": common::r3(mb_per_s),
        "from_assign_mb_per_s": common::r3(common::mb(bytes) / total),
    });
    println!("{out}");
    Ok(complete)
}
