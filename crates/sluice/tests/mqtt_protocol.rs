//! The MQTT listener's reactions to broken or hostile clients, as the spec asks: garbage
//! bytes, a packet before CONNECT, a remaining length over the packet limit, a second
//! CONNECT, an unsupported protocol level and a silent client past 1.5 × its keepalive
//! each close that one connection (with the v5 reason code where there is one), and the
//! broker goes on serving mosquitto clients.

mod common;
mod mqtt_common;

use common::Broker;
use mqtt_common::{connect_packet, mosquitto_pub, RawClient};
use std::time::{Duration, Instant};

fn connected(broker: &Broker, level: u8, keep_alive: u16, client_id: &str) -> RawClient {
    let mut client = RawClient::connect(broker);
    client.send(&connect_packet(level, keep_alive, client_id));
    let head = client.read_exact(2);
    assert_eq!(head[0], 0x20, "CONNACK expected, got {head:?}");
    let rest = client.read_exact(usize::from(head[1]));
    assert_eq!(&rest[..2], &[0, 0], "CONNECT accepted");
    client
}

#[test]
fn bad_input_closes_only_that_connection() {
    let mut broker = Broker::start(&["--mqtt-max-packet-bytes", "4096"]);

    // Garbage: not a CONNECT, so closed without an answer.
    let mut garbage = RawClient::connect(&broker);
    garbage.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(garbage.read_until_closed(), Some(Vec::new()), "garbage closes unanswered");

    // A PUBLISH before CONNECT.
    let mut early = RawClient::connect(&broker);
    early.send(&[0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i']);
    assert_eq!(early.read_until_closed(), Some(Vec::new()), "PUBLISH before CONNECT closes");

    // A remaining length over the limit on a v5 connection: DISCONNECT 0x95, before the body.
    let mut large = connected(&broker, 5, 60, "large");
    large.send(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]);
    assert_eq!(large.read_until_closed(), Some(vec![0xE0, 2, 0x95, 0]), "packet too large");
    // The same on 3.1.1 (no server DISCONNECT there): closed.
    let mut large = connected(&broker, 4, 60, "large-311");
    large.send(&[0x30, 0x80, 0x80, 0x80, 0x01]);
    assert_eq!(large.read_until_closed(), Some(Vec::new()));

    // A five-byte remaining length is malformed: DISCONNECT 0x81.
    let mut malformed = connected(&broker, 5, 60, "malformed");
    malformed.send(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    assert_eq!(malformed.read_until_closed(), Some(vec![0xE0, 2, 0x81, 0]));

    // A second CONNECT is a protocol error: DISCONNECT 0x82.
    let mut twice = connected(&broker, 5, 60, "twice");
    twice.send(&connect_packet(5, 60, "twice"));
    assert_eq!(twice.read_until_closed(), Some(vec![0xE0, 2, 0x82, 0]));

    // Protocol level 6: refused with 3.1.1's "unacceptable protocol version" (code 1).
    let mut level6 = RawClient::connect(&broker);
    level6.send(&connect_packet(6, 60, "six"));
    assert_eq!(level6.read_until_closed(), Some(vec![0x20, 2, 0, 1]));

    // A publish topic with a wildcard on 3.1.1: closed.
    let mut wildcard = connected(&broker, 4, 60, "wild");
    wildcard.send(&[0x30, 0x05, 0x00, 0x03, b'a', b'/', b'+']);
    assert_eq!(wildcard.read_until_closed(), Some(Vec::new()));

    // A v5 client past the Receive Maximum CONNACK announced (128) with QoS 2 publishes it
    // never releases: every one taken is answered with PUBREC, then DISCONNECT 0x93.
    let mut greedy = connected(&broker, 5, 60, "greedy");
    let mut packets = Vec::new();
    for id in 1..=129u16 {
        let [hi, lo] = id.to_be_bytes();
        packets.extend_from_slice(&[0x34, 0x07, 0x00, 0x01, b'g', hi, lo, 0x00, b'x']);
    }
    greedy.send(&packets);
    let answer = greedy.read_until_closed().expect("closed");
    assert!(
        answer.ends_with(&[0xE0, 2, 0x93, 0]),
        "Receive Maximum exceeded: {:?}",
        &answer[answer.len().saturating_sub(8)..]
    );
    assert_eq!(answer.len(), 128 * 4 + 4, "128 PUBRECs before the DISCONNECT");

    // After all that, a real client still publishes and the broker still runs.
    mosquitto_pub(&broker, &["-t", "still/here", "-m", "ok", "-q", "1"]);
    mosquitto_pub(&broker, &["-t", "still/here", "-m", "ok", "-q", "2", "-V", "mqttv5"]);
    broker.assert_running();
}

#[test]
fn keepalive_ping_and_session_takeover() {
    let broker = Broker::start(&[]);
    // PINGREQ is answered, and keeps the connection open past its keepalive.
    let mut pinging = connected(&broker, 4, 1, "pinging");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(600));
        pinging.send(&[0xC0, 0]);
        assert_eq!(pinging.read_exact(2), vec![0xD0, 0], "PINGRESP");
    }

    // Silent for 1.5 × a 1 s keepalive: closed (v5 with DISCONNECT 0x8D Keep Alive timeout).
    let started = Instant::now();
    let mut silent = connected(&broker, 5, 1, "silent");
    assert_eq!(silent.read_until_closed(), Some(vec![0xE0, 2, 0x8D, 0]));
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed before 1.5 × keepalive");

    // A second connection with the same client id takes the session over: the first gets
    // DISCONNECT 0x8E (Session taken over) and is closed; the second stays.
    let mut first = connected(&broker, 5, 60, "device-42");
    let mut second = connected(&broker, 4, 60, "device-42");
    assert_eq!(first.read_until_closed(), Some(vec![0xE0, 2, 0x8E, 0]));
    second.send(&[0xC0, 0]);
    assert_eq!(second.read_exact(2), vec![0xD0, 0]);

    // A 3.1.1 CONNECT with an empty client id and no clean session: identifier rejected (2).
    let mut anonymous = RawClient::connect(&broker);
    let mut packet = connect_packet(4, 60, "");
    packet[9] = 0x00;
    anonymous.send(&packet);
    assert_eq!(anonymous.read_until_closed(), Some(vec![0x20, 2, 0, 2]));
}

/// Starts `mosquitto_sub` as a device with a will, and waits until the broker lists it.
fn device_with_will(broker: &Broker, id: &str, extra: &[&str]) -> std::process::Child {
    let mut cmd = std::process::Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string(), "-i", id, "-t", "commands/x"])
        .args(["--will-topic", &format!("status/{id}"), "--will-payload", "offline", "--will-qos", "1"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    common::use_system_libraries(&mut cmd);
    let child = cmd.spawn().expect("spawn mosquitto_sub");
    common::wait_until(Duration::from_secs(20), &format!("{id} to connect"), || {
        common::listed_clients(broker).iter().any(|c| c["protocol"] == "mqtt" && c["client_id"] == id)
    });
    child
}

#[test]
fn wills_are_published_when_a_client_vanishes_not_when_it_disconnects() {
    let broker = Broker::start(&[]);
    let watcher = mqtt_common::Subscriber::start(&broker, &["status/#"], &[], "status/probe");
    // A clean exit (DISCONNECT) drops the will.
    mosquitto_pub(
        &broker,
        &["-i", "tidy", "-t", "x/y", "-m", "1", "--will-topic", "status/tidy", "--will-payload", "offline"],
    );
    // A client killed without DISCONNECT: its will is published; a retained one is kept.
    let mut vanished = device_with_will(&broker, "dev-1", &[]);
    let mut retained = device_with_will(&broker, "dev-2", &["--will-retain", "-V", "mqttv5"]);
    // Only the children this test spawned, by their own handles.
    for child in [&mut vanished, &mut retained] {
        let _ = child.kill();
        let _ = child.wait();
    }
    watcher.wait_for("status/dev-1 offline");
    watcher.wait_for("status/dev-2 offline");
    assert!(!watcher.lines().iter().any(|l| l.starts_with("status/tidy")), "{:?}", watcher.lines());
    // The retained copy is stored beside the delivery, not before it: a subscriber that comes
    // after it is stored gets it (the gauge says when).
    common::wait_until(Duration::from_secs(20), "the retained will to be stored", || {
        let (_, metrics) = common::http(broker.http_port(), "GET", "/metrics", b"");
        metrics.lines().any(|l| l == "sluice_mqtt_retained_messages 1")
    });
    let later = mqtt_common::Subscriber::start(&broker, &["status/+"], &[], "status/probe-2");
    later.wait_for("status/dev-2 offline");
    assert!(!later.lines().iter().any(|l| l == "status/dev-1 offline"), "not retained: {:?}", later.lines());
}
