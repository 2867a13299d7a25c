//! The MQTT listeners' settings: their addresses (TCP, WebSocket, and TLS and WebSocket over
//! TLS when given) and the largest packet. Each flag also reads `SLUICE_<NAME>` and the TOML
//! key of the same name with underscores. The TLS listeners use the broker's `--ssl-*`
//! certificate settings (`security.rs`), as Kafka's SSL listeners do.

use super::{check_range, resolve_addr};
use clap::Args;
use serde::Deserialize;
use sluice_mqtt::{MappingRule, MqttConfig, TopicMap, PACKET_BYTES_MIN};
use std::net::SocketAddr;

/// MQTT's own ceiling on a packet: a remaining length of 268,435,455 and its 5-byte header.
const PACKET_BYTES_SPEC_MAX: usize = 268_435_455 + 5;

#[derive(Debug, Args, Default, Clone)]
pub struct MqttArgs {
    /// MQTT 3.1.1 and 5.0 listener address [default: 127.0.0.1:1883].
    #[arg(long, env = "SLUICE_MQTT_ADDR", value_name = "HOST:PORT", overrides_with = "mqtt_addr")]
    pub mqtt_addr: Option<String>,
    /// MQTT over WebSocket listener address (subprotocol `mqtt`, path `/mqtt` or `/`)
    /// [default: 127.0.0.1:8083].
    #[arg(long, env = "SLUICE_MQTT_WS_ADDR", value_name = "HOST:PORT", overrides_with = "mqtt_ws_addr")]
    pub mqtt_ws_addr: Option<String>,
    /// MQTT over TLS listener address (MQTT's 8883), with the --ssl-* certificates [default: off].
    #[arg(long, env = "SLUICE_MQTT_TLS_ADDR", value_name = "HOST:PORT", overrides_with = "mqtt_tls_addr")]
    pub mqtt_tls_addr: Option<String>,
    /// MQTT over WebSocket over TLS (wss://) listener address, with the --ssl-* certificates
    /// [default: off].
    #[arg(long, env = "SLUICE_MQTT_WSS_ADDR", value_name = "HOST:PORT", overrides_with = "mqtt_wss_addr")]
    pub mqtt_wss_addr: Option<String>,
    /// A mapping rule PREFIX=TOPIC: MQTT topics starting with PREFIX's levels (`+` for any
    /// one level) go to log topic TOPIC; repeat it or separate with commas; the first match
    /// wins [default: none, the first level names the topic].
    #[arg(long, env = "SLUICE_MQTT_MAPPING", value_name = "PREFIX=TOPIC", value_delimiter = ',')]
    pub mqtt_mapping: Vec<String>,
    /// Largest MQTT packet accepted, bytes; a larger one closes the connection (v5: reason
    /// 0x95) [default: 1114112].
    #[arg(long, env = "SLUICE_MQTT_MAX_PACKET_BYTES", value_name = "BYTES")]
    pub mqtt_max_packet_bytes: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub addr: SocketAddr,
    pub ws_addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub wss_addr: Option<SocketAddr>,
    /// The `--ssl-*` certificates, set (by `Settings::resolve`) when a TLS listener is.
    pub tls: Option<sluice_tls::TlsFiles>,
    pub config: MqttConfig,
}

impl MqttSettings {
    /// Whether a TLS listener is configured (then the `--ssl-*` certificates are required).
    pub fn needs_tls(&self) -> bool {
        self.tls_addr.is_some() || self.wss_addr.is_some()
    }
}

/// The TOML file's `[mqtt]` table: `[[mqtt.mapping]]` entries, `prefix` and `topic` each.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MqttTable {
    #[serde(default)]
    pub mapping: Vec<MappingEntry>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MappingEntry {
    pub prefix: String,
    pub topic: String,
}

impl MqttTable {
    /// The entries as the flag spells them (`PREFIX=TOPIC`).
    pub fn mapping_flags(&self) -> Vec<String> {
        self.mapping.iter().map(|m| format!("{}={}", m.prefix, m.topic)).collect()
    }
}

/// `PREFIX=TOPIC` rules (a topic name holds no `=`, so the last one splits).
fn mapping(rules: &[String]) -> anyhow::Result<TopicMap> {
    let rules = rules
        .iter()
        .map(|text| {
            let (prefix, topic) =
                text.rsplit_once('=').ok_or_else(|| super::out_of_range("mqtt_mapping", text, "PREFIX=TOPIC rules"))?;
            MappingRule::new(prefix.trim(), topic.trim()).map_err(|e| super::out_of_range("mqtt_mapping", text, &e))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(TopicMap::new(rules))
}

/// Flags (and environment) over the TOML file's `file` values over the defaults.
pub fn resolve(args: &MqttArgs, file: &MqttArgs) -> anyhow::Result<MqttSettings> {
    let addr_text = args.mqtt_addr.clone().or(file.mqtt_addr.clone()).unwrap_or_else(|| "127.0.0.1:1883".into());
    let ws_addr_text =
        args.mqtt_ws_addr.clone().or(file.mqtt_ws_addr.clone()).unwrap_or_else(|| "127.0.0.1:8083".into());
    let mut config = MqttConfig::default();
    if let Some(bytes) = args.mqtt_max_packet_bytes.or(file.mqtt_max_packet_bytes) {
        check_range("mqtt_max_packet_bytes", bytes as i128, PACKET_BYTES_MIN as i128, PACKET_BYTES_SPEC_MAX as i128)?;
        config.packet_bytes_max = bytes;
    }
    let rules = if args.mqtt_mapping.is_empty() { &file.mqtt_mapping } else { &args.mqtt_mapping };
    config.mapping = mapping(rules)?;
    let optional = |text: Option<String>| text.map(|t| resolve_addr(&t)).transpose();
    Ok(MqttSettings {
        addr: resolve_addr(&addr_text)?,
        ws_addr: resolve_addr(&ws_addr_text)?,
        tls_addr: optional(args.mqtt_tls_addr.clone().or(file.mqtt_tls_addr.clone()))?,
        wss_addr: optional(args.mqtt_wss_addr.clone().or(file.mqtt_wss_addr.clone()))?,
        tls: None,
        config,
    })
}
