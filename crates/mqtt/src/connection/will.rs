//! Wills: published as their client would have published them when a connection ends
//! without a DISCONNECT.

use crate::codec::{Publish, Will};
use crate::retained::Retained;
use crate::MqttConfig;
use sluice_broker::Broker;
use std::net::SocketAddr;
use std::sync::Arc;

/// Publishes a will as its client would have published it (QoS, retain, user properties),
/// waiting for durability in a task of its own since no one acknowledges it.
pub(super) fn publish_will(
    broker: &Arc<Broker>,
    retained: &Arc<Retained>,
    config: &Arc<MqttConfig>,
    will: Will,
    client_id: String,
    remote: SocketAddr,
) {
    let (broker, retained, config) = (Arc::clone(broker), Arc::clone(retained), Arc::clone(config));
    tokio::spawn(async move {
        let publish = Publish {
            dup: false,
            qos: will.qos,
            retain: will.retain,
            topic: will.topic,
            packet_id: None,
            properties: will.properties,
            payload: will.payload,
        };
        let result = match crate::publish::append(&broker, &retained, &config.mapping, &publish, &client_id).await {
            Ok(pending) => pending.wait().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::debug!(%remote, topic = publish.topic, "mqtt will published"),
            Err(e) => tracing::warn!(%remote, topic = publish.topic, error = %e, "mqtt will not published"),
        }
    });
}
