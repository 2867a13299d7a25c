//! The operator command line: `sluice topic|group|channel|cluster` talk to the admin JSON API over
//! HTTP (docs/admin-api.md), `sluice produce|consume|bench` speak the Kafka protocol like any
//! Kafka client. Every failure becomes one line `sluice: <message>` and exit status 1.

mod acl;
mod acl_args;
mod args;
mod bench;
mod channel;
mod cluster;
mod consume;
mod group;
mod http_client;
mod kafka_client;
mod net;
mod produce;
mod progress;
mod reassign;
mod record_json;
mod table;
mod topic;
mod user;

pub use acl_args::AclCommand;
pub use args::{
    BenchCommand, ChannelCommand, ClusterCommand, ConsumeArgs, GroupCommand, ProduceArgs, TopicCommand, UserCommand,
};

use clap_complete::Shell;
use std::process::ExitCode;

/// A client subcommand, parsed; `main` keeps `serve` and completions to itself.
pub enum ClientCommand {
    Topic(TopicCommand),
    Group(GroupCommand),
    Channel(ChannelCommand),
    Cluster(ClusterCommand),
    Produce(ProduceArgs),
    Consume(ConsumeArgs),
    Bench(BenchCommand),
    User(UserCommand),
    Acl(AclCommand),
}

/// Runs one client subcommand and turns its outcome into the process exit status.
pub fn run(command: ClientCommand) -> ExitCode {
    let outcome = match command {
        ClientCommand::Topic(c) => topic::run(c),
        ClientCommand::Group(c) => group::run(c),
        ClientCommand::Channel(c) => channel::run(c),
        ClientCommand::Cluster(c) => cluster::run(c),
        ClientCommand::Produce(a) => produce::run(a),
        ClientCommand::Consume(a) => consume::run(a),
        ClientCommand::Bench(c) => bench::run(c),
        ClientCommand::User(c) => user::run(c),
        ClientCommand::Acl(c) => acl::run(c),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins the context chain on one line: "cannot reach …: connection refused".
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the completion script for `shell` to stdout.
pub fn print_completions(shell: Shell, command: &mut clap::Command) -> ExitCode {
    let name = command.get_name().to_string();
    clap_complete::generate(shell, command, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}
