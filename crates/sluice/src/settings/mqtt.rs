//! The MQTT listeners' settings: their addresses (TCP, WebSocket, and TLS and WebSocket over
//! TLS when given) and the largest packet. Each flag also reads `SLUICE_<NAME>` and the TOML
//! key of the same name with underscores. The TLS listeners use the broker's `--ssl-*`
//! certificate settings (`security.rs`), as Kafka's SSL listeners do.

use super::{check_range, resolve_addr};
use clap::Args;
use sluice_mqtt::{MqttConfig, PACKET_BYTES_MIN};
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
