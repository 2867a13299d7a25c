//! `sluice`: one binary that is a Kafka-compatible broker over a durable log, and the
//! operator command line for it (`sluice topic|group|channel|produce|consume|bench`).

mod admin_auth;
mod cli;
mod cluster;
mod data_lock;
mod logging;
mod serve;
mod settings;

use clap::{CommandFactory as _, Parser, Subcommand};
use settings::{ServeArgs, Settings};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "A durable message broker that speaks Kafka",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, `sluice` serves with these flags.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (the default). Boxed: its flags dwarf the other variants.
    Serve(Box<ServeArgs>),
    /// Manage topics (admin API at --http).
    #[command(subcommand)]
    Topic(cli::TopicCommand),
    /// Inspect and manage Kafka consumer groups (admin API at --http).
    #[command(subcommand)]
    Group(cli::GroupCommand),
    /// Inspect and manage NSQ channels (admin API at --http).
    #[command(subcommand)]
    Channel(cli::ChannelCommand),
    /// Show the cluster's nodes, partition replicas and their replication (admin API at --http).
    #[command(subcommand)]
    Cluster(cli::ClusterCommand),
    /// Send messages, one per line, from stdin or a file (Kafka protocol at --bootstrap).
    Produce(cli::ProduceArgs),
    /// Print messages of a topic (Kafka protocol at --bootstrap).
    Consume(cli::ConsumeArgs),
    /// Measure produce or consume throughput and latency (Kafka protocol at --bootstrap).
    #[command(subcommand)]
    Bench(cli::BenchCommand),
    /// Manage SASL users (SCRAM credentials; Kafka protocol at --bootstrap, or --data-dir).
    #[command(subcommand)]
    User(cli::UserCommand),
    /// Manage Kafka ACLs (kafka-acls.sh's flags; Kafka protocol at --bootstrap, or --data-dir).
    #[command(subcommand)]
    Acl(cli::AclCommand),
    /// Print a shell completion script: sluice completions bash > /etc/bash_completion.d/sluice
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Exit status of a usage error (unknown flag, missing or malformed argument), as clap and
/// most Unix tools use; other failures exit 1.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // First of all: glibc fixes its arena limit when a second thread first allocates
    // (BENCHMARKS.md, "NSQ memory after consuming").
    sluice_broker::channel::limit_allocator_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let client = match cli.command {
        None => return serve(cli.serve),
        Some(Command::Serve(args)) => return serve(*args),
        Some(Command::Completions { shell }) => return cli::print_completions(shell, &mut Cli::command()),
        Some(Command::Topic(c)) => cli::ClientCommand::Topic(c),
        Some(Command::Group(c)) => cli::ClientCommand::Group(c),
        Some(Command::Channel(c)) => cli::ClientCommand::Channel(c),
        Some(Command::Cluster(c)) => cli::ClientCommand::Cluster(c),
        Some(Command::Produce(a)) => cli::ClientCommand::Produce(a),
        Some(Command::Consume(a)) => cli::ClientCommand::Consume(a),
        Some(Command::Bench(c)) => cli::ClientCommand::Bench(c),
        Some(Command::User(c)) => cli::ClientCommand::User(c),
        Some(Command::Acl(c)) => cli::ClientCommand::Acl(c),
    };
    cli::run(client)
}

/// `--help` and `--version` print as clap prints them (exit 0); any other parse error is one
/// line `sluice: <clap's first line> (see --help)`, exit status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let message = match e.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let usage = rendered.lines().find_map(|l| l.trim().strip_prefix("Usage: ")).unwrap_or("sluice <COMMAND>");
            format!("a subcommand is required: {usage}")
        }
        // clap's first paragraph is the error itself, sometimes over several lines
        // ("the following required arguments were not provided:" then each argument).
        _ => {
            let paragraph: Vec<&str> =
                rendered.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
            let text = paragraph.join(" ");
            text.strip_prefix("error: ").unwrap_or(&text).to_string()
        }
    };
    eprintln!("sluice: {message} (see --help)");
    ExitCode::from(EXIT_USAGE)
}

/// Runs the broker until it is told to stop.
fn serve(args: ServeArgs) -> ExitCode {
    let settings = match Settings::resolve(&args) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    logging::init(settings.log_format, &settings.log_level);
    // Before anything reads or recovers the data directory; held until the process exits.
    let lock = match data_lock::DataDirLock::acquire(&settings.broker.data_dir) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::debug!(lock = %lock.path().display(), "data directory locked");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(serve::run(settings));
    // The lock goes last, once nothing of this process can touch the data directory.
    drop(runtime);
    drop(lock);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
