//! MQTT 5.0 session and subscription options with paho-mqtt: a persistent session whose
//! client received QoS 1 messages without acknowledging them (paho's manual ack) gets them
//! again on reconnecting, first, with DUP and their original packet ids, and not the one it
//! acknowledged; `/api/mqtt` counts what it has in flight and pending meanwhile. A No Local
//! subscription does not get the client's own publishes; Retain As Published keeps the
//! RETAIN flag a live message was published with (cleared without it); a retained message
//! with a Message Expiry Interval is served with what is left of it, and no more once it
//! expired.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use std::process::{Command, Stdio};
use std::time::Duration;

const PAHO_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints one JSON object with what each client received.
const PAHO_SCRIPT: &str = r#"
import json, sys, threading, time, urllib.request
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

port, http = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()

def wait(what, cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            if cond():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")

def client(client_id, received, clean=True, expiry=None, manual_ack=False):
    connected, subscribed = threading.Event(), threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                    manual_ack=manual_ack)
    def on_connect(cl, userdata, flags, reason, props):
        connected.set()
    def on_subscribe(cl, userdata, mid, reasons, props):
        subscribed.set()
    def on_message(cl, userdata, msg):
        with lock:
            received.append({"topic": msg.topic, "payload": msg.payload.decode(), "mid": msg.mid,
                             "dup": bool(msg.dup), "retain": bool(msg.retain), "qos": msg.qos,
                             "expiry": getattr(msg.properties, "MessageExpiryInterval", None)})
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    props = None
    if expiry is not None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
    c.connect("127.0.0.1", port, keepalive=30, clean_start=clean, properties=props)
    c.loop_start()
    assert connected.wait(15), "no CONNACK"
    c.subscribed = subscribed
    return c

def subscribe(c, topic, **options):
    c.subscribed.clear()
    c.subscribe(topic, options=SubscribeOptions(qos=1, **options))
    assert c.subscribed.wait(15), "no SUBACK"

def publish(c, topic, payload, retain=False, **properties):
    props = Properties(PacketTypes.PUBLISH)
    for k, v in properties.items():
        setattr(props, k, v)
    info = c.publish(topic, payload, qos=1, retain=retain, properties=props)
    info.wait_for_publish(15)
    assert info.is_published(), f"{payload} not acknowledged"

def session_status(client_id):
    status = json.load(urllib.request.urlopen(f"http://{http}/api/mqtt", timeout=10))
    return next((s for s in status["persistent_sessions"]["sessions"] if s["client_id"] == client_id), None)

out = {}
pub = client("opt-pub", [])

# Resend: three QoS 1 messages received, only the second acknowledged, then the client leaves.
first = []
c = client("opt-resend", first, expiry=300, manual_ack=True)
subscribe(c, "resend/#")
for i in (1, 2, 3):
    publish(pub, "resend/job", f"job-{i}")
wait("three deliveries", lambda: len(first) >= 3)
with lock:
    second_mid = next(m["mid"] for m in first if m["payload"] == "job-2")
c.ack(second_mid, 1)
c.disconnect(); c.loop_stop()
publish(pub, "resend/job", "job-4")
wait_status = {}
def stored():
    s = session_status("opt-resend")
    if s and not s["connected"]:
        wait_status.update(s)
        return s["in_flight"] == 2
    return False
deadline = time.time() + 20
while not stored() and time.time() < deadline:
    time.sleep(0.1)
out["status"] = wait_status
again = []
c = client("opt-resend", again, clean=False, expiry=300)
wait("two resends and the new message", lambda: len(again) >= 3)
time.sleep(0.5)  # anything extra (a redelivered job-2) would show up meanwhile
c.disconnect(); c.loop_stop()
out["first"], out["again"] = first, again

# No Local: the client's own publishes do not come back on its No Local filter.
own, other = [], []
nl = client("opt-nl", own)
subscribe(nl, "nl/#", noLocal=True)
watcher = client("opt-nl-watch", other)
subscribe(watcher, "nl/#")
publish(nl, "nl/chat", "mine")
publish(pub, "nl/chat", "theirs")
wait("the watcher's two", lambda: len(other) >= 2)
wait("the No Local subscriber's one", lambda: len(own) >= 1)
time.sleep(0.5)
out["no_local"], out["no_local_watcher"] = own, other

# Retain As Published on live messages.
rap, plain = [], []
r = client("opt-rap", rap)
subscribe(r, "rap/#", retainAsPublished=True, retainHandling=2)
p = client("opt-plain", plain)
subscribe(p, "rap/#", retainHandling=2)
publish(pub, "rap/lamp", "on", retain=True)
publish(pub, "rap/lamp", "blink")
wait("both", lambda: len(rap) >= 2 and len(plain) >= 2)
out["rap"], out["plain"] = rap, plain

# Retained messages with an expiry: served with what is left, not once expired.
publish(pub, "rexp/short", "brief", retain=True, MessageExpiryInterval=2)
published_at = time.time()
publish(pub, "rexp/long", "lasting", retain=True, MessageExpiryInterval=300)
early = []
e = client("opt-rexp-early", early)
subscribe(e, "rexp/#")
wait("two retained", lambda: len(early) >= 2)
while time.time() < published_at + 2.5:
    time.sleep(0.1)
late = []
l = client("opt-rexp-late", late)
subscribe(l, "rexp/#")
wait("one retained", lambda: len(late) >= 1)
time.sleep(0.5)
out["retained_early"], out["retained_late"] = early, late
print(json.dumps(out))
for cl in (pub, nl, watcher, r, p, e, l):
    cl.disconnect(); cl.loop_stop()
"#;

#[test]
fn resends_no_local_retain_as_published_and_retained_expiry() {
    let broker = Broker::start(&[]);
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PAHO_SCRIPT, &broker.mqtt_port().to_string(), &broker.http_addr()]).stdin(Stdio::null());
    let out = run_ok(&mut cmd, PAHO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("paho output");
    let payloads = |key: &str| -> Vec<String> {
        v[key].as_array().expect(key).iter().filter_map(|m| m["payload"].as_str().map(str::to_string)).collect()
    };
    let by_payload = |key: &str, payload: &str| {
        v[key].as_array().and_then(|ms| ms.iter().find(|m| m["payload"] == payload)).cloned().unwrap_or_default()
    };

    // Resent first, in the order first sent, with DUP and the same packet ids; then the new one.
    assert_eq!(payloads("again"), ["job-1", "job-3", "job-4"], "{v}");
    for job in ["job-1", "job-3"] {
        let (before, after) = (by_payload("first", job), by_payload("again", job));
        assert_eq!(before["dup"], false, "{v}");
        assert_eq!(after["dup"], true, "{job} resent with DUP: {v}");
        assert_eq!(after["mid"], before["mid"], "{job} keeps its packet id: {v}");
    }
    assert_eq!(by_payload("again", "job-4")["dup"], false, "{v}");
    // While away: two in flight, and job-4 waiting besides.
    assert_eq!(v["status"]["in_flight"], 2, "{v}");
    assert_eq!(v["status"]["pending"], 3, "{v}");

    assert_eq!(payloads("no_local"), ["theirs"], "{v}");
    assert_eq!(payloads("no_local_watcher"), ["mine", "theirs"], "{v}");

    assert_eq!(by_payload("rap", "on")["retain"], true, "Retain As Published: {v}");
    assert_eq!(by_payload("rap", "blink")["retain"], false, "{v}");
    assert_eq!(by_payload("plain", "on")["retain"], false, "RETAIN cleared without it: {v}");

    let short = by_payload("retained_early", "brief");
    assert_eq!(short["retain"], true, "{v}");
    assert!(short["expiry"].as_u64().is_some_and(|s| (1..=2).contains(&s)), "{v}");
    let long = by_payload("retained_early", "lasting");
    assert!(long["expiry"].as_u64().is_some_and(|s| (1..=300).contains(&s)), "{v}");
    assert_eq!(payloads("retained_late"), ["lasting"], "the expired one is not served: {v}");
}
