//! Resource limits of `sluice serve`, named after Kafka's broker configs where Kafka has
//! one: connections (total and per IP), request size, in-flight request bytes, idle and
//! write timeouts, topics and partitions. Each flag also reads `SLUICE_<NAME>` and the
//! TOML key of the same name with underscores.

use super::out_of_range;
use clap::Args;
use sluice_broker::BrokerConfig;
use sluice_kafka::KafkaListenerConfig;
use std::time::Duration;

#[derive(Debug, Args, Default, Clone)]
pub struct LimitArgs {
    /// Connections open at once, Kafka and NSQ together (Kafka max.connections); 0 = no limit
    /// [default: 10000].
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections open at once from one IP address (max.connections.per.ip); 0 = no limit
    /// [default: 0].
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Largest Kafka request frame, bytes; a larger one closes the connection
    /// (socket.request.max.bytes) [default: 104857600].
    #[arg(long, env = "SLUICE_SOCKET_REQUEST_MAX_BYTES", value_name = "BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// Request bytes one Kafka connection may have read but not yet answered before it stops
    /// reading (per connection; at least --socket-request-max-bytes) [default: 209715200].
    #[arg(long, env = "SLUICE_MAX_INFLIGHT_REQUEST_BYTES", value_name = "BYTES")]
    pub max_inflight_request_bytes: Option<usize>,
    /// Close a Kafka connection that sends no request for this long, ms
    /// (connections.max.idle.ms) [default: 600000].
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_IDLE_MS", value_name = "MS")]
    pub connections_max_idle_ms: Option<u64>,
    /// Close a Kafka connection whose client takes no byte of a reply for this long, ms
    /// (a client that never reads) [default: 30000].
    #[arg(long, env = "SLUICE_SOCKET_WRITE_TIMEOUT_MS", value_name = "MS")]
    pub socket_write_timeout_ms: Option<u64>,
    /// Request bytes read and not yet answered, all Kafka connections together (Kafka
    /// queued.max.request.bytes); a connection waits for budget before it reads a frame;
    /// at least --socket-request-max-bytes [default: 524288000].
    #[arg(long, env = "SLUICE_QUEUED_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub queued_max_request_bytes: Option<usize>,
    /// Forget an idempotent producer id unseen for this long, ms (producer.id.expiration.ms)
    /// [default: 86400000].
    #[arg(long, env = "SLUICE_PRODUCER_ID_EXPIRATION_MS", value_name = "MS")]
    pub producer_id_expiration_ms: Option<u64>,
    /// HTTP connections open at once per HTTP listener, apart from --max-connections; at the
    /// limit a new one closes the oldest idle one [default: 1024].
    #[arg(long, env = "SLUICE_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// Close an HTTP connection that sends no complete request header for this long after
    /// connecting or after its last response, ms [default: 60000].
    #[arg(long, env = "SLUICE_HTTP_IDLE_TIMEOUT_MS", value_name = "MS")]
    pub http_idle_timeout_ms: Option<u64>,
    /// Most topics the broker holds; creating one more fails with POLICY_VIOLATION (Kafka)
    /// or E_PUB_FAILED (NSQ); 0 = no limit [default: 10000].
    #[arg(long, env = "SLUICE_MAX_TOPICS", value_name = "N")]
    pub max_topics: Option<usize>,
    /// Most partitions a topic may have (CreateTopics/CreatePartitions beyond it get
    /// INVALID_PARTITIONS) [default: 10000].
    #[arg(long, env = "SLUICE_MAX_PARTITIONS_PER_TOPIC", value_name = "N")]
    pub max_partitions_per_topic: Option<u32>,
}

/// Applies flags over the file over the defaults: connection and topic limits go into the
/// broker config, the rest into the Kafka listener's.
pub fn resolve(args: &LimitArgs, file: &LimitArgs, broker: &mut BrokerConfig) -> anyhow::Result<KafkaListenerConfig> {
    let limits = &mut broker.client_limits;
    limits.connections_max = args.max_connections.or(file.max_connections).unwrap_or(limits.connections_max);
    limits.connections_per_ip_max =
        args.max_connections_per_ip.or(file.max_connections_per_ip).unwrap_or(limits.connections_per_ip_max);
    broker.topics_max = args.max_topics.or(file.max_topics).unwrap_or(broker.topics_max);
    let partitions_max = args.max_partitions_per_topic.or(file.max_partitions_per_topic);
    broker.partitions_per_topic_max = partitions_max.unwrap_or(broker.partitions_per_topic_max);
    if broker.partitions_per_topic_max == 0 || broker.default_partitions > broker.partitions_per_topic_max {
        let range = format!("at least 1 and at least default_partitions ({})", broker.default_partitions);
        return Err(out_of_range("max_partitions_per_topic", broker.partitions_per_topic_max, &range));
    }
    let mut kafka = KafkaListenerConfig::default();
    kafka.request_bytes_max =
        args.socket_request_max_bytes.or(file.socket_request_max_bytes).unwrap_or(kafka.request_bytes_max);
    // Below a request header no request fits; above i32::MAX the length prefix cannot say it.
    if kafka.request_bytes_max < 64 || kafka.request_bytes_max > i32::MAX as usize {
        let range = format!("64 to {}", i32::MAX);
        return Err(out_of_range("socket_request_max_bytes", kafka.request_bytes_max, &range));
    }
    let inflight = args.max_inflight_request_bytes.or(file.max_inflight_request_bytes);
    kafka.inflight_bytes_max = inflight.unwrap_or(kafka.inflight_bytes_max.max(kafka.request_bytes_max));
    if kafka.inflight_bytes_max < kafka.request_bytes_max || kafka.inflight_bytes_max > u32::MAX as usize {
        let range = format!("socket_request_max_bytes ({}) to {}", kafka.request_bytes_max, u32::MAX);
        return Err(out_of_range("max_inflight_request_bytes", kafka.inflight_bytes_max, &range));
    }
    if let Some(ms) = args.connections_max_idle_ms.or(file.connections_max_idle_ms) {
        kafka.idle_timeout = positive_ms(ms, "connections_max_idle_ms")?;
    }
    if let Some(ms) = args.socket_write_timeout_ms.or(file.socket_write_timeout_ms) {
        kafka.write_timeout = positive_ms(ms, "socket_write_timeout_ms")?;
    }
    let queued = args.queued_max_request_bytes.or(file.queued_max_request_bytes);
    kafka.queued_request_bytes_max = queued.unwrap_or(kafka.queued_request_bytes_max.max(kafka.request_bytes_max));
    // A frame larger than the whole budget could never get it: the connection would wait forever.
    if kafka.queued_request_bytes_max < kafka.request_bytes_max || kafka.queued_request_bytes_max > u32::MAX as usize {
        let range = format!("socket_request_max_bytes ({}) to {}", kafka.request_bytes_max, u32::MAX);
        return Err(out_of_range("queued_max_request_bytes", kafka.queued_request_bytes_max, &range));
    }
    Ok(kafka)
}

/// The HTTP listener's limits and the idempotent producer expiry.
pub fn resolve_network(args: &LimitArgs, file: &LimitArgs) -> anyhow::Result<(sluice_http::HttpLimits, Duration)> {
    let mut http = sluice_http::HttpLimits::default();
    http.connections_max = args.http_max_connections.or(file.http_max_connections).unwrap_or(http.connections_max);
    if http.connections_max == 0 {
        return Err(out_of_range("http_max_connections", 0, "at least 1"));
    }
    if let Some(ms) = args.http_idle_timeout_ms.or(file.http_idle_timeout_ms) {
        http.idle_timeout = positive_ms(ms, "http_idle_timeout_ms")?;
    }
    let expiration = match args.producer_id_expiration_ms.or(file.producer_id_expiration_ms) {
        Some(ms) => positive_ms(ms, "producer_id_expiration_ms")?,
        None => sluice_broker::producer_state::EXPIRATION_DEFAULT,
    };
    Ok((http, expiration))
}

fn positive_ms(ms: u64, key: &str) -> anyhow::Result<Duration> {
    if ms == 0 || ms > i64::MAX as u64 {
        return Err(out_of_range(key, ms, &format!("1 to {}", i64::MAX)));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_relations_are_checked() {
        let mut broker = BrokerConfig::new("/tmp/unused");
        let file = LimitArgs { max_connections: Some(50), max_topics: Some(7), ..LimitArgs::default() };
        let args = LimitArgs { max_connections: Some(40), connections_max_idle_ms: Some(500), ..LimitArgs::default() };
        let kafka = resolve(&args, &file, &mut broker).expect("resolve");
        assert_eq!(broker.client_limits.connections_max, 40);
        assert_eq!(broker.topics_max, 7);
        assert_eq!(kafka.idle_timeout, Duration::from_millis(500));
        let small = LimitArgs { socket_request_max_bytes: Some(1000), ..LimitArgs::default() };
        let kafka = resolve(&small, &LimitArgs::default(), &mut broker).expect("resolve");
        assert!(kafka.inflight_bytes_max >= 1000);
        let bad = LimitArgs {
            socket_request_max_bytes: Some(1000),
            max_inflight_request_bytes: Some(999),
            ..LimitArgs::default()
        };
        assert!(resolve(&bad, &LimitArgs::default(), &mut broker).is_err());
        let over_budget = LimitArgs {
            socket_request_max_bytes: Some(1000),
            queued_max_request_bytes: Some(999),
            ..LimitArgs::default()
        };
        assert!(resolve(&over_budget, &LimitArgs::default(), &mut broker).is_err(), "a frame must fit the budget");
        let kafka = resolve(&small, &LimitArgs::default(), &mut broker).expect("resolve");
        assert!(kafka.queued_request_bytes_max >= kafka.request_bytes_max);
    }
}
