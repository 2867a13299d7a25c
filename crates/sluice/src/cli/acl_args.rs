//! `sluice acl` arguments, in the words of Kafka's `kafka-acls.sh`.

use super::args::Output;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACL bindings: every principal × host × operation × resource given (kafka-acls --add).
    Add {
        #[command(flatten)]
        spec: AclSpec,
        #[command(flatten)]
        target: AclTarget,
    },
    /// List bindings, all or those of the resources, principals and operations given (kafka-acls --list).
    List {
        #[command(flatten)]
        spec: AclSpec,
        #[command(flatten)]
        target: AclTarget,
        #[command(flatten)]
        out: Output,
    },
    /// Delete the bindings of the resources given, narrowed by principal, host and operation (kafka-acls --remove).
    Delete {
        #[command(flatten)]
        spec: AclSpec,
        #[command(flatten)]
        target: AclTarget,
    },
}

/// Which bindings: kafka-acls.sh's flags.
#[derive(Debug, Args, Clone, Default)]
pub struct AclSpec {
    /// Principal allowed, e.g. User:alice (repeatable; User:* for everyone).
    #[arg(long = "allow-principal", value_name = "TYPE:NAME")]
    pub allow_principals: Vec<String>,
    /// Principal denied (repeatable).
    #[arg(long = "deny-principal", value_name = "TYPE:NAME")]
    pub deny_principals: Vec<String>,
    /// Hosts the allow bindings apply from [default: *].
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Hosts the deny bindings apply from [default: *].
    #[arg(long = "deny-host", value_name = "HOST")]
    pub deny_hosts: Vec<String>,
    /// Principal to list the bindings of (list only).
    #[arg(long, value_name = "TYPE:NAME")]
    pub principal: Option<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, All (repeatable) [default: All to add, any to list or delete].
    #[arg(long = "operation", value_name = "OPERATION")]
    pub operations: Vec<String>,
    /// Topic resource (repeatable; * for every topic).
    #[arg(long, value_name = "NAME")]
    pub topic: Vec<String>,
    /// Consumer group resource (repeatable).
    #[arg(long, value_name = "NAME")]
    pub group: Vec<String>,
    /// Transactional id resource (repeatable).
    #[arg(long = "transactional-id", value_name = "NAME")]
    pub transactional_id: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    pub cluster: bool,
    /// literal or prefixed; to list or delete also any or match [default: literal; any to list everything].
    #[arg(long = "resource-pattern-type", value_name = "TYPE")]
    pub pattern_type: Option<String>,
}

/// Where `sluice acl` acts: a running broker's Kafka listener (as a principal allowed to
/// manage ACLs), or a stopped broker's data directory.
#[derive(Debug, Args, Clone)]
pub struct AclTarget {
    /// Broker Kafka listener (PLAINTEXT or SASL_PLAINTEXT with --sasl-user).
    #[arg(long = "bootstrap", env = "SLUICE_BOOTSTRAP", value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Log in with SASL PLAIN as this user (password from SLUICE_SASL_PASSWORD).
    #[arg(long = "sasl-user", env = "SLUICE_SASL_USER", value_name = "NAME")]
    pub sasl_user: Option<String>,
    /// Edit this stopped broker's data directory instead of asking a running broker.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}
