//! Settings of `sluice serve`, resolved in rising priority from embedded defaults, a
//! TOML file (`--config`), `SLUICE_*` environment variables, and flags.

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use serde::Deserialize;
use sluice_broker::{BrokerConfig, FlushPolicy, LogConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod cluster;
pub mod http_auth;
pub mod limits;
pub mod mqtt;
pub mod nsq_security;
pub mod security;

/// Most bytes the batch of one NSQ message adds around its body: the v2 batch header (61),
/// the record's length varint (5), attributes, timestamp delta and offset delta (1 each, one
/// record), a null key (1), the value length varint (5), the header count (1), and DPUB's
/// `nsq-defer-until` header: key length (1), the key (15), value length (1) and the due time
/// as decimal text (at most 20 for an i64). A body of `max_msg_size` therefore needs a
/// `message_max_bytes` of at least `max_msg_size + NSQ_BATCH_OVERHEAD_MAX` (PUB, DPUB, and
/// MPUB of one body all become one such record).
pub const NSQ_BATCH_OVERHEAD_MAX: u32 = 61 + 5 + 3 + 1 + 5 + 1 + (1 + 15 + 1 + 20);
/// Smallest useful `message_max_bytes`: a batch header and one empty record.
const MESSAGE_MAX_BYTES_MIN: u32 = 61 + 7;
/// Kafka's `message.max.bytes`: the default unless the NSQ limit needs more.
const KAFKA_MESSAGE_MAX_BYTES: u32 = 1_048_588;
/// Largest value a Kafka size field (i32) can carry; segment positions are u32 in the index.
const I32_MAX: u64 = i32::MAX as u64;

/// `<key> = <value> is out of range (--flag, SLUICE_ENV): must be <range>`: one line naming
/// the setting as each source spells it.
pub fn out_of_range(key: &str, value: impl std::fmt::Display, range: &str) -> anyhow::Error {
    let flag = key.replace('_', "-");
    let env = key.to_uppercase();
    anyhow!("{key} = {value} is out of range (--{flag}, SLUICE_{env}): must be {range}")
}

/// Refuses `value` outside `min..=max`.
pub(crate) fn check_range(key: &str, value: i128, min: i128, max: i128) -> anyhow::Result<()> {
    if value < min || value > max {
        return Err(out_of_range(key, value, &format!("{min} to {max}")));
    }
    Ok(())
}

/// Flags of `sluice serve`. Every one is optional: an absent flag falls back to its
/// environment variable (clap), then to the TOML file, then to the default.
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// TOML file with settings (keys as the flags, with underscores: data_dir = "...").
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding all state [default: ./data].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener address [default: 127.0.0.1:9092].
    #[arg(long, env = "SLUICE_KAFKA_ADDR", value_name = "HOST:PORT")]
    pub kafka_addr: Option<String>,
    /// Host name Metadata tells clients to connect to [default: the listener's host].
    #[arg(long, env = "SLUICE_ADVERTISED_HOST", value_name = "HOST")]
    pub advertised_host: Option<String>,
    /// Create unknown topics on Metadata and Produce [default: true].
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS", value_name = "BOOL")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics [default: 1].
    #[arg(long, env = "SLUICE_DEFAULT_PARTITIONS", value_name = "N")]
    pub default_partitions: Option<u32>,
    /// When appended data is fsynced: always | interval:MS | os [default: always].
    #[arg(long, env = "SLUICE_FLUSH", value_name = "POLICY")]
    pub flush: Option<String>,
    /// Largest record batch accepted, bytes (Kafka message.max.bytes); at least 113 bytes more
    /// than --max-msg-size, so one NSQ message fits [default: 1048588 or --max-msg-size + 113].
    #[arg(long, env = "SLUICE_MESSAGE_MAX_BYTES", value_name = "BYTES")]
    pub message_max_bytes: Option<u32>,
    /// Segment size before rolling, bytes [default: 1073741824].
    #[arg(long, env = "SLUICE_SEGMENT_BYTES", value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Delete segments older than this, ms; -1 keeps forever [default: 604800000].
    #[arg(long, env = "SLUICE_RETENTION_MS", value_name = "MS", allow_hyphen_values = true)]
    pub retention_ms: Option<i64>,
    /// Delete oldest segments while a partition is larger, bytes; -1 = no limit [default: -1].
    #[arg(long, env = "SLUICE_RETENTION_BYTES", value_name = "BYTES", allow_hyphen_values = true)]
    pub retention_bytes: Option<i64>,
    /// Committed offsets of an empty consumer group expire after this, ms [default: 604800000].
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MS", value_name = "MS")]
    pub offsets_retention_ms: Option<u64>,
    /// A new consumer group's first rebalance waits this long, and again while members keep
    /// joining, ms (Kafka group.initial.rebalance.delay.ms; 0 = none) [default: 3000].
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS", value_name = "MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// In a cluster: partitions of the internal `__consumer_offsets` topic, fixed when it is
    /// created (Kafka offsets.topic.num.partitions) [default: 8].
    #[arg(long, env = "SLUICE_OFFSETS_TOPIC_PARTITIONS", value_name = "COUNT")]
    pub offsets_topic_partitions: Option<u32>,
    /// A durable NSQ channel holds back retention of what it has not finished while the
    /// partition is at most this large, bytes [default: 10737418240].
    #[arg(long, env = "SLUICE_RETENTION_HOLD_BYTES", value_name = "BYTES")]
    pub retention_hold_bytes: Option<u64>,
    /// Log format: human | json [default: human].
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or sluice_kafka=debug [default: info].
    #[arg(long, env = "SLUICE_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// NSQ TCP (protocol V2) listener address [default: 127.0.0.1:4150]. The last one given wins.
    #[arg(long, env = "SLUICE_NSQ_TCP_ADDR", value_name = "HOST:PORT", overrides_with = "nsq_tcp_addr")]
    pub nsq_tcp_addr: Option<String>,
    /// HTTP listener (nsqd and nsqlookupd APIs) [default: 127.0.0.1:4151].
    #[arg(long, env = "SLUICE_HTTP_ADDR", value_name = "HOST:PORT", overrides_with = "http_addr")]
    pub http_addr: Option<String>,
    /// Also serve the nsqlookupd API on this address, e.g. 127.0.0.1:4161 [default: off].
    #[arg(long, env = "SLUICE_LOOKUPD_HTTP_ADDR", value_name = "HOST:PORT", overrides_with = "lookupd_http_addr")]
    pub lookupd_http_addr: Option<String>,
    /// An nsqlookupd TCP address to register with, as nsqd's flag; repeat it or separate
    /// addresses with commas [default: none].
    #[arg(
        long = "lookupd-tcp-address",
        env = "SLUICE_LOOKUPD_TCP_ADDRESS",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub lookupd_tcp_address: Vec<String>,
    /// Host NSQ clients are told to connect to (lookupd) [default: the NSQ listener's host].
    #[arg(long, env = "SLUICE_BROADCAST_ADDRESS", value_name = "HOST")]
    pub broadcast_address: Option<String>,
    /// Largest NSQ message body, bytes [default: 1048576].
    #[arg(long, env = "SLUICE_MAX_MSG_SIZE", value_name = "BYTES")]
    pub max_msg_size: Option<u32>,
    /// Largest NSQ MPUB/IDENTIFY body, bytes [default: 5242880].
    #[arg(long, env = "SLUICE_MAX_BODY_SIZE", value_name = "BYTES")]
    pub max_body_size: Option<u32>,
    /// NSQ in-flight timeout before redelivery: 60s, 500ms, 2m or plain ms [default: 60s].
    #[arg(long, env = "SLUICE_MSG_TIMEOUT", value_name = "DURATION")]
    pub msg_timeout: Option<String>,
    /// Largest NSQ RDY count [default: 2500].
    #[arg(long, env = "SLUICE_MAX_RDY_COUNT", value_name = "N")]
    pub max_rdy_count: Option<i64>,
    /// Partitions refused for lost data (a hole, or a log below its recovery point) to
    /// accept as they are at this start, e.g. orders-3,payments (a topic alone: all of its
    /// partitions). Flag only: it is a one-off decision, not a standing setting.
    #[arg(long, value_name = "TOPIC-N,...", value_delimiter = ',')]
    pub accept_data_loss_partitions: Vec<String>,
    #[command(flatten)]
    pub limits: limits::LimitArgs,
    #[command(flatten)]
    pub cluster: cluster::ClusterArgs,
    #[command(flatten)]
    pub mqtt: mqtt::MqttArgs,
    #[command(flatten)]
    pub security: security::SecurityArgs,
    #[command(flatten)]
    pub nsq_security: nsq_security::NsqSecurityArgs,
    #[command(flatten)]
    pub http_auth: http_auth::HttpAuthArgs,
}

/// The TOML file: the same keys as the flags.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    kafka_addr: Option<String>,
    advertised_host: Option<String>,
    auto_create_topics: Option<bool>,
    default_partitions: Option<u32>,
    flush: Option<String>,
    message_max_bytes: Option<u32>,
    segment_bytes: Option<u64>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
    offsets_retention_ms: Option<u64>,
    group_initial_rebalance_delay_ms: Option<u64>,
    offsets_topic_partitions: Option<u32>,
    retention_hold_bytes: Option<u64>,
    log_format: Option<String>,
    log_level: Option<String>,
    nsq_tcp_addr: Option<String>,
    http_addr: Option<String>,
    lookupd_http_addr: Option<String>,
    lookupd_tcp_addresses: Option<Vec<String>>,
    broadcast_address: Option<String>,
    max_msg_size: Option<u32>,
    max_body_size: Option<u32>,
    msg_timeout: Option<String>,
    max_rdy_count: Option<i64>,
    // Resource limits (`limits.rs`); serde cannot flatten under `deny_unknown_fields`.
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    socket_request_max_bytes: Option<usize>,
    max_inflight_request_bytes: Option<usize>,
    connections_max_idle_ms: Option<u64>,
    socket_write_timeout_ms: Option<u64>,
    max_topics: Option<usize>,
    max_partitions_per_topic: Option<u32>,
    queued_max_request_bytes: Option<usize>,
    producer_id_expiration_ms: Option<u64>,
    http_max_connections: Option<usize>,
    http_idle_timeout_ms: Option<u64>,
    // Cluster settings (`cluster.rs`).
    node_id: Option<u32>,
    cluster_addr: Option<String>,
    cluster_peers: Option<String>,
    join: Option<String>,
    default_replication_factor: Option<u16>,
    raft_heartbeat_ms: Option<u64>,
    raft_election_timeout_ms: Option<u64>,
    replica_lag_time_max_ms: Option<u64>,
    cluster_tls_cert: Option<PathBuf>,
    cluster_tls_key: Option<PathBuf>,
    cluster_tls_ca: Option<PathBuf>,
    // MQTT listener (`mqtt.rs`).
    mqtt_addr: Option<String>,
    mqtt_ws_addr: Option<String>,
    mqtt_tls_addr: Option<String>,
    mqtt_wss_addr: Option<String>,
    mqtt_max_packet_bytes: Option<usize>,
    /// `[[mqtt.mapping]]` rules.
    mqtt: Option<mqtt::MqttTable>,
    // Kafka listeners and TLS (`security.rs`).
    kafka_listeners: Option<Vec<String>>,
    ssl_cert: Option<PathBuf>,
    ssl_key: Option<PathBuf>,
    ssl_client_ca: Option<PathBuf>,
    ssl_client_auth: Option<String>,
    ssl_min_version: Option<String>,
    authorizer: Option<String>,
    super_users: Option<String>,
    allow_everyone_if_no_acl_found: Option<bool>,
    connections_max_reauth_ms: Option<u64>,
    // NSQ TLS and AUTH (`nsq_security.rs`).
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_root_ca_file: Option<PathBuf>,
    tls_required: Option<String>,
    tls_client_auth_policy: Option<String>,
    tls_min_version: Option<String>,
    https_address: Option<String>,
    auth_http_addresses: Option<Vec<String>>,
    auth_http_request_method: Option<String>,
    nsq_auth_tokens_file: Option<PathBuf>,
    // The admin API's and console's authentication (`http_auth.rs`).
    http_auth: Option<bool>,
    http_auth_metrics: Option<bool>,
    http_auth_nsqd_admin: Option<bool>,
}

impl FileSettings {
    fn security(&self) -> security::SecurityFileArgs {
        security::SecurityFileArgs {
            kafka_listeners: self.kafka_listeners.clone(),
            ssl_cert: self.ssl_cert.clone(),
            ssl_key: self.ssl_key.clone(),
            ssl_client_ca: self.ssl_client_ca.clone(),
            ssl_client_auth: self.ssl_client_auth.clone(),
            ssl_min_version: self.ssl_min_version.clone(),
            authorizer: self.authorizer.clone(),
            super_users: self.super_users.clone(),
            allow_everyone_if_no_acl_found: self.allow_everyone_if_no_acl_found,
            connections_max_reauth_ms: self.connections_max_reauth_ms,
        }
    }

    fn http_auth(&self) -> http_auth::HttpAuthArgs {
        http_auth::HttpAuthArgs {
            http_auth: self.http_auth,
            http_auth_metrics: self.http_auth_metrics,
            http_auth_nsqd_admin: self.http_auth_nsqd_admin,
        }
    }

    fn nsq_security(&self) -> nsq_security::NsqSecurityFile {
        nsq_security::NsqSecurityFile {
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_root_ca_file: self.tls_root_ca_file.clone(),
            tls_required: self.tls_required.clone(),
            tls_client_auth_policy: self.tls_client_auth_policy.clone(),
            tls_min_version: self.tls_min_version.clone(),
            https_address: self.https_address.clone(),
            auth_http_addresses: self.auth_http_addresses.clone(),
            auth_http_request_method: self.auth_http_request_method.clone(),
            nsq_auth_tokens_file: self.nsq_auth_tokens_file.clone(),
        }
    }

    fn cluster(&self) -> cluster::ClusterFileArgs {
        cluster::ClusterFileArgs {
            node_id: self.node_id,
            cluster_addr: self.cluster_addr.clone(),
            cluster_peers: self.cluster_peers.clone(),
            join: self.join.clone(),
            default_replication_factor: self.default_replication_factor,
            raft_heartbeat_ms: self.raft_heartbeat_ms,
            raft_election_timeout_ms: self.raft_election_timeout_ms,
            replica_lag_time_max_ms: self.replica_lag_time_max_ms,
            cluster_tls_cert: self.cluster_tls_cert.clone(),
            cluster_tls_key: self.cluster_tls_key.clone(),
            cluster_tls_ca: self.cluster_tls_ca.clone(),
        }
    }

    fn mqtt(&self) -> mqtt::MqttArgs {
        mqtt::MqttArgs {
            mqtt_addr: self.mqtt_addr.clone(),
            mqtt_ws_addr: self.mqtt_ws_addr.clone(),
            mqtt_tls_addr: self.mqtt_tls_addr.clone(),
            mqtt_wss_addr: self.mqtt_wss_addr.clone(),
            mqtt_mapping: self.mqtt.as_ref().map(|t| t.mapping_flags()).unwrap_or_default(),
            mqtt_max_packet_bytes: self.mqtt_max_packet_bytes,
        }
    }

    fn limits(&self) -> limits::LimitArgs {
        limits::LimitArgs {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            socket_request_max_bytes: self.socket_request_max_bytes,
            max_inflight_request_bytes: self.max_inflight_request_bytes,
            connections_max_idle_ms: self.connections_max_idle_ms,
            socket_write_timeout_ms: self.socket_write_timeout_ms,
            max_topics: self.max_topics,
            max_partitions_per_topic: self.max_partitions_per_topic,
            queued_max_request_bytes: self.queued_max_request_bytes,
            producer_id_expiration_ms: self.producer_id_expiration_ms,
            http_max_connections: self.http_max_connections,
            http_idle_timeout_ms: self.http_idle_timeout_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub broker: BrokerConfig,
    /// None on a single node.
    pub cluster: Option<cluster::ClusterSettings>,
    /// The first Kafka listener's address (the node's main one).
    pub kafka_addr: SocketAddr,
    /// Every Kafka listener, the first at `kafka_addr`.
    pub kafka_listeners: Vec<security::KafkaListenerSettings>,
    /// Certificates of the SSL and SASL_SSL listeners (None when there are none).
    pub kafka_tls: Option<sluice_tls::TlsFiles>,
    /// The Kafka ACL authorizer (None: every principal may do everything).
    pub authorizer: Option<security::AuthorizerSettings>,
    /// How long a Kafka SASL login lasts (KIP-368); None: forever.
    pub reauth_max: Option<Duration>,
    /// `--advertised-host` as given (every listener advertises it), None to use each
    /// listener's own host.
    pub advertised_host_explicit: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub nsq: NsqSettings,
    pub mqtt: mqtt::MqttSettings,
    /// Limits of the Kafka listener (request size, in-flight bytes, idle and write timeouts).
    pub kafka: sluice_kafka::KafkaListenerConfig,
    /// Limits of the HTTP listeners (connections, idle timeout).
    pub http: sluice_http::HttpLimits,
    /// Whether the admin API and the console need a user (`--http-auth`).
    pub http_auth: http_auth::HttpAuthSettings,
    /// Idempotent producer ids unseen for this long are forgotten.
    pub producer_id_expiration: Duration,
}

/// The NSQ side: TCP and HTTP listeners and nsqd's limits.
#[derive(Debug, Clone)]
pub struct NsqSettings {
    pub tcp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub lookupd_http_addr: Option<SocketAddr>,
    /// nsqlookupd TCP listeners this node registers with (`host:port`, resolved on connect).
    pub lookupd_tcp_addresses: Vec<String>,
    pub broadcast_address: String,
    pub max_msg_size: u32,
    pub max_body_size: u32,
    pub msg_timeout: Duration,
    pub max_rdy_count: i64,
    /// TLS, HTTPS and AUTH as nsqd's flags set them.
    pub security: nsq_security::NsqSecurity,
}

impl NsqSettings {
    fn resolve(args: &ServeArgs, file: &FileSettings) -> anyhow::Result<NsqSettings> {
        let defaults = sluice_nsq::NsqConfig::default();
        let tcp_text =
            args.nsq_tcp_addr.clone().or(file.nsq_tcp_addr.clone()).unwrap_or_else(|| "127.0.0.1:4150".into());
        let tcp_addr = resolve_addr(&tcp_text)?;
        let http_text = args.http_addr.clone().or(file.http_addr.clone()).unwrap_or_else(|| "127.0.0.1:4151".into());
        let lookupd_http_addr = match args.lookupd_http_addr.clone().or(file.lookupd_http_addr.clone()) {
            Some(text) => Some(resolve_addr(&text)?),
            None => None,
        };
        let lookupd_tcp_addresses = match args.lookupd_tcp_address.is_empty() {
            true => file.lookupd_tcp_addresses.clone().unwrap_or_default(),
            false => args.lookupd_tcp_address.clone(),
        };
        for addr in &lookupd_tcp_addresses {
            let port = addr.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            if port.and_then(|p| p.parse::<u16>().ok()).is_none_or(|p| p == 0) {
                // The flag and variable are singular (nsqd's flag), the file's array plural.
                return Err(anyhow!(
                    "lookupd_tcp_addresses = {addr:?} is out of range (--lookupd-tcp-address, \
                     SLUICE_LOOKUPD_TCP_ADDRESS): must be HOST:PORT"
                ));
            }
        }
        let msg_timeout = match args.msg_timeout.clone().or(file.msg_timeout.clone()) {
            Some(text) => parse_duration(&text)?,
            None => defaults.msg_timeout,
        };
        if msg_timeout < Duration::from_millis(1) || msg_timeout > defaults.max_msg_timeout {
            let range = format!("1ms to {}ms", defaults.max_msg_timeout.as_millis());
            return Err(out_of_range("msg_timeout", format!("{}ms", msg_timeout.as_millis()), &range));
        }
        let max_rdy_count = args.max_rdy_count.or(file.max_rdy_count).unwrap_or(defaults.max_rdy_count);
        check_range("max_rdy_count", max_rdy_count.into(), 1, i64::MAX.into())?;
        let max_msg_size = args.max_msg_size.or(file.max_msg_size).unwrap_or(defaults.max_msg_size);
        let max_body_size = args.max_body_size.or(file.max_body_size).unwrap_or(defaults.max_body_size);
        // NSQ frames carry sizes as i32; the batch of one message must still fit an i32 size.
        check_range("max_body_size", max_body_size.into(), 1, (I32_MAX - u64::from(NSQ_BATCH_OVERHEAD_MAX)).into())?;
        check_range("max_msg_size", max_msg_size.into(), 1, max_body_size.into())
            .map_err(|e| anyhow!("{e:#} (max_body_size)"))?;
        let broadcast_address = args
            .broadcast_address
            .clone()
            .or(file.broadcast_address.clone())
            .unwrap_or_else(|| default_advertised_host(&tcp_addr));
        if broadcast_address.trim().is_empty() {
            return Err(out_of_range("broadcast_address", "\"\"", "a host name or address"));
        }
        Ok(NsqSettings {
            broadcast_address,
            tcp_addr,
            http_addr: resolve_addr(&http_text)?,
            lookupd_http_addr,
            lookupd_tcp_addresses,
            max_msg_size,
            max_body_size,
            msg_timeout,
            max_rdy_count,
            security: nsq_security::resolve(&args.nsq_security, &file.nsq_security())?,
        })
    }
}

/// `60s`, `500ms`, `2m`, `1h`, or a plain number of milliseconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (text, 1)
    };
    match number.parse::<u64>() {
        Ok(n) => Ok(Duration::from_millis(n.saturating_mul(unit_ms))),
        Err(_) => bail!("invalid duration '{text}' (expected e.g. 60s, 500ms, 2m)"),
    }
}

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let nsq = NsqSettings::resolve(args, &file)?;
        let mut mqtt = mqtt::resolve(&args.mqtt, &file.mqtt())?;
        let file_limits = file.limits();
        let file_security = file.security();
        let file_http_auth = file.http_auth();
        let file_cluster = file.cluster();
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(out_of_range("data_dir", "\"\"", "a directory path"));
        }
        let explicit_kafka_addr = args.kafka_addr.is_some() || file.kafka_addr.is_some();
        let kafka_addr_text = args.kafka_addr.clone().or(file.kafka_addr).unwrap_or_else(|| "127.0.0.1:9092".into());
        let (kafka_listeners, kafka_tls) =
            security::resolve(&args.security, &file_security, &kafka_addr_text, explicit_kafka_addr, mqtt.needs_tls())?;
        mqtt.tls = kafka_tls.clone().filter(|_| mqtt.needs_tls());
        let authorizer = security::resolve_authorizer(&args.security, &file_security)?;
        let reauth_max = security::resolve_reauth_max(&args.security, &file_security);
        let http_auth = http_auth::resolve(&args.http_auth, &file_http_auth)?;
        let kafka_addr = kafka_listeners.first().map(|l| l.addr).ok_or_else(|| anyhow!("no Kafka listener"))?;
        let advertised_host = args.advertised_host.clone().or(file.advertised_host);
        if advertised_host.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err(out_of_range("advertised_host", "\"\"", "a host name or address"));
        }
        let default_partitions = args.default_partitions.or(file.default_partitions).unwrap_or(1);
        check_range("default_partitions", default_partitions.into(), 1, i32::MAX.into())?;
        let flush = parse_flush(&args.flush.clone().or(file.flush).unwrap_or_else(|| "always".into()))?;
        let mut log = LogConfig { flush, ..LogConfig::default() };
        log.batch_bytes_max = message_max_bytes(args.message_max_bytes.or(file.message_max_bytes), nsq.max_msg_size)?;
        if let Some(bytes) = args.segment_bytes.or(file.segment_bytes) {
            // Index positions are u32 and Kafka's segment.bytes is an int.
            check_range("segment_bytes", bytes.into(), 1024, I32_MAX.into())?;
            log.segment_bytes_max = bytes;
        }
        if let Some(ms) = args.retention_ms.or(file.retention_ms) {
            // Kafka's convention: -1 keeps forever; 0 deletes every closed segment at once.
            check_range("retention_ms", ms.into(), -1, i64::MAX.into())?;
            log.retention_age_max = u64::try_from(ms).ok().map(Duration::from_millis);
        }
        if let Some(bytes) = args.retention_bytes.or(file.retention_bytes) {
            check_range("retention_bytes", bytes.into(), -1, i64::MAX.into())?;
            log.retention_bytes_max = u64::try_from(bytes).ok();
        }
        let log_format = match args.log_format.clone().or(file.log_format).as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => return Err(out_of_range("log_format", other, "human or json")),
        };
        let log_level = args.log_level.clone().or(file.log_level).unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(out_of_range("log_level", &log_level, "a log filter such as info or sluice_kafka=debug"));
        }
        let mut broker = BrokerConfig::new(data_dir);
        broker.auto_create_topics = args.auto_create_topics.or(file.auto_create_topics).unwrap_or(true);
        broker.default_partitions = default_partitions;
        broker.accept_data_loss_partitions = args.accept_data_loss_partitions.clone();
        broker.log_defaults = log;
        if let Some(bytes) = args.retention_hold_bytes.or(file.retention_hold_bytes) {
            broker.retention_hold_bytes_max = bytes;
        }
        if let Some(ms) = args.offsets_retention_ms.or(file.offsets_retention_ms) {
            // Kafka's offsets.retention.minutes is at least 1; 0 would drop commits at once.
            check_range("offsets_retention_ms", ms.into(), 1, i64::MAX.into())?;
            broker.groups.offsets_retention = Duration::from_millis(ms);
        }
        if let Some(ms) = args.group_initial_rebalance_delay_ms.or(file.group_initial_rebalance_delay_ms) {
            // Kafka's setting is an int of ms, 0 and up.
            check_range("group_initial_rebalance_delay_ms", ms.into(), 0, i32::MAX.into())?;
            broker.groups.initial_rebalance_delay = Duration::from_millis(ms);
        }
        if let Some(count) = args.offsets_topic_partitions.or(file.offsets_topic_partitions) {
            // Each partition is a Raft group on every replica: a thousand is far past useful.
            check_range("offsets_topic_partitions", count.into(), 1, 1_000)?;
            broker.groups.offsets_topic_partitions = count;
        }
        broker.advertised_port = kafka_addr.port();
        let advertised_host_explicit = advertised_host.clone();
        broker.advertised_host = advertised_host.unwrap_or_else(|| default_advertised_host(&kafka_addr));
        let kafka = limits::resolve(&args.limits, &file_limits, &mut broker)?;
        let (http, producer_id_expiration) = limits::resolve_network(&args.limits, &file_limits)?;
        let cluster = cluster::resolve(&args.cluster, &file_cluster)?;
        if let Some(c) = &cluster {
            broker.node_id =
                i32::try_from(c.node_id).map_err(|_| out_of_range("node_id", c.node_id, "0 to 2147483647"))?;
        }
        Ok(Settings {
            http,
            http_auth,
            producer_id_expiration,
            broker,
            kafka_addr,
            kafka_listeners,
            kafka_tls,
            authorizer,
            reauth_max,
            advertised_host_explicit,
            log_format,
            log_level,
            nsq,
            mqtt,
            kafka,
            cluster,
        })
    }
}

impl Settings {
    /// Every effective setting by its flag name (underscores), as text: what `/api/node`
    /// shows, so an operator sees what the flags, environment, file and defaults added up to.
    pub fn effective(&self) -> std::collections::BTreeMap<String, String> {
        let (b, log, nsq) = (&self.broker, &self.broker.log_defaults, &self.nsq);
        let or_unlimited = |v: Option<u64>| v.map_or_else(|| "-1".to_string(), |v| v.to_string());
        let flush = match log.flush {
            FlushPolicy::Always => "always".to_string(),
            FlushPolicy::Os => "os".to_string(),
            FlushPolicy::Interval(d) => format!("interval:{}", d.as_millis()),
        };
        let pairs: Vec<(&str, String)> = vec![
            ("data_dir", b.data_dir.display().to_string()),
            ("kafka_addr", self.kafka_addr.to_string()),
            ("kafka_listeners", self.kafka_listeners.iter().map(|l| l.spec.to_string()).collect::<Vec<_>>().join(",")),
            ("authorizer", (if self.authorizer.is_some() { "acl" } else { "none" }).to_string()),
            ("connections_max_reauth_ms", self.reauth_max.map_or(0, |d| d.as_millis()).to_string()),
            ("ssl_cert", self.kafka_tls.as_ref().map_or_else(String::new, |t| t.cert.display().to_string())),
            (
                "ssl_client_auth",
                self.kafka_tls
                    .as_ref()
                    .map_or_else(|| "none".into(), |t| format!("{:?}", t.client_auth).to_lowercase()),
            ),
            ("advertised_host", b.advertised_host.clone()),
            ("auto_create_topics", b.auto_create_topics.to_string()),
            ("default_partitions", b.default_partitions.to_string()),
            ("max_partitions_per_topic", b.partitions_per_topic_max.to_string()),
            ("max_topics", b.topics_max.to_string()),
            ("max_connections", b.client_limits.connections_max.to_string()),
            ("max_connections_per_ip", b.client_limits.connections_per_ip_max.to_string()),
            ("socket_request_max_bytes", self.kafka.request_bytes_max.to_string()),
            ("max_inflight_request_bytes", self.kafka.inflight_bytes_max.to_string()),
            ("connections_max_idle_ms", self.kafka.idle_timeout.as_millis().to_string()),
            ("socket_write_timeout_ms", self.kafka.write_timeout.as_millis().to_string()),
            ("queued_max_request_bytes", self.kafka.queued_request_bytes_max.to_string()),
            ("producer_id_expiration_ms", self.producer_id_expiration.as_millis().to_string()),
            ("http_max_connections", self.http.connections_max.to_string()),
            ("http_idle_timeout_ms", self.http.idle_timeout.as_millis().to_string()),
            ("http_auth", self.http_auth.enabled.to_string()),
            ("http_auth_metrics", self.http_auth.protect_metrics.to_string()),
            ("http_auth_nsqd_admin", self.http_auth.protect_nsqd_admin.to_string()),
            ("node_id", self.cluster.as_ref().map_or_else(|| "-".into(), |c| c.node_id.to_string())),
            ("cluster_addr", self.cluster.as_ref().map_or_else(|| "-".into(), |c| c.cluster_addr_text.clone())),
            (
                "cluster_peers",
                self.cluster.as_ref().map_or_else(
                    || "-".into(),
                    |c| c.peers.iter().map(|p| format!("{}@{}", p.node_id, p.addr)).collect::<Vec<_>>().join(","),
                ),
            ),
            (
                "default_replication_factor",
                self.cluster
                    .as_ref()
                    .and_then(|c| c.default_replication_factor)
                    .map_or_else(|| "auto".into(), |n| n.to_string()),
            ),
            (
                "raft_heartbeat_ms",
                self.cluster
                    .as_ref()
                    .map_or(cluster::RAFT_HEARTBEAT_MS_DEFAULT, |c| c.heartbeat.as_millis() as u64)
                    .to_string(),
            ),
            (
                "raft_election_timeout_ms",
                self.cluster
                    .as_ref()
                    .map_or(cluster::RAFT_ELECTION_TIMEOUT_MS_DEFAULT, |c| c.election_timeout.as_millis() as u64)
                    .to_string(),
            ),
            (
                "replica_lag_time_max_ms",
                self.cluster
                    .as_ref()
                    .map_or(cluster::REPLICA_LAG_TIME_MAX_MS_DEFAULT, |c| c.replica_lag_time_max.as_millis() as u64)
                    .to_string(),
            ),
            (
                "cluster_tls_cert",
                self.cluster
                    .as_ref()
                    .and_then(|c| c.tls.as_ref())
                    .map_or_else(String::new, |t| t.cert.display().to_string()),
            ),
            (
                "cluster_tls_ca",
                self.cluster
                    .as_ref()
                    .and_then(|c| c.tls.as_ref())
                    .map_or_else(String::new, |t| t.ca.display().to_string()),
            ),
            ("flush", flush),
            ("message_max_bytes", log.batch_bytes_max.to_string()),
            ("segment_bytes", log.segment_bytes_max.to_string()),
            ("retention_ms", or_unlimited(log.retention_age_max.map(|d| d.as_millis() as u64))),
            ("retention_bytes", or_unlimited(log.retention_bytes_max)),
            ("offsets_retention_ms", b.groups.offsets_retention.as_millis().to_string()),
            ("group_initial_rebalance_delay_ms", b.groups.initial_rebalance_delay.as_millis().to_string()),
            ("offsets_topic_partitions", b.groups.offsets_topic_partitions.to_string()),
            ("retention_hold_bytes", b.retention_hold_bytes_max.to_string()),
            ("log_format", format!("{:?}", self.log_format).to_lowercase()),
            ("log_level", self.log_level.clone()),
            ("nsq_tcp_addr", nsq.tcp_addr.to_string()),
            ("http_addr", nsq.http_addr.to_string()),
            ("lookupd_http_addr", nsq.lookupd_http_addr.map_or_else(String::new, |a| a.to_string())),
            ("lookupd_tcp_addresses", nsq.lookupd_tcp_addresses.join(",")),
            ("broadcast_address", nsq.broadcast_address.clone()),
            ("max_msg_size", nsq.max_msg_size.to_string()),
            ("max_body_size", nsq.max_body_size.to_string()),
            ("msg_timeout", format!("{}ms", nsq.msg_timeout.as_millis())),
            ("max_rdy_count", nsq.max_rdy_count.to_string()),
            ("mqtt_addr", self.mqtt.addr.to_string()),
            ("mqtt_ws_addr", self.mqtt.ws_addr.to_string()),
            ("mqtt_tls_addr", self.mqtt.tls_addr.map_or_else(String::new, |a| a.to_string())),
            ("mqtt_wss_addr", self.mqtt.wss_addr.map_or_else(String::new, |a| a.to_string())),
            ("mqtt_mapping", self.mqtt.config.mapping.describe()),
            ("mqtt_max_packet_bytes", self.mqtt.config.packet_bytes_max.to_string()),
            ("tls_cert", nsq.security.tls.as_ref().map_or_else(String::new, |t| t.cert.display().to_string())),
            ("tls_required", nsq.security.tls_required.to_string()),
            ("https_address", nsq.security.https_addr.map_or_else(String::new, |a| a.to_string())),
            ("auth_http_addresses", nsq.security.auth_http_addresses.join(",")),
            ("auth_http_request_method", format!("{:?}", nsq.security.auth_http_method).to_lowercase()),
            (
                "nsq_auth_tokens_file",
                nsq.security.auth_tokens_file.as_ref().map_or_else(String::new, |p| p.display().to_string()),
            ),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// The largest batch: as configured, or by default Kafka's 1048588 raised to what one NSQ
/// message of `max_msg_size` needs. A configured value too small for that is refused, so a
/// body of `--max-msg-size` is never refused as a batch too large.
fn message_max_bytes(configured: Option<u32>, max_msg_size: u32) -> anyhow::Result<u32> {
    let needed = u64::from(max_msg_size) + u64::from(NSQ_BATCH_OVERHEAD_MAX);
    let Some(value) = configured else {
        // `needed` fits: max_msg_size <= max_body_size <= i32::MAX - overhead.
        return Ok(u32::try_from(needed).unwrap_or(u32::MAX).max(KAFKA_MESSAGE_MAX_BYTES));
    };
    check_range("message_max_bytes", value.into(), MESSAGE_MAX_BYTES_MIN.into(), I32_MAX.into())?;
    if u64::from(value) < needed {
        bail!(
            "message_max_bytes = {value} is too small for max_msg_size = {max_msg_size} \
             (--message-max-bytes, SLUICE_MESSAGE_MAX_BYTES): one NSQ message of that size needs a batch of \
             up to {needed} bytes; raise message_max_bytes to at least {needed} or lower max_msg_size"
        );
    }
    Ok(value)
}

/// `always`, `os`, or `interval:MS`.
pub fn parse_flush(text: &str) -> anyhow::Result<FlushPolicy> {
    match text {
        "always" => Ok(FlushPolicy::Always),
        "os" => Ok(FlushPolicy::Os),
        other => match other.strip_prefix("interval:").map(str::parse::<u64>) {
            Some(Ok(ms)) if ms > 0 => Ok(FlushPolicy::Interval(Duration::from_millis(ms))),
            _ => Err(out_of_range("flush", other, "always, os or interval:MS with MS at least 1")),
        },
    }
}

pub(crate) fn resolve_addr(text: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .with_context(|| format!("invalid address '{text}' (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("address '{text}' resolves to nothing"))
}

/// The host a Kafka listener on `addr` advertises: `--advertised-host` when given, else
/// the listener's own host.
pub fn advertised_host_for(settings: &Settings, addr: &SocketAddr) -> String {
    settings.advertised_host_explicit.clone().unwrap_or_else(|| default_advertised_host(addr))
}

/// A wildcard listener cannot be advertised; tell clients the loopback address instead.
fn default_advertised_host(addr: &SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        "127.0.0.1".into()
    } else {
        addr.ip().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policies_parse() {
        assert_eq!(parse_flush("always").ok(), Some(FlushPolicy::Always));
        assert_eq!(parse_flush("os").ok(), Some(FlushPolicy::Os));
        assert_eq!(parse_flush("interval:250").ok(), Some(FlushPolicy::Interval(Duration::from_millis(250))));
        assert!(parse_flush("interval:0").is_err());
        assert!(parse_flush("sometimes").is_err());
    }

    // The overhead bound holds for real NSQ batches (PUB and DPUB) at varint size boundaries.
    #[test]
    fn nsq_batch_overhead_bounds_real_batches() {
        use bytes::Bytes;
        use sluice_records::convert::{encode_batch, new_record};
        for size in [0usize, 1, 63, 64, 8191, 8192, 1_048_575, 1_048_576, 2_097_152] {
            for defer in [None, Some(i64::MIN), Some(i64::MAX)] {
                let header = defer.map(|due| ("nsq-defer-until", Some(Bytes::from(due.to_string()))));
                let record =
                    new_record(0, i64::MAX, None, Some(Bytes::from(vec![7u8; size])), header.into_iter().collect());
                let batch = encode_batch(&[record], kafka_protocol::records::Compression::None).expect("encode");
                assert!(
                    batch.len() <= size + NSQ_BATCH_OVERHEAD_MAX as usize,
                    "body {size} defer {defer:?}: batch {} > {size} + {NSQ_BATCH_OVERHEAD_MAX}",
                    batch.len()
                );
            }
        }
    }

    // By default a max-size NSQ message fits; a configured limit too small for it is refused.
    #[test]
    fn message_max_bytes_fits_the_nsq_limit() {
        let default = message_max_bytes(None, 1_048_576).expect("default");
        assert_eq!(default, 1_048_576 + NSQ_BATCH_OVERHEAD_MAX);
        assert_eq!(message_max_bytes(None, 100).expect("small"), KAFKA_MESSAGE_MAX_BYTES);
        assert!(message_max_bytes(Some(1_048_588), 1_048_576).is_err());
        assert!(message_max_bytes(Some(0), 100).is_err());
        assert_eq!(message_max_bytes(Some(5000), 100).expect("fits"), 5000);
    }

    // Kafka's 3000 ms by default; the TOML key and the flag set it, 0 turns it off.
    #[test]
    fn initial_rebalance_delay_defaults_to_kafkas_and_is_configurable() {
        let resolve =
            |args: &ServeArgs| Settings::resolve(args).expect("resolve").broker.groups.initial_rebalance_delay;
        assert_eq!(resolve(&ServeArgs::default()), Duration::from_millis(3000));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "group_initial_rebalance_delay_ms = 500\n").expect("write");
        let mut args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        assert_eq!(resolve(&args), Duration::from_millis(500));
        args.group_initial_rebalance_delay_ms = Some(0);
        assert_eq!(resolve(&args), Duration::ZERO);
        args.group_initial_rebalance_delay_ms = Some(u64::from(u32::MAX));
        assert!(Settings::resolve(&args).is_err(), "above Kafka's int range");
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "default_partitions = 2\nflush = \"os\"\n").expect("write");
        let mut args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let s = Settings::resolve(&args).expect("resolve");
        assert_eq!(s.broker.default_partitions, 2);
        assert_eq!(s.broker.log_defaults.flush, FlushPolicy::Os);
        args.default_partitions = Some(4);
        assert_eq!(Settings::resolve(&args).expect("resolve").broker.default_partitions, 4);
    }
}
