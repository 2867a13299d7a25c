//! sluice-bench: throughput and latency figures against any Kafka-compatible
//! broker, through librdkafka (what most Kafka clients are built on).
//!
//! Every run is bounded (message count or seconds, plus `--timeout-s`), prints
//! human-readable lines and then one final line of JSON for scripts.

mod common;
mod consume;
mod latency;
mod mock;
mod produce;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "sluice-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Produce N messages as fast as possible; throughput and delivery latency.
    Produce(produce::ProduceArgs),
    /// Read N messages from the beginning of every partition; throughput.
    Consume(consume::ConsumeArgs),
    /// Produce at a fixed rate while consuming; end-to-end latency.
    Latency(latency::LatencyArgs),
    /// Run a librdkafka mock cluster (to test this tool without a broker).
    Mock(mock::MockArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Produce(a) => produce::run(a),
        Cmd::Consume(a) => consume::run(a),
        Cmd::Latency(a) => latency::run(a),
        Cmd::Mock(a) => mock::run(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // Figures were printed, but the run was incomplete (timeout, errors).
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sluice-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
