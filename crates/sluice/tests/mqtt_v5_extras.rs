//! MQTT 5.0 extras with paho-mqtt and mosquitto_pub's `-D` properties: CONNACK announces a
//! Topic Alias Maximum and subscription identifiers; a PUBLISH sets a topic alias and the next
//! uses it with an empty topic; a subscriber gets the identifiers of every subscription a
//! message matched; a message expiry interval travels with the record and is sent, counted
//! down, on delivery, and a message that expired while a persistent session was away is not
//! delivered; an alias past the maximum closes the connection with DISCONNECT 0x94; `/metrics`
//! counts MQTT sessions, subscriptions and retained messages.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use mqtt_common::{connect_packet, RawClient};
use std::process::{Command, Stdio};
use std::time::Duration;

const PAHO_TIMEOUT: Duration = Duration::from_secs(45);

/// Prints one JSON object: the CONNACK's announcements, what the subscriber received, and
/// what a resumed session received after a message expired meanwhile.
const PAHO_SCRIPT: &str = r#"
import json, subprocess, sys, threading, time
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

port = sys.argv[1]
lock = threading.Lock()

def client(client_id, received, clean=True, expiry=None):
    connected, subscribed = threading.Event(), threading.Event()
    connack = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    def on_connect(cl, userdata, flags, reason, props):
        connack["topic_alias_maximum"] = getattr(props, "TopicAliasMaximum", 0)
        connack["subscription_ids"] = getattr(props, "SubscriptionIdentifierAvailable", None)
        connected.set()
    def on_subscribe(cl, userdata, mid, reasons, props):
        subscribed.set()
    def on_message(cl, userdata, msg):
        p = msg.properties
        with lock:
            received.append({"topic": msg.topic, "payload": msg.payload.decode(),
                             "expiry": getattr(p, "MessageExpiryInterval", None),
                             "ids": sorted(getattr(p, "SubscriptionIdentifier", []) or [])})
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    props = None
    if expiry is not None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
    c.connect("127.0.0.1", int(port), keepalive=30, clean_start=clean, properties=props)
    c.loop_start()
    assert connected.wait(15), "no CONNACK"
    return c, connack, subscribed

def subscribe(c, subscribed, topic, sub_id=None):
    subscribed.clear()
    props = None
    if sub_id is not None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = sub_id
    c.subscribe(topic, qos=1, properties=props)
    assert subscribed.wait(15), "no SUBACK"

def wait(what, cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            if cond():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")

def publish(c, topic, payload, **properties):
    props = Properties(PacketTypes.PUBLISH)
    for k, v in properties.items():
        setattr(props, k, v)
    info = c.publish(topic, payload, qos=1, properties=props)
    info.wait_for_publish(15)
    assert info.is_published(), f"{payload} not acknowledged"

got = []
sub, connack, subscribed = client("v5x-sub", got)
subscribe(sub, subscribed, "v5x/#", 7)
subscribe(sub, subscribed, "v5x/+/t", 9)
pub, _, _ = client("v5x-pub", [])
publish(pub, "v5x/a/t", "aliased-1", TopicAlias=3)
publish(pub, "", "aliased-2", TopicAlias=3)
publish(pub, "v5x/b", "expiring", MessageExpiryInterval=120)
# mosquitto_pub with -D properties: a topic alias and an expiry interval.
subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5", "-q", "1", "-t", "v5x/m/t",
                "-m", "from-mosquitto", "-D", "publish", "message-expiry-interval", "90",
                "-D", "publish", "topic-alias", "2"], check=True, timeout=30)
wait("four messages", lambda: len(got) >= 4)

# A persistent session away while a message with a 1 s expiry is published, then one without.
away = []
c, _, subscribed = client("v5x-away", away, clean=True, expiry=300)
subscribe(c, subscribed, "v5x/away")
c.disconnect(); c.loop_stop()
publish(pub, "v5x/away", "short-lived", MessageExpiryInterval=1)
published_at = time.time()
publish(pub, "v5x/away", "lasting")
# The expiry is wall-clock time: wait until it has passed (bounded), then resume.
while time.time() < published_at + 1.5:
    time.sleep(0.1)
c, _, _ = client("v5x-away", away, clean=False, expiry=300)
wait("the lasting message", lambda: any(m["payload"] == "lasting" for m in away))
import urllib.request
metrics = urllib.request.urlopen(f"http://{sys.argv[2]}/metrics", timeout=10).read().decode()
figures = {l.split()[0]: float(l.split()[1]) for l in metrics.splitlines() if l.startswith("sluice_mqtt_")}
print(json.dumps({"connack": connack, "got": got, "away": away, "metrics": figures}))
for cl in (sub, pub, c):
    cl.disconnect(); cl.loop_stop()
"#;

#[test]
fn topic_aliases_subscription_identifiers_and_message_expiry() {
    let broker = Broker::start(&[]);
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PAHO_SCRIPT, &broker.mqtt_port().to_string(), &broker.http_addr()]).stdin(Stdio::null());
    let out = run_ok(&mut cmd, PAHO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("paho figures");
    assert_eq!(v["connack"]["topic_alias_maximum"], 64, "{v}");
    assert_eq!(v["connack"]["subscription_ids"], 1, "{v}");
    let by_payload = |payload: &str| {
        v["got"].as_array().and_then(|g| g.iter().find(|m| m["payload"] == payload)).cloned().unwrap_or_default()
    };
    // The alias resolved to the topic it was set with; both subscriptions' identifiers came.
    for payload in ["aliased-1", "aliased-2"] {
        let m = by_payload(payload);
        assert_eq!(m["topic"], "v5x/a/t", "{v}");
        assert_eq!(m["ids"], serde_json::json!([7, 9]), "{v}");
    }
    let expiring = by_payload("expiring");
    assert_eq!(expiring["ids"], serde_json::json!([7]), "{v}");
    let left = expiring["expiry"].as_u64().expect("expiry sent on delivery");
    assert!((1..=120).contains(&left), "{v}");
    let mosquitto = by_payload("from-mosquitto");
    assert_eq!(mosquitto["topic"], "v5x/m/t", "{v}");
    assert!(mosquitto["expiry"].as_u64().is_some_and(|s| (1..=90).contains(&s)), "{v}");
    // While the subscriber (two filters), the publisher and the resumed session (one filter)
    // are connected: three sessions, three subscriptions, no retained message.
    let metrics = &v["metrics"];
    assert_eq!(metrics["sluice_mqtt_sessions"], 3.0, "{v}");
    assert_eq!(metrics["sluice_mqtt_subscriptions"], 3.0, "{v}");
    assert_eq!(metrics["sluice_mqtt_retained_messages"], 0.0, "{v}");
    // The resumed session got the lasting message, not the one that expired before it.
    let away: Vec<&str> = v["away"].as_array().expect("away").iter().filter_map(|m| m["payload"].as_str()).collect();
    assert_eq!(away, vec!["lasting"], "{v}");
}

#[test]
fn an_alias_past_the_maximum_closes_with_0x94() {
    let broker = Broker::start(&[]);
    let mut client = RawClient::connect(&broker);
    client.send(&connect_packet(5, 60, "alias-bad"));
    // PUBLISH QoS 0 to "a" with Topic Alias 0xFFFF (past the announced 64), payload "x".
    client.send(&[0x30, 8, 0, 1, b'a', 3, 0x23, 0xFF, 0xFF, b'x']);
    let got = client.read_until_closed().expect("the server closes the connection");
    assert!(got.ends_with(&[0xE0, 2, 0x94, 0]), "DISCONNECT 0x94 last: {got:?}");
}
