//! The codec against hand-built packets: what the spec calls malformed or a protocol error
//! gets its reason code, and no byte string makes it panic.

use super::*;
use bytes::Bytes;

fn frame(first: u8, body: &[u8]) -> Bytes {
    let mut out = vec![first];
    put_var_int(&mut out, body.len());
    out.extend_from_slice(body);
    Bytes::from(out)
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

fn connect_body(level: u8, flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = string("MQTT");
    body.extend_from_slice(&[level, flags, 0, 60]);
    if level == 5 {
        body.extend_from_slice(properties);
    }
    body.extend_from_slice(payload);
    body
}

fn reason_of(frame: Bytes, version: Version) -> Reason {
    decode_packet(frame, version).expect_err("must be refused").reason
}

#[test]
fn fixed_header_waits_for_bytes_and_bounds_the_packet() {
    assert_eq!(fixed_header(&[0x30], 100), Ok(None));
    assert_eq!(fixed_header(&[0x30, 0x80], 100), Ok(None));
    let header = fixed_header(&[0x30, 0x7F], 200).expect("ok").expect("complete");
    assert_eq!((header.header_len, header.remaining_len), (2, 127));
    assert_eq!(fixed_header(&[0x30, 0x7F], 100).expect_err("too large").reason, Reason::PacketTooLarge);
    // 268,435,455 is the largest length; a fifth length byte is malformed.
    let header = fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], usize::MAX).expect("ok").expect("complete");
    assert_eq!(header.remaining_len, 268_435_455);
    let err = fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], usize::MAX).expect_err("five bytes");
    assert_eq!(err.reason, Reason::MalformedPacket);
}

#[test]
fn connect_of_both_versions() {
    let mut payload = string("dev-1");
    payload.extend(string("will/topic"));
    payload.extend(string("bye"));
    // Clean session, will at QoS 1, retained.
    let v311 = frame(0x10, &connect_body(4, 0x02 | 0x04 | 0x08 | 0x20, &[], &payload));
    let Packet::Connect(c) = decode_packet(v311, Version::V311).expect("3.1.1") else { panic!("not CONNECT") };
    assert_eq!((c.version, c.clean_start, c.keep_alive_secs, c.client_id.as_str()), (Version::V311, true, 60, "dev-1"));
    let will = c.will.expect("will");
    assert_eq!((will.topic.as_str(), will.qos, will.retain), ("will/topic", QoS::AtLeastOnce, true));

    // v5: receive maximum 10 and a user property; the will has an empty property block.
    let properties = [10, 0x21, 0, 10, 0x26, 0, 1, b'k', 0, 1, b'v'];
    let mut payload = string("dev-2");
    payload.push(0);
    payload.extend(string("w"));
    payload.extend(string("x"));
    let v5 = frame(0x10, &connect_body(5, 0x04, &properties, &payload));
    let Packet::Connect(c) = decode_packet(v5, Version::V311).expect("5.0") else { panic!("not CONNECT") };
    assert_eq!(c.version, Version::V5);
    assert_eq!(c.properties.receive_maximum, Some(10));
    assert_eq!(c.properties.user, vec![("k".to_string(), "v".to_string())]);
}

#[test]
fn connect_refusals_carry_their_reason() {
    let id = string("c");
    assert_eq!(reason_of(frame(0x10, &connect_body(4, 0x01, &[], &id)), Version::V311), Reason::MalformedPacket);
    assert_eq!(
        reason_of(frame(0x10, &connect_body(6, 0x02, &[], &id)), Version::V311),
        Reason::UnsupportedProtocolVersion
    );
    let mut mqisdp = string("MQIsdp");
    mqisdp.extend_from_slice(&[3, 2, 0, 60]);
    mqisdp.extend(&id);
    assert_eq!(reason_of(frame(0x10, &mqisdp), Version::V311), Reason::UnsupportedProtocolVersion);
    // Will QoS without a will, and a password without a user name (3.1.1).
    assert_eq!(reason_of(frame(0x10, &connect_body(4, 0x08, &[], &id)), Version::V311), Reason::MalformedPacket);
    assert_eq!(reason_of(frame(0x10, &connect_body(4, 0x40, &[], &id)), Version::V311), Reason::MalformedPacket);
    // A client id that is not UTF-8.
    let bad_id = [0, 2, 0xC3, 0x28];
    let err = reason_of(frame(0x10, &connect_body(4, 0x02, &[], &bad_id)), Version::V311);
    assert_eq!(err, Reason::ClientIdentifierNotValid);
    // Reserved flags on the fixed header.
    assert_eq!(reason_of(frame(0x11, &connect_body(4, 0x02, &[], &id)), Version::V311), Reason::MalformedPacket);
    assert_eq!(peek_protocol_level(&frame(0x10, &connect_body(5, 0x02, &[0], &id))), Some(5));
}

#[test]
fn publish_flags_topics_and_properties() {
    let mut body = string("a/b");
    body.extend_from_slice(&[0, 7]);
    body.extend_from_slice(b"payload");
    let Packet::Publish(p) = decode_packet(frame(0x3B, &body), Version::V311).expect("QoS 1 dup retain") else {
        panic!("not PUBLISH")
    };
    assert_eq!((p.dup, p.qos, p.retain, p.packet_id), (true, QoS::AtLeastOnce, true, Some(7)));
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("a/b", &b"payload"[..]));
    assert_eq!(reason_of(frame(0x36, &body), Version::V311), Reason::MalformedPacket, "QoS 3");
    assert_eq!(reason_of(frame(0x38, &body), Version::V311), Reason::MalformedPacket, "DUP on QoS 0");
    let mut zero_id = string("a");
    zero_id.extend_from_slice(&[0, 0]);
    assert_eq!(reason_of(frame(0x32, &zero_id), Version::V311), Reason::MalformedPacket, "packet id 0");
    assert_eq!(reason_of(frame(0x30, &string("a/+")), Version::V311), Reason::TopicNameInvalid);
    assert_eq!(reason_of(frame(0x30, &string("")), Version::V311), Reason::TopicNameInvalid);

    let mut v5 = string("t");
    v5.extend_from_slice(&[7, 0x26, 0, 1, b'k', 0, 1, b'v']);
    v5.extend_from_slice(b"x");
    let Packet::Publish(p) = decode_packet(frame(0x30, &v5), Version::V5).expect("v5") else { panic!() };
    assert_eq!(p.properties.user, vec![("k".to_string(), "v".to_string())]);
    let mut twice = string("t");
    twice.extend_from_slice(&[6, 0x23, 0, 1, 0x23, 0, 2]);
    assert_eq!(reason_of(frame(0x30, &twice), Version::V5), Reason::ProtocolError, "repeated property");
    let mut unknown = string("t");
    unknown.extend_from_slice(&[2, 0x7F, 0]);
    assert_eq!(reason_of(frame(0x30, &unknown), Version::V5), Reason::MalformedPacket, "unknown property");
    let mut overrun = string("t");
    overrun.extend_from_slice(&[9, 0x23]);
    assert_eq!(reason_of(frame(0x30, &overrun), Version::V5), Reason::MalformedPacket, "property length");
}

#[test]
fn subscribe_unsubscribe_and_the_rest() {
    let mut body = vec![0, 1];
    body.extend(string("a/#"));
    body.push(1);
    let Packet::Subscribe(s) = decode_packet(frame(0x82, &body), Version::V311).expect("SUBSCRIBE") else { panic!() };
    assert_eq!((s.packet_id, s.requests[0].filter.as_str(), s.requests[0].qos), (1, "a/#", QoS::AtLeastOnce));
    assert_eq!(reason_of(frame(0x80, &body), Version::V311), Reason::MalformedPacket, "SUBSCRIBE flags");
    assert_eq!(reason_of(frame(0x82, &[0, 1]), Version::V311), Reason::ProtocolError, "no filter");
    let mut options = vec![0, 1];
    options.extend(string("a"));
    options.push(0x04);
    assert_eq!(reason_of(frame(0x82, &options), Version::V311), Reason::MalformedPacket, "3.1.1 reserved bits");
    assert!(decode_packet(frame(0x82, &[&[0, 1, 0][..], &options[2..]].concat()), Version::V5).is_ok());
    assert_eq!(decode_packet(frame(0xC0, &[]), Version::V311), Ok(Packet::PingReq));
    assert_eq!(reason_of(frame(0xC0, &[0]), Version::V311), Reason::MalformedPacket, "PINGREQ with a body");
    assert_eq!(reason_of(frame(0x62, &[0, 5, 0]), Version::V311), Reason::MalformedPacket, "3.1.1 PUBREL extra");
    assert!(decode_packet(frame(0x62, &[0, 5, 0x92]), Version::V5).is_ok());
    assert_eq!(reason_of(frame(0x60, &[0, 5]), Version::V311), Reason::MalformedPacket, "PUBREL flags");
    assert_eq!(reason_of(frame(0x20, &[0, 0]), Version::V311), Reason::ProtocolError, "CONNACK from a client");
    assert_eq!(reason_of(frame(0x00, &[]), Version::V311), Reason::MalformedPacket, "type 0");
    assert_eq!(reason_of(frame(0xF0, &[]), Version::V311), Reason::MalformedPacket, "AUTH in 3.1.1");
}

#[test]
fn server_packets_decode_as_clients_read_them() {
    let ack = ConnAck { receive_maximum: 5, maximum_packet_size: 1000, ..ConnAck::default() };
    assert_eq!(encode_connack(Version::V311, &ack), vec![0x20, 2, 0, 0]);
    let refused = ConnAck { reason: Some(Reason::UnsupportedProtocolVersion), ..ConnAck::default() };
    assert_eq!(encode_connack(Version::V311, &refused), vec![0x20, 2, 0, 1]);
    assert_eq!(encode_connack(Version::V5, &refused), vec![0x20, 3, 0, 0x84, 0]);
    assert_eq!(encode_simple(kind::PUBACK, Version::V5, 9, Reason::Success), vec![0x40, 2, 0, 9]);
    assert_eq!(encode_simple(kind::PUBREL, Version::V311, 9, Reason::Success), vec![0x62, 2, 0, 9]);
    assert_eq!(encode_sub_acks(kind::SUBACK, Version::V5, 3, &[1, 0x8F]), vec![0x90, 5, 0, 3, 0, 1, 0x8F]);
    assert_eq!(encode_sub_acks(kind::UNSUBACK, Version::V311, 3, &[0]), vec![0xB0, 2, 0, 3]);
    let props = [("k".to_string(), "v".to_string())];
    let publish = OutgoingPublish {
        topic: "a/b",
        qos: QoS::AtLeastOnce,
        dup: false,
        retain: false,
        packet_id: 4,
        payload: b"hi",
        user_properties: &props,
        message_expiry: Some(30),
        subscription_ids: &[7],
    };
    let bytes = encode_publish(Version::V5, &publish);
    // The server's own PUBLISH reads back with the client decoder (same layout both ways).
    let Packet::Publish(p) = decode_packet(Bytes::from(bytes), Version::V5).expect("round trip") else { panic!() };
    assert_eq!((p.topic.as_str(), p.packet_id, &p.payload[..]), ("a/b", Some(4), &b"hi"[..]));
    assert_eq!(p.properties.message_expiry_interval, Some(30));
    assert_eq!(p.properties.user, props.to_vec());
}

#[test]
fn no_prefix_or_byte_flip_of_a_valid_packet_panics() {
    let mut payload = string("dev");
    payload.push(0);
    payload.extend(string("w"));
    payload.extend(string("x"));
    let mut publish = string("a/b");
    publish.extend_from_slice(&[0, 1, 5, 0x26, 0, 1, b'k', 0]);
    let samples = [
        frame(0x10, &connect_body(5, 0x04 | 0x02, &[3, 0x21, 0, 1], &payload)),
        frame(0x32, &publish),
        frame(0x82, &[0, 1, 0, 0, 1, b'#', 0]),
    ];
    for sample in samples {
        for version in [Version::V311, Version::V5] {
            for len in 0..sample.len() {
                let _ = decode_packet(sample.slice(..len), version);
                let _ = peek_protocol_level(&sample[..len]);
            }
            for at in 0..sample.len() {
                for bit in 0..8 {
                    let mut flipped = sample.to_vec();
                    flipped[at] ^= 1 << bit;
                    let _ = decode_packet(Bytes::from(flipped.clone()), version);
                    let _ = fixed_header(&flipped, 1 << 20);
                }
            }
        }
    }
}

#[test]
fn subscription_identifiers_and_the_v5_extras_seed() {
    // A subscription identifier of 0 is a protocol error (§3.8.2.1.2); 7 is taken.
    let mut body = vec![0, 2, 2, 0x0B, 0];
    body.extend(string("a/+"));
    body.push(1);
    assert_eq!(reason_of(frame(0x82, &body), Version::V5), Reason::ProtocolError);
    body[4] = 7;
    let Ok(Packet::Subscribe(s)) = decode_packet(frame(0x82, &body), Version::V5) else { panic!("subscribe") };
    assert_eq!(s.properties.subscription_identifier, Some(7));
    // The fuzz seed for these properties decodes as the fuzz target reads it.
    let seed = include_bytes!("../../../../fuzz/corpus/mqtt_packet/v5_alias_expiry_subid_share");
    assert!(crate::fuzz_entry::decode_stream(seed) >= 4);
}
