//! `sluice consume`: read a topic with ListOffsets + Fetch and print each message's value
//! (or one JSON object per message). Without `--follow` it stops at the log end seen when it
//! started; with it, it long-polls until Ctrl-C, `--max-messages` or `--timeout`.
//!
//! `--group G` makes it a standalone consumer of group G, as Kafka's assign() + commitSync():
//! it starts at G's committed offsets and commits what it printed after every fetch, with
//! generation -1 and no member id (so the group must have no active members).

use anyhow::{anyhow, bail};
use kafka_protocol::error::ResponseError;
use sluice_records::convert::read_v2_records;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use super::args::ConsumeArgs;
use super::kafka_client::{check, KafkaClient, EARLIEST, LATEST};
use super::net::{parse_duration, parse_position, Position};
use super::record_json;

/// Long-poll wait of one Fetch while following: the broker answers as soon as data arrives.
const FOLLOW_WAIT: Duration = Duration::from_millis(1000);
/// Wait of one Fetch when reading up to a known end (data is already there).
const CATCH_UP_WAIT: Duration = Duration::from_millis(100);
/// Fetches in a row that may bring nothing before a bounded read gives up on reaching the
/// end it saw at start (e.g. retention removed those records meanwhile).
const EMPTY_FETCHES_MAX: u32 = 100;

/// Read position and end of one partition.
struct Cursor {
    next_offset: i64,
    /// Stop once `next_offset` reaches this (bounded reads only).
    stop_at: Option<i64>,
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let from = parse_position(&args.from)?;
    let deadline = args.timeout.as_deref().map(parse_duration).transpose()?.map(|d| Instant::now() + d);
    let mut client = KafkaClient::connect(&args.kafka.addr)?;
    let all = client.partitions(&args.topic, false)?;
    let partitions = match args.partition {
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => bail!("topic {} has no partition {p} (it has {})", args.topic, all.len()),
        None => all,
    };
    let mut cursors = start_cursors(&mut client, &args, &partitions, from)?;
    if let Some(group) = &args.group {
        // Committing the start first fails before anything is printed if the group has
        // members (and records where a reader that prints nothing stopped).
        commit(&mut client, group, &args.topic, &cursors)?;
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut empty_fetches = 0u32;
    loop {
        let active: Vec<(i32, i64)> = cursors
            .iter()
            .filter(|(_, c)| c.stop_at.is_none_or(|end| c.next_offset < end))
            .map(|(p, c)| (*p, c.next_offset))
            .collect();
        let limit_reached = args.max_messages.is_some_and(|max| printed >= max);
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if active.is_empty() || limit_reached || timed_out || empty_fetches >= EMPTY_FETCHES_MAX {
            break;
        }
        let wait = if args.follow { FOLLOW_WAIT } else { CATCH_UP_WAIT };
        let wait = deadline.map_or(wait, |d| wait.min(d.saturating_duration_since(Instant::now())));
        let round = fetch_round(&mut client, &args, &active, wait, &mut cursors, &mut out, &mut printed)?;
        match round {
            Round::Printed(0) => empty_fetches += u32::from(!args.follow),
            Round::Printed(_) => empty_fetches = 0,
            Round::OutputClosed => return Ok(()),
        }
        if let Some(group) = &args.group {
            commit(&mut client, group, &args.topic, &cursors)?;
        }
    }
    flush(&mut out);
    Ok(())
}

/// Where each partition starts: the group's committed offset if any, else `from`; and where a
/// bounded read stops (the log end now).
fn start_cursors(
    client: &mut KafkaClient,
    args: &ConsumeArgs,
    partitions: &[i32],
    from: Position,
) -> anyhow::Result<BTreeMap<i32, Cursor>> {
    let committed = match &args.group {
        Some(group) => client.committed(group, &args.topic, partitions)?,
        None => BTreeMap::new(),
    };
    let log_starts = client.list_offsets(&args.topic, partitions, EARLIEST)?;
    let log_ends = client.list_offsets(&args.topic, partitions, LATEST)?;
    let starts = match from {
        Position::Beginning => log_starts.clone(),
        Position::End => log_ends.clone(),
        Position::Offset(n) => vec![n; partitions.len()],
        Position::Timestamp(ms) => client.list_offsets(&args.topic, partitions, ms)?,
    };
    let mut cursors = BTreeMap::new();
    for (i, &p) in partitions.iter().enumerate() {
        let wanted = committed.get(&p).copied().unwrap_or(starts[i]);
        // An explicit offset past the end has nothing to print yet: say so rather than print nothing.
        if let (Position::Offset(n), None) = (from, committed.get(&p)) {
            if n > log_ends[i] {
                bail!("offset {n} is past the end of {}/{p} (log end {})", args.topic, log_ends[i]);
            }
        }
        // An offset outside the log (past its end, or removed by retention) starts at the
        // nearest end of the log, as a Kafka consumer's offset reset would.
        let next_offset = wanted.clamp(log_starts[i], log_ends[i].max(log_starts[i]));
        let stop_at = (!args.follow).then_some(log_ends[i]);
        cursors.insert(p, Cursor { next_offset, stop_at });
    }
    Ok(cursors)
}

enum Round {
    Printed(u64),
    /// Whoever reads our output went away (e.g. `| head`): stop quietly.
    OutputClosed,
}

fn fetch_round(
    client: &mut KafkaClient,
    args: &ConsumeArgs,
    active: &[(i32, i64)],
    wait: Duration,
    cursors: &mut BTreeMap<i32, Cursor>,
    out: &mut impl Write,
    printed: &mut u64,
) -> anyhow::Result<Round> {
    let before = *printed;
    for fetched in client.fetch(&args.topic, active, wait)? {
        let Some(cursor) = cursors.get_mut(&fetched.partition) else { continue };
        let p = fetched.partition;
        if fetched.error_code == ResponseError::OffsetOutOfRange.code() {
            bail!(
                "offset {} is out of range for {}/{p} (log end {})",
                cursor.next_offset,
                args.topic,
                fetched.high_watermark
            );
        }
        check(fetched.error_code, || format!("fetch from {}/{p}", args.topic))?;
        for batch in read_v2_records(&fetched.records, cursor.next_offset) {
            let batch = batch.map_err(|e| anyhow!("unreadable data in {}/{p}: {e}", args.topic))?;
            let records = batch
                .records
                .map_err(|e| anyhow!("unreadable batch at {}/{p} offset {}: {e}", args.topic, batch.base_offset))?;
            for record in records {
                if args.max_messages.is_some_and(|max| *printed >= max) {
                    return Ok(Round::Printed(*printed - before));
                }
                let line =
                    if args.json { record_json::to_json_line(p, &record) } else { record_json::value_line(&record) };
                if writeln!(out, "{line}").is_err() {
                    return Ok(Round::OutputClosed);
                }
                *printed += 1;
                cursor.next_offset = record.offset + 1;
            }
            // Past control batches and records below the start too.
            cursor.next_offset = cursor.next_offset.max(batch.last_offset + 1);
        }
    }
    if out.flush().is_err() {
        return Ok(Round::OutputClosed);
    }
    Ok(Round::Printed(*printed - before))
}

fn commit(client: &mut KafkaClient, group: &str, topic: &str, cursors: &BTreeMap<i32, Cursor>) -> anyhow::Result<()> {
    let positions: Vec<(i32, i64)> = cursors.iter().map(|(p, c)| (*p, c.next_offset)).collect();
    client.commit(group, topic, &positions)
}

fn flush(out: &mut impl Write) {
    // A closed pipe at the very end is not worth an error.
    let _ = out.flush();
}
