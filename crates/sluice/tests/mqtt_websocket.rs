//! MQTT over WebSocket (`--mqtt-ws-addr`, subprotocol `mqtt`): paho-mqtt's websockets
//! transport (3.1.1 and 5.0) publishes at QoS 1 into records kcat reads (key = MQTT topic) and
//! receives, on a wildcard subscription, what mosquitto_pub publishes over TCP; packets split
//! across WebSocket messages or packed into one are read as over TCP; keepalive applies; an
//! upgrade without the `mqtt` subprotocol, at an unknown path, garbage, a text frame or an
//! oversized message closes that connection only, and the broker keeps serving; both
//! transports share sessions, so a TCP CONNECT with a WebSocket client's id takes its place.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use mqtt_common::{connect_packet, mosquitto_pub, RawClient, CLIENT_TIMEOUT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest one paho run may take: connect, subscribe, publish, a mosquitto_pub, two deliveries.
const PAHO_TIMEOUT: Duration = Duration::from_secs(45);
/// Longest the raw client waits for the server to answer or close.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// paho-mqtt over WebSocket: subscribes to `ws/+/temp` at QoS 1, publishes at QoS 1 (waits
/// for the PUBACK), has mosquitto_pub publish over TCP, and exits 0 once both messages came back.
const PAHO_SCRIPT: &str = r#"
import json, subprocess, sys, threading
import paho.mqtt.client as mqtt

ws_port, tcp_port, version, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
expected = {f"ws/{tag}-paho/temp": f"{tag}-from-paho", f"ws/{tag}-tcp/temp": f"{tag}-from-tcp"}
got, connected, subscribed, done = {}, threading.Event(), threading.Event(), threading.Event()

def on_connect(client, userdata, flags, reason, properties):
    if not reason.is_failure:
        connected.set()

def on_subscribe(client, userdata, mid, reasons, properties):
    if all(not r.is_failure for r in reasons):
        subscribed.set()

def on_message(client, userdata, msg):
    got[msg.topic] = msg.payload.decode()
    if all(got.get(t) == p for t, p in expected.items()):
        done.set()

protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ws-{tag}", protocol=protocol,
                     transport="websockets")
client.ws_set_options(path="/mqtt")
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
client.connect("127.0.0.1", ws_port, keepalive=10)
client.loop_start()
assert connected.wait(15), "no CONNACK"
client.subscribe("ws/+/temp", qos=1)
assert subscribed.wait(15), "no SUBACK"
info = client.publish(f"ws/{tag}-paho/temp", f"{tag}-from-paho", qos=1)
info.wait_for_publish(15)
assert info.is_published(), "no PUBACK"
subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", tcp_port, "-q", "1",
                "-t", f"ws/{tag}-tcp/temp", "-m", f"{tag}-from-tcp"], check=True, timeout=30)
ok = done.wait(20)
print(json.dumps(got))
client.disconnect()
client.loop_stop()
sys.exit(0 if ok else 1)
"#;

#[test]
fn paho_over_websocket_publishes_into_the_log_and_receives_on_a_wildcard() {
    let broker = Broker::start(&[]);
    for version in ["4", "5"] {
        let tag = format!("v{version}");
        let mut cmd = Command::new("python3");
        cmd.args(["-c", PAHO_SCRIPT, &broker.mqtt_ws_port().to_string(), &broker.mqtt_port().to_string()])
            .args([version, &tag])
            .stdin(Stdio::null());
        let out = run_ok(&mut cmd, PAHO_TIMEOUT);
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(got.contains(&format!("{tag}-from-tcp")), "paho received: {got}");
    }
    let out = run_ok(
        Command::new("kcat").args([
            "-C",
            "-b",
            &broker.bootstrap(),
            "-t",
            "ws",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k|%s\\n",
        ]),
        CLIENT_TIMEOUT,
    );
    let records = String::from_utf8_lossy(&out.stdout);
    for tag in ["v4", "v5"] {
        let record = format!("ws/{tag}-paho/temp|{tag}-from-paho");
        assert!(records.lines().any(|l| l == record), "{record} missing from {records}");
    }
}

#[test]
fn bad_upgrades_and_frames_close_that_connection_only() {
    let broker = Broker::start(&["--mqtt-max-packet-bytes", "4096"]);
    let port = broker.mqtt_ws_port();

    // No `mqtt` subprotocol, or an unknown path: refused with an HTTP error, then closed.
    let (mut stream, head) = upgrade(port, "/mqtt", None);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(read_until_closed(&mut stream), "closed after a refused upgrade");
    let (mut stream, head) = upgrade(port, "/elsewhere", Some("mqtt"));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(read_until_closed(&mut stream), "closed after a refused upgrade");

    // Not HTTP at all.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    let _ = stream.write_all(b"\x10\xff\xff\xff\x7fgarbage\r\n\r\n");
    assert!(read_until_closed(&mut stream), "closed after garbage");

    // A text frame: close 1003 (unsupported data).
    let mut ws = accepted(port, "/mqtt");
    send_frame(&mut ws, OPCODE_TEXT, b"hello");
    assert_eq!(read_close_code(&mut ws), Some(1003));

    // A message over --mqtt-max-packet-bytes: close 1009 (too big).
    let mut ws = accepted(port, "/");
    send_frame(&mut ws, OPCODE_BINARY, &[0u8; 5000]);
    assert_eq!(read_close_code(&mut ws), Some(1009));

    // Keepalive as over TCP: 1 s keepalive, silence, closed.
    let mut ws = accepted(port, "/mqtt");
    send_frame(&mut ws, OPCODE_BINARY, &connect_packet(4, 1, "ws-idle"));
    assert_eq!(read_binary(&mut ws), vec![0x20, 2, 0, 0], "CONNACK");
    assert!(read_close_code(&mut ws).is_some(), "keepalive expiry closes the WebSocket");

    // Still serving: a CONNECT split over two messages, then a QoS 0 PUBLISH and a PINGREQ
    // packed into one message, read as one byte stream.
    let mut ws = accepted(port, "/mqtt");
    let connect = connect_packet(4, 30, "ws-split");
    let (first, second) = connect.split_at(5);
    send_frame(&mut ws, OPCODE_BINARY, first);
    send_frame(&mut ws, OPCODE_BINARY, second);
    assert_eq!(read_binary(&mut ws), vec![0x20, 2, 0, 0], "CONNACK");
    let mut packed = vec![0x30, 9, 0, 5, b'w', b's', b'/', b'r', b'w', b'h', b'i'];
    packed.extend_from_slice(&[0xC0, 0]);
    send_frame(&mut ws, OPCODE_BINARY, &packed);
    assert_eq!(read_binary(&mut ws), vec![0xD0, 0], "PINGRESP after the packed QoS 0 PUBLISH");
    mosquitto_pub(&broker, &["-t", "ws/tcp/still", "-m", "serving", "-q", "1"]);
}

#[test]
fn a_tcp_client_takes_over_a_websocket_clients_id() {
    let broker = Broker::start(&[]);
    let mut ws = accepted(broker.mqtt_ws_port(), "/mqtt");
    send_frame(&mut ws, OPCODE_BINARY, &connect_packet(4, 30, "shared-id"));
    assert_eq!(read_binary(&mut ws), vec![0x20, 2, 0, 0], "CONNACK over WebSocket");
    let mut tcp = RawClient::connect(&broker);
    tcp.send(&connect_packet(4, 30, "shared-id"));
    assert_eq!(tcp.read_exact(4), vec![0x20, 2, 0, 0], "CONNACK over TCP");
    assert_eq!(read_close_code(&mut ws), Some(1000), "the WebSocket client is taken over");
}

const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;

/// Sends an HTTP upgrade to `path` offering `protocol`; returns the stream and the response head.
fn upgrade(port: u16, path: &str, protocol: Option<&str>) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect ws port");
    stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
    let offer = protocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// An accepted upgrade at `path`: the response names the `mqtt` subprotocol.
fn accepted(port: u16, path: &str) -> TcpStream {
    let (stream, head) = upgrade(port, path, Some("mqttv3.1, mqtt"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-protocol: mqtt\r\n"), "{head}");
    stream
}

/// Sends one masked (client) frame with FIN set.
fn send_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let _ = stream.write_all(&frame);
}

/// Reads one server frame (unmasked, payload under 64 KiB): its opcode and payload.
fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).ok()?;
            usize::from(u16::from_be_bytes(ext))
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x0f, payload))
}

/// The next binary message's payload.
fn read_binary(stream: &mut TcpStream) -> Vec<u8> {
    match read_frame(stream) {
        Some((OPCODE_BINARY, payload)) => payload,
        other => panic!("expected a binary message, got {other:?}"),
    }
}

/// Skips binary messages until a close frame; returns its status code (`None` if the
/// connection ended without one). Then the connection must be closed.
fn read_close_code(stream: &mut TcpStream) -> Option<u16> {
    for _ in 0..100 {
        match read_frame(stream)? {
            (OPCODE_CLOSE, payload) if payload.len() >= 2 => {
                assert!(read_until_closed(stream), "closed after the close frame");
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
            (OPCODE_CLOSE, _) => return Some(1005),
            _ => {}
        }
    }
    None
}

/// Whether the server closes the connection within the read timeout.
fn read_until_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}
