//! MQTT 3.1.1 and 5.0 over TCP and WebSocket into Sluice's durable log.
//!
//! `server` accepts connections (`websocket` upgrades WebSocket ones and bridges their
//! messages to bytes); `connection` runs one task per client (CONNECT, keepalive, one flat
//! `match` from packet to handler, replies written in order by a writer task);
//! `codec` frames and decodes the client's packets and encodes the server's; `topics` maps
//! MQTT topic names onto log topics and matches filters; `publish` turns a PUBLISH into a
//! record and appends it; `subscription` tails the log for a client's filters; `retained`
//! keeps the last retained message per MQTT topic; `shared` serves `$share/…` subscriptions
//! through NSQ channels; `status` reads the figures the admin API shows.

mod codec;
mod connection;
mod counts;
mod mapping;
mod publish;
mod retained;
mod server;
mod session;
mod session_store;
mod shared;
mod status;
mod subscription;
pub mod topics;
mod websocket;

pub use mapping::{MappingRule, TopicMap};
pub use server::{serve, Listeners};
pub use status::{MqttSnapshot, MqttStatus};

use std::time::Duration;

/// Header holding the whole MQTT topic of a record (also its key).
pub const TOPIC_HEADER: &str = "mqtt-topic";
/// Header holding the QoS a record was published with ("0", "1" or "2").
pub const QOS_HEADER: &str = "mqtt-qos";
/// Header holding when a record published with a v5 Message Expiry Interval expires
/// (milliseconds since the epoch): it is not delivered to MQTT subscribers after that.
pub const EXPIRY_HEADER: &str = "mqtt-expires-at";
/// Header holding the client id of the MQTT client that published a record: a v5 No Local
/// subscription does not send a client its own publishes.
pub const CLIENT_ID_HEADER: &str = "mqtt-client-id";
/// Header set ("1") on a record published with the RETAIN flag: a v5 Retain As Published
/// subscription delivers it with the flag set.
pub const RETAIN_HEADER: &str = "mqtt-retain";

/// The listener's own headers: never taken from, nor shown as, v5 user properties.
pub(crate) fn is_own_header(name: &str) -> bool {
    [TOPIC_HEADER, QOS_HEADER, EXPIRY_HEADER, CLIENT_ID_HEADER, RETAIN_HEADER].contains(&name)
}

/// Limits of the MQTT listener, each with the reason for its default.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Largest packet accepted, fixed header included (v5 CONNACK's Maximum Packet Size). The
    /// default fits a 1 MiB payload with its topic and properties, as Kafka's message size.
    pub packet_bytes_max: usize,
    /// QoS 1 and 2 publishes a client may have unacknowledged (v5 Receive Maximum): bounds
    /// the appends one connection has waiting for their fsync.
    pub receive_maximum: u16,
    /// QoS 1 deliveries to one client waiting for its PUBACK.
    pub inflight_max: u16,
    /// Topic filters one connection may hold.
    pub subscriptions_max: usize,
    /// How long a new connection has to send its CONNECT.
    pub connect_timeout: Duration,
    /// Longest a write to a client may block before the client is disconnected (a client
    /// that never reads must not hold its connection, or memory, forever).
    pub write_timeout: Duration,
    /// Mapping rules from MQTT topic prefixes to log topics (none: the first level names it).
    pub mapping: TopicMap,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            packet_bytes_max: 1_048_576 + 64 * 1024,
            receive_maximum: 128,
            inflight_max: 64,
            subscriptions_max: 256,
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            mapping: TopicMap::default(),
        }
    }
}

/// The smallest packet limit that still lets every packet type through (a CONNECT with a
/// short client id, a PUBLISH with a short topic).
pub const PACKET_BYTES_MIN: usize = 64;

#[doc(hidden)]
pub mod fuzz_entry {
    //! Pure entry point for the fuzz target `mqtt_packet` in `fuzz/`: a client's byte stream
    //! through the framing and the packet decoder of both protocol versions.
    use crate::codec::{decode_packet, fixed_header, peek_protocol_level, Version};
    use bytes::{Buf, BytesMut};

    /// Packets decoded from one input at most: bounds a run on a long input of tiny packets.
    const PACKETS_MAX: usize = 10_000;

    /// Frames and decodes packets from `bytes` as 3.1.1 and as 5.0, and runs topic filters it
    /// finds through validation and matching; returns how many frames it decoded.
    pub fn decode_stream(bytes: &[u8]) -> usize {
        let mut decoded = 0;
        for version in [Version::V311, Version::V5] {
            let mut buf = BytesMut::from(bytes);
            while decoded < PACKETS_MAX {
                let Ok(Some(header)) = fixed_header(&buf, 1 << 20) else { break };
                if buf.remaining() < header.frame_len() {
                    break;
                }
                let frame = buf.split_to(header.frame_len()).freeze();
                let _ = peek_protocol_level(&frame);
                if let Ok(crate::codec::Packet::Subscribe(subscribe)) = decode_packet(frame, version) {
                    for request in &subscribe.requests {
                        let _ = crate::topics::valid_filter(&request.filter);
                        let _ = crate::topics::filter_log_topic(&request.filter);
                        let _ = crate::topics::matches(&request.filter, "a/b/c");
                    }
                }
                decoded += 1;
            }
        }
        decoded
    }
}
