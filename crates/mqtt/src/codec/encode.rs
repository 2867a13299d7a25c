//! Packets the server sends (CONNACK, PUBLISH, the acknowledgements, SUBACK, UNSUBACK,
//! PINGRESP, DISCONNECT), each as whole frame bytes.

use super::properties::{id, PropertyWriter};
use super::{kind, put_binary, put_var_int, QoS, Reason, Version};

/// What a CONNACK says.
#[derive(Debug, Clone, Default)]
pub struct ConnAck {
    pub session_present: bool,
    /// Success, or why the CONNECT was refused.
    pub reason: Option<Reason>,
    /// v5: the client id the server picked for an empty one.
    pub assigned_client_id: Option<String>,
    /// v5: how many QoS 1 and 2 publishes the client may have unacknowledged.
    pub receive_maximum: u16,
    /// v5: the largest packet the server accepts.
    pub maximum_packet_size: u32,
    /// v5: the highest topic alias the client may use in its PUBLISHes (0: none).
    pub topic_alias_maximum: u16,
}

pub fn encode_connack(version: Version, ack: &ConnAck) -> Vec<u8> {
    let reason = ack.reason.unwrap_or(Reason::Success);
    let mut body = vec![u8::from(ack.session_present && reason == Reason::Success)];
    match version {
        Version::V311 => body.push(reason.v311_connack_code()),
        Version::V5 => {
            body.push(reason.code());
            let mut properties = PropertyWriter::default();
            if reason == Reason::Success {
                properties
                    .u16(id::RECEIVE_MAXIMUM, ack.receive_maximum)
                    .u32(id::MAXIMUM_PACKET_SIZE, ack.maximum_packet_size)
                    .u16(id::TOPIC_ALIAS_MAXIMUM, ack.topic_alias_maximum)
                    .byte(id::SHARED_SUBSCRIPTION_AVAILABLE, 1)
                    .byte(id::SUBSCRIPTION_IDENTIFIER_AVAILABLE, 1);
                if let Some(client_id) = &ack.assigned_client_id {
                    properties.text(id::ASSIGNED_CLIENT_IDENTIFIER, client_id);
                }
            }
            body.extend(properties.finish());
        }
    }
    frame(kind::CONNACK << 4, &body)
}

/// A message delivered to a subscriber.
#[derive(Debug, Clone)]
pub struct OutgoingPublish<'a> {
    pub topic: &'a str,
    pub qos: QoS,
    pub dup: bool,
    pub retain: bool,
    pub packet_id: u16,
    pub payload: &'a [u8],
    /// v5 user properties (dropped for 3.1.1 subscribers).
    pub user_properties: &'a [(String, String)],
    /// v5: what is left of the message's expiry interval, seconds.
    pub message_expiry: Option<u32>,
    /// v5: the identifiers of the subscriptions it matched.
    pub subscription_ids: &'a [usize],
}

pub fn encode_publish(version: Version, publish: &OutgoingPublish<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(publish.topic.len() + publish.payload.len() + 16);
    put_binary(&mut body, publish.topic.as_bytes());
    if publish.qos != QoS::AtMostOnce {
        body.extend_from_slice(&publish.packet_id.to_be_bytes());
    }
    if version == Version::V5 {
        let mut properties = PropertyWriter::default();
        if let Some(secs) = publish.message_expiry {
            properties.u32(id::MESSAGE_EXPIRY_INTERVAL, secs);
        }
        for subscription_id in publish.subscription_ids {
            properties.var_int(id::SUBSCRIPTION_IDENTIFIER, *subscription_id);
        }
        for (key, value) in publish.user_properties {
            properties.pair(key, value.as_bytes());
        }
        body.extend(properties.finish());
    }
    body.extend_from_slice(publish.payload);
    let first =
        (kind::PUBLISH << 4) | (u8::from(publish.dup) << 3) | ((publish.qos as u8) << 1) | u8::from(publish.retain);
    frame(first, &body)
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP (`packet_kind`), UNSUBACK of 3.1.1: the packet id, and in
/// v5 the reason when it is not success.
pub fn encode_simple(packet_kind: u8, version: Version, packet_id: u16, reason: Reason) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if version == Version::V5 && reason != Reason::Success {
        body.push(reason.code());
    }
    let flags = if packet_kind == kind::PUBREL { 0b0010 } else { 0 };
    frame((packet_kind << 4) | flags, &body)
}

/// SUBACK or UNSUBACK (`packet_kind`) with one code per filter (3.1.1's UNSUBACK has none).
pub fn encode_sub_acks(packet_kind: u8, version: Version, packet_id: u16, codes: &[u8]) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if version == Version::V5 {
        body.push(0);
    }
    if packet_kind == kind::SUBACK || version == Version::V5 {
        body.extend_from_slice(codes);
    }
    frame(packet_kind << 4, &body)
}

pub fn encode_pingresp() -> Vec<u8> {
    vec![kind::PINGRESP << 4, 0]
}

/// v5 DISCONNECT with a reason (3.1.1 has no server DISCONNECT: the server just closes).
pub fn encode_disconnect(reason: Reason) -> Vec<u8> {
    frame(kind::DISCONNECT << 4, &[reason.code(), 0])
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    put_var_int(&mut out, body.len());
    out.extend_from_slice(body);
    out
}
