//! Packets a client sends to the server (MQTT 3.1.1 §3, MQTT 5.0 §3), decoded from one whole
//! frame. Every reserved bit and flag is checked as the spec requires.

use super::properties::Properties;
use super::{fixed_header, kind, DecodeError, DecodeResult, QoS, Reader, Reason, Version};
use bytes::Bytes;

/// A client's packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    Publish(Publish),
    PubAck { packet_id: u16 },
    PubRec { packet_id: u16 },
    PubRel { packet_id: u16 },
    PubComp { packet_id: u16 },
    Subscribe(Subscribe),
    Unsubscribe { packet_id: u16, filters: Vec<String> },
    PingReq,
    Disconnect { reason: u8, session_expiry_interval: Option<u32> },
    Auth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: Version,
    pub clean_start: bool,
    pub keep_alive_secs: u16,
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// v5 will properties (user properties become headers as a PUBLISH's do).
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: String,
    /// Present for QoS 1 and 2 (never 0).
    pub packet_id: Option<u16>,
    pub properties: Properties,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub requests: Vec<SubscriptionRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub filter: String,
    pub qos: QoS,
    pub no_local: bool,
    /// v5: deliveries keep the RETAIN flag they were published with (3.1.1: false).
    pub retain_as_published: bool,
    /// v5: 0 sends retained messages, 1 only for a new subscription, 2 never (3.1.1: 0).
    pub retain_handling: u8,
}

/// The protocol level a CONNECT frame asks for, if it can be read: lets a listener answer a
/// CONNECT it cannot decode in the client's own version.
pub fn peek_protocol_level(frame: &[u8]) -> Option<u8> {
    let header = fixed_header(frame, usize::MAX).ok().flatten()?;
    let body = frame.get(header.header_len..)?;
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + name_len).copied()
}

/// Decodes one whole frame (fixed header included). `version` is the connection's (3.1.1
/// before its CONNECT); CONNECT itself says its own.
pub fn decode_packet(frame: Bytes, version: Version) -> DecodeResult<Packet> {
    let header =
        fixed_header(&frame, usize::MAX)?.ok_or_else(|| DecodeError::malformed("frame shorter than its header"))?;
    if header.frame_len() != frame.len() {
        return Err(DecodeError::malformed("frame length differs from its remaining length"));
    }
    let flags = header.flags();
    let mut body = Reader::new(frame.slice(header.header_len..));
    let expect_flags = |want: u8| match flags == want {
        true => Ok(()),
        false => Err(DecodeError::malformed(format!("reserved flags 0x{flags:X} on packet type {}", header.kind()))),
    };
    let packet = match header.kind() {
        kind::CONNECT => {
            expect_flags(0)?;
            Packet::Connect(Box::new(connect(&mut body)?))
        }
        kind::PUBLISH => Packet::Publish(publish(flags, &mut body, version)?),
        kind::PUBACK => {
            expect_flags(0)?;
            Packet::PubAck { packet_id: ack(&mut body, version)? }
        }
        kind::PUBREC => {
            expect_flags(0)?;
            Packet::PubRec { packet_id: ack(&mut body, version)? }
        }
        kind::PUBREL => {
            expect_flags(0b0010)?;
            Packet::PubRel { packet_id: ack(&mut body, version)? }
        }
        kind::PUBCOMP => {
            expect_flags(0)?;
            Packet::PubComp { packet_id: ack(&mut body, version)? }
        }
        kind::SUBSCRIBE => {
            expect_flags(0b0010)?;
            Packet::Subscribe(subscribe(&mut body, version)?)
        }
        kind::UNSUBSCRIBE => {
            expect_flags(0b0010)?;
            unsubscribe(&mut body, version)?
        }
        kind::PINGREQ => {
            expect_flags(0)?;
            Packet::PingReq
        }
        kind::DISCONNECT => {
            expect_flags(0)?;
            disconnect(&mut body, version)?
        }
        kind::AUTH if version == Version::V5 => {
            expect_flags(0)?;
            Packet::Auth
        }
        kind::CONNACK | kind::SUBACK | kind::UNSUBACK | kind::PINGRESP => {
            return Err(DecodeError::protocol(format!("packet type {} is sent by servers only", header.kind())))
        }
        other => return Err(DecodeError::malformed(format!("reserved packet type {other}"))),
    };
    if body.remaining() > 0 && !matches!(packet, Packet::Publish(_)) {
        return Err(DecodeError::malformed("bytes left after the packet's fields"));
    }
    Ok(packet)
}

fn connect(body: &mut Reader) -> DecodeResult<Connect> {
    let name = body.binary()?;
    let level = body.u8()?;
    let version = match (&name[..], level) {
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        (b"MQTT", _) | (b"MQIsdp", _) => {
            return Err(DecodeError::with(Reason::UnsupportedProtocolVersion, format!("protocol level {level}")))
        }
        _ => return Err(DecodeError::malformed("protocol name is not MQTT")),
    };
    let flags = body.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::malformed("CONNECT reserved flag set"));
    }
    let (will_flag, will_retain) = (flags & 0x04 != 0, flags & 0x20 != 0);
    let will_qos = QoS::from_bits((flags >> 3) & 0x03).ok_or_else(|| DecodeError::malformed("will QoS 3"))?;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(DecodeError::malformed("will QoS or retain without a will"));
    }
    let (has_password, has_username) = (flags & 0x40 != 0, flags & 0x80 != 0);
    if version == Version::V311 && has_password && !has_username {
        return Err(DecodeError::malformed("password without a user name"));
    }
    let keep_alive_secs = body.u16()?;
    let properties = match version {
        Version::V5 => Properties::read(body)?,
        Version::V311 => Properties::default(),
    };
    let client_id = body.string().map_err(|e| DecodeError::with(Reason::ClientIdentifierNotValid, e.message))?;
    let will = match will_flag {
        true => {
            let properties = match version {
                Version::V5 => Properties::read(body)?,
                Version::V311 => Properties::default(),
            };
            let topic = body.string()?;
            if topic.is_empty() || topic.contains(['+', '#']) {
                return Err(DecodeError::with(Reason::TopicNameInvalid, "will topic is not a topic name"));
            }
            let payload = body.binary()?;
            Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
        }
        false => None,
    };
    let username = has_username.then(|| body.string()).transpose()?;
    let password = has_password.then(|| body.binary()).transpose()?;
    Ok(Connect {
        version,
        clean_start: flags & 0x02 != 0,
        keep_alive_secs,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn publish(flags: u8, body: &mut Reader, version: Version) -> DecodeResult<Publish> {
    let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or_else(|| DecodeError::malformed("PUBLISH with QoS 3"))?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::malformed("DUP set on a QoS 0 PUBLISH"));
    }
    let topic = body.string()?;
    if topic.contains(['+', '#']) {
        return Err(DecodeError::with(Reason::TopicNameInvalid, "topic name holds a wildcard"));
    }
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(packet_id(body)?),
    };
    let properties = match version {
        Version::V5 => Properties::read(body)?,
        Version::V311 => Properties::default(),
    };
    if topic.is_empty() && properties.topic_alias.is_none() {
        let reason = match version {
            Version::V5 => Reason::ProtocolError,
            Version::V311 => Reason::TopicNameInvalid,
        };
        return Err(DecodeError::with(reason, "empty topic name"));
    }
    Ok(Publish { dup, qos, retain: flags & 0x01 != 0, topic, packet_id, properties, payload: body.rest() })
}

fn packet_id(body: &mut Reader) -> DecodeResult<u16> {
    match body.u16()? {
        0 => Err(DecodeError::malformed("packet identifier 0")),
        id => Ok(id),
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: the packet id, then in v5 an optional reason and properties.
fn ack(body: &mut Reader, version: Version) -> DecodeResult<u16> {
    let id = packet_id(body)?;
    if version == Version::V5 && body.remaining() > 0 {
        body.u8()?;
        if body.remaining() > 0 {
            Properties::read(body)?;
        }
    }
    Ok(id)
}

fn subscribe(body: &mut Reader, version: Version) -> DecodeResult<Subscribe> {
    let packet_id = packet_id(body)?;
    let properties = match version {
        Version::V5 => Properties::read(body)?,
        Version::V311 => Properties::default(),
    };
    let mut requests = Vec::new();
    while body.remaining() > 0 {
        let filter = body.string()?;
        let options = body.u8()?;
        let reserved = match version {
            Version::V311 => 0xFC,
            Version::V5 => 0xC0,
        };
        if options & reserved != 0 || (options >> 4) & 0x03 == 3 {
            return Err(DecodeError::malformed("reserved subscription option bits set"));
        }
        let qos = QoS::from_bits(options & 0x03).ok_or_else(|| DecodeError::malformed("subscription QoS 3"))?;
        let retain_handling = (options >> 4) & 0x03;
        requests.push(SubscriptionRequest {
            filter,
            qos,
            no_local: options & 0x04 != 0,
            retain_as_published: options & 0x08 != 0,
            retain_handling,
        });
    }
    if requests.is_empty() {
        return Err(DecodeError::protocol("SUBSCRIBE without a topic filter"));
    }
    Ok(Subscribe { packet_id, properties, requests })
}

fn unsubscribe(body: &mut Reader, version: Version) -> DecodeResult<Packet> {
    let packet_id = packet_id(body)?;
    if version == Version::V5 {
        Properties::read(body)?;
    }
    let mut filters = Vec::new();
    while body.remaining() > 0 {
        filters.push(body.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::protocol("UNSUBSCRIBE without a topic filter"));
    }
    Ok(Packet::Unsubscribe { packet_id, filters })
}

fn disconnect(body: &mut Reader, version: Version) -> DecodeResult<Packet> {
    let (mut reason, mut session_expiry_interval) = (0, None);
    if version == Version::V5 && body.remaining() > 0 {
        reason = body.u8()?;
        if body.remaining() > 0 {
            session_expiry_interval = Properties::read(body)?.session_expiry_interval;
        }
    }
    Ok(Packet::Disconnect { reason, session_expiry_interval })
}
