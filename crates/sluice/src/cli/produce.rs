//! `sluice produce`: one message per line from stdin or a file, sent in batches with the
//! chosen acks, partitioned as Kafka's Java client does (murmur2 of the key, else spread).

use anyhow::{bail, Context as _};
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use serde_json::json;
use sluice_records::convert::{encode_batch, new_record};
use sluice_records::partitioner::partition_for_key;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal as _, Read as _};
use std::time::{SystemTime, UNIX_EPOCH};

use super::args::ProduceArgs;
use super::kafka_client::KafkaClient;
use super::net::parse_key_value;
use super::table::print_json;

/// Longest input line accepted; longer ones are refused rather than buffered without bound
/// (the broker's default message.max.bytes is 1 MiB).
const LINE_BYTES_MAX: usize = 16 << 20;

/// One message to send.
pub struct Message {
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// Offsets written to one partition.
#[derive(Default)]
struct Written {
    first_offset: Option<i64>,
    last_offset: Option<i64>,
    messages: u64,
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let acks = parse_acks(&args.acks)?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let headers = args
        .headers
        .iter()
        .map(|h| parse_key_value(h, "header").map(|(k, v)| (k, Bytes::from(v))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (input, interactive): (Box<dyn BufRead>, bool) = match &args.file {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            (Box::new(BufReader::new(file)), false)
        }
        None => (Box::new(std::io::stdin().lock()), std::io::stdin().is_terminal()),
    };
    let mut client = KafkaClient::connect(&args.kafka.addr)?;
    let partitions = client.partitions(&args.topic, true)?;
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            bail!("topic {} has no partition {p} (it has {})", args.topic, partitions.len());
        }
    }
    // Someone typing expects each line sent as it is entered, not when the batch fills.
    let batch_max = if interactive { 1 } else { args.batch };
    let mut sender = Sender { client, topic: &args.topic, acks, headers, written: BTreeMap::new() };
    let mut pending: BTreeMap<i32, Vec<Message>> = BTreeMap::new();
    let mut pending_count = 0;
    let mut round_robin = 0usize;
    for (index, line) in read_lines(input).enumerate() {
        let line = line?;
        let message = split_message(line, &args, index + 1)?;
        let partition = match (args.partition, &message.key) {
            (Some(p), _) => p,
            // Kafka's default partitioner; Metadata lists at most i32::MAX partitions.
            (None, Some(key)) => partitions[partition_for_key(key, partitions.len() as u32) as usize],
            // Unkeyed: one partition per batch, rotating, like Kafka's sticky partitioner.
            (None, None) => partitions[round_robin % partitions.len()],
        };
        pending.entry(partition).or_default().push(message);
        pending_count += 1;
        if pending_count >= batch_max {
            sender.send(std::mem::take(&mut pending))?;
            pending_count = 0;
            round_robin += 1;
        }
    }
    sender.send(pending)?;
    report(&args.topic, &sender.written, args.out.json);
    Ok(())
}

/// Sends produce requests and records where messages landed.
struct Sender<'a> {
    client: KafkaClient,
    topic: &'a str,
    acks: i16,
    headers: Vec<(String, Bytes)>,
    written: BTreeMap<i32, Written>,
}

impl Sender<'_> {
    fn send(&mut self, pending: BTreeMap<i32, Vec<Message>>) -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut batches = Vec::with_capacity(pending.len());
        let mut counts = BTreeMap::new();
        for (partition, messages) in &pending {
            batches.push((*partition, build_batch(messages, &self.headers)?));
            counts.insert(*partition, messages.len() as u64);
        }
        for (partition, base) in self.client.produce(self.topic, self.acks, batches)? {
            let count = counts.get(&partition).copied().unwrap_or(0);
            let entry = self.written.entry(partition).or_default();
            entry.messages += count;
            if let Some(base) = base {
                entry.first_offset.get_or_insert(base);
                entry.last_offset = Some(base + count as i64 - 1);
            }
        }
        Ok(())
    }
}

/// Encodes `messages` as one RecordBatch v2 stamped with the current time.
pub fn build_batch(messages: &[Message], headers: &[(String, Bytes)]) -> anyhow::Result<Bytes> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let records: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut record = new_record(i as i64, now_ms, m.key.clone(), Some(m.value.clone()), Vec::new());
            record.headers = headers.iter().map(|(k, v)| (StrBytes::from_string(k.clone()), Some(v.clone()))).collect();
            record
        })
        .collect();
    Ok(Bytes::from(encode_batch(&records, Compression::None).context("cannot encode the record batch")?))
}

/// "all" or -1, 1, 0.
pub fn parse_acks(text: &str) -> anyhow::Result<i16> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => bail!("invalid --acks {text:?} (use all, 1 or 0)"),
    }
}

/// Lines without their "\n" or "\r\n", each bounded by `LINE_BYTES_MAX`.
fn read_lines(mut input: Box<dyn BufRead>) -> impl Iterator<Item = anyhow::Result<Vec<u8>>> {
    let mut number = 0u64;
    std::iter::from_fn(move || {
        number += 1;
        let mut line = Vec::new();
        let limited = input.by_ref().take(LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut line);
        match limited {
            Ok(0) => None,
            Err(e) => Some(Err(anyhow::anyhow!("cannot read input: {e}"))),
            Ok(_) if line.len() > LINE_BYTES_MAX => {
                Some(Err(anyhow::anyhow!("line {number} is longer than {LINE_BYTES_MAX} bytes")))
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Some(Ok(line))
            }
        }
    })
}

fn split_message(line: Vec<u8>, args: &ProduceArgs, number: usize) -> anyhow::Result<Message> {
    if let Some(separator) = args.key_separator.as_deref().filter(|s| !s.is_empty()) {
        let sep = separator.as_bytes();
        let Some(at) = line.windows(sep.len()).position(|w| w == sep) else {
            bail!("line {number} has no key separator {separator:?}");
        };
        let value = Bytes::copy_from_slice(&line[at + sep.len()..]);
        return Ok(Message { key: Some(Bytes::copy_from_slice(&line[..at])), value });
    }
    Ok(Message { key: args.key.as_ref().map(|k| Bytes::from(k.clone())), value: Bytes::from(line) })
}

fn report(topic: &str, written: &BTreeMap<i32, Written>, as_json: bool) {
    let total: u64 = written.values().map(|w| w.messages).sum();
    if as_json {
        let partitions: Vec<_> = written
            .iter()
            .map(|(p, w)| {
                json!({ "partition": p, "messages": w.messages, "first_offset": w.first_offset, "last_offset": w.last_offset })
            })
            .collect();
        print_json(&json!({ "topic": topic, "messages": total, "partitions": partitions }));
        return;
    }
    let places: Vec<String> = written
        .iter()
        .map(|(p, w)| match (w.first_offset, w.last_offset) {
            (Some(first), Some(last)) => format!("partition {p} offsets {first}..{last}"),
            _ => format!("partition {p} ({} unacknowledged)", w.messages),
        })
        .collect();
    let plural = if total == 1 { "" } else { "s" };
    if places.is_empty() {
        println!("produced {total} message{plural} to {topic}");
    } else {
        println!("produced {total} message{plural} to {topic}: {}", places.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse() {
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("1").unwrap(), 1);
        assert!(parse_acks("2").is_err());
    }
}
