//! MQTT's own figures in `/metrics`: connected sessions, subscriptions and retained messages
//! (connections and per-packet latency are the shared `sluice_connections_*` and
//! `sluice_request_duration_seconds`). Each is a gauge its owner moves as things change.

use sluice_broker::metrics::{IntGauge, Metrics};

#[derive(Clone)]
pub(crate) struct MqttGauges {
    /// Connections past CONNECT (each holds one client id).
    pub sessions: IntGauge,
    /// Topic filters held by connected clients, shared ones included.
    pub subscriptions: IntGauge,
    /// Retained messages stored.
    pub retained: IntGauge,
}

impl MqttGauges {
    pub fn register(metrics: &Metrics) -> MqttGauges {
        MqttGauges {
            sessions: metrics.gauge("sluice_mqtt_sessions", "MQTT clients connected past CONNECT."),
            subscriptions: metrics.gauge(
                "sluice_mqtt_subscriptions",
                "Topic filters held by connected MQTT clients, shared ones included.",
            ),
            retained: metrics.gauge("sluice_mqtt_retained_messages", "Retained MQTT messages stored."),
        }
    }
}
