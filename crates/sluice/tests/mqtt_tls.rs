//! MQTT over TLS (`--mqtt-tls-addr`, MQTT's 8883) and WebSocket over TLS (`--mqtt-wss-addr`)
//! with the broker's `--ssl-*` certificates: mosquitto_sub and mosquitto_pub verify the server
//! against the test CA (`--cafile`), with and without a client certificate (client
//! certificates requested, not required), and exchange a QoS 1 message; a client that does not
//! trust the CA is refused at the handshake; paho-mqtt over `wss://` publishes and receives;
//! and TLS and plain clients share the same topics.

mod common;
mod mqtt_common;

use common::certs::TestPki;
use common::{free_port, run_bounded, run_ok, Broker, BrokerOpts};
use mqtt_common::{mosquitto_pub, CLIENT_TIMEOUT};
use std::process::{Command, Stdio};
use std::time::Duration;

struct TlsBroker {
    broker: Broker,
    pki: TestPki,
    tls_port: u16,
    wss_port: u16,
}

fn start(dir: &std::path::Path) -> TlsBroker {
    let pki = TestPki::create(dir);
    let (tls_port, wss_port) = (free_port(), free_port());
    let args = vec![
        "--mqtt-tls-addr".to_string(),
        format!("127.0.0.1:{tls_port}"),
        "--mqtt-wss-addr".into(),
        format!("127.0.0.1:{wss_port}"),
        "--ssl-cert".into(),
        pki.server_cert.display().to_string(),
        "--ssl-key".into(),
        pki.server_key.display().to_string(),
        "--ssl-client-ca".into(),
        pki.ca_cert.display().to_string(),
        "--ssl-client-auth".into(),
        "requested".into(),
    ];
    let broker = Broker::start_with(BrokerOpts { args, ..BrokerOpts::default() });
    TlsBroker { broker, pki, tls_port, wss_port }
}

/// mosquitto over TLS on the broker's TLS port with `extra` flags.
fn mosquitto(tool: &str, b: &TlsBroker, extra: &[&str]) -> Command {
    let mut cmd = Command::new(tool);
    cmd.args(["-h", "127.0.0.1", "-p", &b.tls_port.to_string(), "--cafile", &b.pki.ca_cert.display().to_string()])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

#[test]
fn mosquitto_over_tls_with_and_without_a_client_certificate() {
    let dir = tempfile::tempdir().expect("pki dir");
    let b = start(dir.path());
    let client = b.pki.client("device-1", "/CN=device-1");
    let (cert, key) = (client.cert.display().to_string(), client.key.display().to_string());
    // The subscriber (v5, no client certificate) prints what it gets; the publisher (3.1.1)
    // shows a client certificate, and publishes again until the subscriber has subscribed.
    let out_path = dir.path().join("sub.out");
    let mut sub = mosquitto("mosquitto_sub", &b, &["-t", "secure/+", "-q", "1", "-V", "mqttv5", "-F", "%t %p"]);
    sub.stdout(std::fs::File::create(&out_path).expect("sub output")).stderr(Stdio::null());
    common::use_system_libraries(&mut sub);
    let mut child = sub.spawn().expect("spawn mosquitto_sub");
    let mut attempts = 0;
    common::wait_until(Duration::from_secs(30), "mosquitto_sub over TLS to print the message", || {
        attempts += 1;
        if attempts % 10 == 1 {
            let mut publish =
                mosquitto("mosquitto_pub", &b, &["--cert", &cert, "--key", &key, "-t", "secure/door", "-q", "1"]);
            publish.args(["-m", "opened"]);
            run_ok(&mut publish, CLIENT_TIMEOUT);
        }
        std::fs::read_to_string(&out_path).unwrap_or_default().lines().any(|l| l == "secure/door opened")
    });
    // Only the child this test spawned, by its own handle.
    let _ = child.kill();
    let _ = child.wait();

    // A client that does not trust the broker's CA is refused at the handshake.
    let mut untrusting = Command::new("mosquitto_pub");
    untrusting.args(["-h", "127.0.0.1", "-p", &b.tls_port.to_string(), "--cafile"]);
    untrusting.arg(&client.cert).args(["-t", "secure/x", "-m", "no", "-q", "1"]).stdin(Stdio::null());
    common::use_system_libraries(&mut untrusting);
    let refused = run_bounded(&mut untrusting, CLIENT_TIMEOUT);
    assert!(!refused.status.success(), "a client not trusting the CA must fail");

    // TLS publishes land in the same topic plain clients use.
    let plain = mqtt_common::Subscriber::start(&b.broker, &["secure/#"], &[], "secure/probe");
    let mut publish = mosquitto("mosquitto_pub", &b, &["-t", "secure/window", "-m", "closed", "-q", "1"]);
    run_ok(&mut publish, CLIENT_TIMEOUT);
    plain.wait_for("secure/window closed");
}

/// paho-mqtt over wss:// (CA-verified): subscribes, has mosquitto_pub publish over plain TCP,
/// publishes itself at QoS 1, and exits 0 once both came back.
const PAHO_WSS: &str = r#"
import ssl, subprocess, sys, threading
import paho.mqtt.client as mqtt

wss_port, tcp_port, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
want = {"wss/tcp": "from-tcp", "wss/paho": "from-paho"}
got, subscribed, done = {}, threading.Event(), threading.Event()

def on_subscribe(client, userdata, mid, reasons, properties):
    subscribed.set()

def on_message(client, userdata, msg):
    got[msg.topic] = msg.payload.decode()
    if got == want:
        done.set()

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wss-1", protocol=mqtt.MQTTv5, transport="websockets")
c.ws_set_options(path="/mqtt")
c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
c.on_subscribe, c.on_message = on_subscribe, on_message
c.connect("127.0.0.1", wss_port, keepalive=10)
c.loop_start()
c.subscribe("wss/+", qos=1)
assert subscribed.wait(15), "no SUBACK over wss"
info = c.publish("wss/paho", "from-paho", qos=1)
info.wait_for_publish(15)
assert info.is_published(), "no PUBACK over wss"
subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", tcp_port, "-q", "1", "-t", "wss/tcp", "-m", "from-tcp"],
               check=True, timeout=30)
ok = done.wait(20)
print(got)
c.disconnect()
c.loop_stop()
sys.exit(0 if ok else 1)
"#;

#[test]
fn paho_over_wss_publishes_and_receives() {
    let dir = tempfile::tempdir().expect("pki dir");
    let b = start(dir.path());
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PAHO_WSS, &b.wss_port.to_string(), &b.broker.mqtt_port().to_string()])
        .arg(&b.pki.ca_cert)
        .stdin(Stdio::null());
    let out = run_ok(&mut cmd, Duration::from_secs(45));
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-tcp"));
    // The plain listener still serves.
    mosquitto_pub(&b.broker, &["-t", "wss/plain", "-m", "x", "-q", "1"]);
}
