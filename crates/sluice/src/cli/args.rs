//! Flags of the client subcommands. Management commands take `--http` (the admin API),
//! data commands take `--bootstrap` (the Kafka listener); both read an environment variable
//! so a shell can point every command at one broker once.

use clap::{Args, Subcommand};

/// Where the admin JSON API listens.
#[derive(Debug, Args, Clone)]
pub struct HttpTarget {
    /// Broker HTTP listener (admin API); with --http-auth on the broker, log in as
    /// SLUICE_HTTP_USER with SLUICE_HTTP_PASSWORD.
    #[arg(long = "http", env = "SLUICE_HTTP", value_name = "HOST:PORT", default_value = "127.0.0.1:4151")]
    pub addr: String,
}

/// Where the Kafka listener is.
#[derive(Debug, Args, Clone)]
pub struct KafkaTarget {
    /// Broker Kafka listener.
    #[arg(long = "bootstrap", env = "SLUICE_BOOTSTRAP", value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub addr: String,
}

/// `--json`: machine-readable output instead of tables.
#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// List topics with their partitions, messages and size.
    List {
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Create a topic.
    Create {
        name: String,
        /// Partition count [default: the broker's default].
        #[arg(long, value_name = "N")]
        partitions: Option<u32>,
        /// A topic config override, e.g. retention.ms=3600000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Show a topic's partitions and effective config.
    Describe {
        name: String,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Change config overrides or grow the partition count.
    Alter {
        name: String,
        /// New total partition count (only grows).
        #[arg(long, value_name = "N")]
        partitions: Option<u32>,
        /// Set a config override (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove a config override, back to the broker default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a topic and all its data.
    Delete {
        name: String,
        #[command(flatten)]
        http: HttpTarget,
    },
    /// Move a partition to other nodes (a cluster; the data moves in the background).
    Reassign {
        name: String,
        #[arg(long, value_name = "N")]
        partition: i32,
        /// The new replicas, the preferred leader first, e.g. 2,3,4.
        #[arg(long, value_name = "IDS", value_delimiter = ',', required_unless_present = "cancel")]
        replicas: Vec<i32>,
        /// Cancel the partition's move under way instead.
        #[arg(long, conflicts_with = "replicas")]
        cancel: bool,
        #[command(flatten)]
        http: HttpTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show the nodes, this node's partition replicas (leader, replicas, ISR, follower lag)
    /// and the under-replicated partitions.
    Status {
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// List the partition moves under way.
    Reassignments {
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Move replicas of existing partitions onto a node that joined (started with --join)
    /// until it holds about as many as the others.
    AddNode {
        #[arg(value_name = "ID")]
        node: i32,
        #[command(flatten)]
        http: HttpTarget,
    },
    /// Move leadership off a node (other in-sync replicas are elected), e.g. before a
    /// restart; a node stopped with SIGTERM does it by itself.
    Drain {
        #[arg(value_name = "ID")]
        node: i32,
        #[command(flatten)]
        http: HttpTarget,
    },
    /// Move every replica off a node, then remove it from the cluster (stop it afterwards).
    RemoveNode {
        #[arg(value_name = "ID")]
        node: i32,
        #[command(flatten)]
        http: HttpTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups with state, members and total lag.
    List {
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Show a group's members and committed offsets with lag.
    Describe {
        group: String,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Move a group's committed offsets (the group must have no members).
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        /// Only these partitions (repeatable) [default: all].
        #[arg(long = "partition", value_name = "N")]
        partitions: Vec<i32>,
        /// earliest | latest | offset:N | timestamp:MS
        #[arg(long, value_name = "POSITION")]
        to: String,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a group and its committed offsets (the group must have no members).
    Delete {
        group: String,
        #[command(flatten)]
        http: HttpTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// List NSQ topics and their channels with depth and in-flight counts.
    List {
        /// Only this topic's channels.
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        http: HttpTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Stop delivering a channel's messages to its subscribers.
    Pause(ChannelTarget),
    /// Resume delivery on a paused channel.
    Unpause(ChannelTarget),
    /// Drop every message the channel has not yet finished.
    Empty(ChannelTarget),
}

#[derive(Debug, Args)]
pub struct ChannelTarget {
    pub topic: String,
    pub channel: String,
    #[command(flatten)]
    pub http: HttpTarget,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Read messages from this file instead of stdin (one message per line).
    #[arg(long, value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Key of every message.
    #[arg(long, conflicts_with = "key_separator")]
    pub key: Option<String>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header on every message, KEY=VALUE (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Partition to write to [default: hash of the key as Kafka's Java client, else round robin].
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgement: all (-1), 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Most messages sent in one produce request.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub batch: usize,
    #[command(flatten)]
    pub kafka: KafkaTarget,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Only this partition [default: all].
    #[arg(long)]
    pub partition: Option<i32>,
    /// beginning | end | offset:N | timestamp:MS (first record at or after). An offset outside
    /// the log starts at its nearest end. With --group this applies only to partitions where
    /// the group has no committed offset.
    #[arg(long, value_name = "POSITION", default_value = "beginning")]
    pub from: String,
    /// Keep waiting for new messages (until Ctrl-C, --max-messages or --timeout).
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Stop after this long, e.g. 10s, 500ms, 2m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Consume as this group: start from its committed offsets and commit what was printed
    /// (a standalone consumer, as Kafka's assign() + commitSync(); no group membership).
    #[arg(long)]
    pub group: Option<String>,
    #[command(flatten)]
    pub kafka: KafkaTarget,
    /// One JSON object per message (partition, offset, timestamp, key, headers, value).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce load: messages/s, MB/s and acknowledgement latency percentiles.
    Produce(BenchProduceArgs),
    /// Consume load: read a topic from its beginning, messages/s and MB/s.
    Consume(BenchConsumeArgs),
}

/// Bounds shared by both bench directions: whichever is reached first ends the run.
#[derive(Debug, Args, Clone)]
pub struct BenchBounds {
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,
    /// Messages to send or read.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub messages: u64,
    /// Stop after this long even if --messages is not reached, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchProduceArgs {
    #[command(flatten)]
    pub bounds: BenchBounds,
    /// Bytes per message value.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub size: usize,
    /// Messages per produce request.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub batch: usize,
    /// Concurrent producer connections.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub connections: usize,
    /// Acknowledgement: all (-1) or 1.
    #[arg(long, default_value = "all")]
    pub acks: String,
    #[command(flatten)]
    pub kafka: KafkaTarget,
    #[command(flatten)]
    pub out: Output,
}

#[derive(Debug, Args)]
pub struct BenchConsumeArgs {
    #[command(flatten)]
    pub bounds: BenchBounds,
    #[command(flatten)]
    pub kafka: KafkaTarget,
    #[command(flatten)]
    pub out: Output,
}

/// Where `sluice user` acts: a running broker's Kafka listener, or a stopped broker's data
/// directory.
#[derive(Debug, Args, Clone)]
pub struct UserTarget {
    /// Broker Kafka listener (PLAINTEXT, or SASL_PLAINTEXT with --sasl-user).
    #[arg(long = "bootstrap", env = "SLUICE_BOOTSTRAP", value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Log in with SASL PLAIN as this user (password from SLUICE_SASL_PASSWORD).
    #[arg(long = "sasl-user", env = "SLUICE_SASL_USER", value_name = "NAME")]
    pub sasl_user: Option<String>,
    /// Edit this stopped broker's data directory instead of asking a running broker.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user or change its password (SCRAM credentials, also used for PLAIN logins).
    Add {
        name: String,
        /// Read the password from this file's first line [default: SLUICE_USER_PASSWORD, else stdin].
        #[arg(long, value_name = "FILE")]
        password_file: Option<std::path::PathBuf>,
        /// Only this mechanism: SCRAM-SHA-256 or SCRAM-SHA-512 [default: both].
        #[arg(long, value_name = "MECHANISM")]
        mechanism: Option<String>,
        /// PBKDF2 iterations, 4096 to 16384 [default: 4096].
        #[arg(long, value_name = "N")]
        iterations: Option<u32>,
        #[command(flatten)]
        target: UserTarget,
    },
    /// List users and their mechanisms (no secrets).
    List {
        #[command(flatten)]
        target: UserTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a user's credentials.
    Delete {
        name: String,
        #[command(flatten)]
        target: UserTarget,
    },
}
