//! `mock`: an in-process librdkafka mock cluster on loopback, to check the
//! bench client itself when no real broker is at hand. Its figures say
//! nothing about any real broker.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::mocking::MockCluster;

#[derive(clap::Args, Debug)]
pub struct MockArgs {
    /// How long to keep the mock cluster up.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Topic to pre-create, `name:partitions` (repeatable). The mock broker
    /// does not implement CreateTopics.
    #[arg(long = "topic", value_parser = parse_topic)]
    pub topics: Vec<(String, i32)>,
}

fn parse_topic(s: &str) -> std::result::Result<(String, i32), String> {
    let (name, parts) = s.split_once(':').unwrap_or((s, "1"));
    let n: i32 = parts.parse().map_err(|_| format!("bad partition count in {s:?}"))?;
    if name.is_empty() || n < 1 {
        return Err(format!("expected name:partitions, got {s:?}"));
    }
    Ok((name.to_string(), n))
}

pub fn run(args: MockArgs) -> Result<bool> {
    let cluster = MockCluster::new(1).context("starting librdkafka mock cluster")?;
    for (name, parts) in &args.topics {
        cluster.create_topic(name, *parts, 1).with_context(|| format!("creating mock topic {name}"))?;
    }
    println!("bootstrap={}", cluster.bootstrap_servers());
    let end = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(true)
}
