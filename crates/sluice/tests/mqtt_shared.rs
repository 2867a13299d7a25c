//! MQTT shared subscriptions (`$share/{group}/{filter}`) with paho-mqtt, as 5.0 and 3.1.1
//! clients: two members of one share group split QoS 1 messages (each delivered to one of
//! them, none lost); when one member stops acknowledging and disconnects, the other gets the
//! messages it held unacknowledged; a v5 CONNACK says shared subscriptions are available;
//! the group's cursor is an NSQ channel, listed by nsqd's `/stats` while members are connected.

mod common;

use common::{run_ok, Broker};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest one paho run may take: two rounds of 100 QoS 1 messages and a redelivery.
const PAHO_TIMEOUT: Duration = Duration::from_secs(50);

/// Members `a` (acknowledges by hand) and `b` share `$share/{group}/jobs/+`. Round 1: both
/// acknowledge, `n` messages are split between them. Round 2: `a` stops acknowledging, `n`
/// more are published; once all are delivered to someone, `a` disconnects and `b` must get
/// what `a` held. Prints the figures as JSON; asserts in Python with messages that say why.
const PAHO_SCRIPT: &str = r#"
import json, sys, threading, time
import paho.mqtt.client as mqtt

import urllib.request
port, version, group, n, http = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
lock = threading.Lock()
got = {"a": [], "b": []}
dups = {"a": 0, "b": 0}
acking = {"a": True}
unacked_by_a = []
shared_available = []

def member(name, manual):
    subscribed = threading.Event()
    connected = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{group}-{name}", protocol=protocol,
                    manual_ack=manual)
    def on_connect(client, userdata, flags, reason, properties):
        if protocol == mqtt.MQTTv5 and properties is not None:
            shared_available.append(getattr(properties, "SharedSubscriptionAvailable", None))
        connected.set()
    def on_subscribe(client, userdata, mid, reasons, properties):
        if all(not r.is_failure for r in reasons):
            subscribed.set()
    def on_message(client, userdata, msg):
        with lock:
            got[name].append(msg.payload.decode())
            if msg.dup:
                dups[name] += 1
            if manual:
                if acking["a"]:
                    client.ack(msg.mid, msg.qos)
                else:
                    unacked_by_a.append(msg.payload.decode())
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    assert connected.wait(15), f"{name}: no CONNACK"
    c.subscribe(f"$share/{group}/jobs/+", qos=1)
    assert subscribed.wait(15), f"{name}: SUBACK refused"
    return c

def wait(what, cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with lock:
            if cond():
                return
        time.sleep(0.05)
    stats = urllib.request.urlopen(f"http://{http}/stats?format=json&topic=jobs", timeout=10).read().decode()
    with lock:
        raise AssertionError(f"timed out waiting for {what}: a={sorted(got['a'], key=int)} b={sorted(got['b'], key=int)} {stats}")

def publish(start):
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{group}-pub-{start}", protocol=protocol)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(f"jobs/{i % 4}", str(i), qos=1) for i in range(start, start + n)]
    for info in infos:
        info.wait_for_publish(20)
        assert info.is_published(), "publish not acknowledged"
    pub.disconnect()
    pub.loop_stop()

a, b = member("a", True), member("b", False)
publish(0)
round1 = {str(i) for i in range(n)}
wait("round 1 delivered", lambda: len(got["a"]) + len(got["b"]) >= n)
with lock:
    r1 = got["a"] + got["b"]
    assert sorted(r1, key=int) == sorted(round1, key=int), f"round 1: duplicates or losses: {sorted(r1, key=int)}"
    split1 = (len(got["a"]), len(got["b"]))
    acking["a"] = False
    got["a"], got["b"] = [], []
# While members are connected, their group's cursor is an NSQ channel of `jobs`.
stats = json.load(urllib.request.urlopen(f"http://{http}/stats?format=json&topic=jobs", timeout=10))
channels = [c["channel_name"] for t in stats["topics"] for c in t["channels"]]

publish(n)
round2 = {str(i) for i in range(n, 2 * n)}
wait("round 2 delivered to someone", lambda: set(got["a"]) | set(got["b"]) == round2)
with lock:
    held = list(unacked_by_a)
    assert not set(got["a"]) & set(got["b"]), "round 2: a message went to both members while a held it"
    b_before = len(got["b"])
# `a` leaves holding its deliveries unacknowledged: they go to `b`.
a.disconnect()
a.loop_stop()
wait("b to get what a held", lambda: set(held) <= set(got["b"]))
with lock:
    assert len(got["b"]) == len(set(got["b"])), "b got a message twice"
    redelivered = len(got["b"]) - b_before
print(json.dumps({"split1": split1, "held_by_a": len(held), "redelivered_to_b": redelivered,
                  "dup_flags_at_b": dups["b"], "shared_available": shared_available, "channels": channels}))
b.disconnect()
b.loop_stop()
"#;

fn run_members(broker: &Broker, version: &str, group: &str, n: usize) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PAHO_SCRIPT, &broker.mqtt_port().to_string(), version, group, &n.to_string()])
        .arg(broker.http_addr())
        .stdin(Stdio::null());
    let out = run_ok(&mut cmd, PAHO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("v{version}: {stdout}");
    serde_json::from_str(stdout.trim()).expect("paho figures")
}

#[test]
fn share_group_members_split_messages_and_take_over_a_leaving_members_unacknowledged() {
    let broker = Broker::start(&[]);
    for (version, group) in [("5", "workers5"), ("4", "workers311")] {
        let figures = run_members(&broker, version, group, 100);
        let held = figures["held_by_a"].as_u64().expect("held_by_a");
        // The member that stopped acknowledging held some (up to its window), and the other
        // member got each of them: the script checked it got no message twice.
        assert!(held > 0, "a held nothing unacknowledged: {figures}");
        assert!(figures["redelivered_to_b"].as_u64() >= Some(held), "{figures}");
        assert!(figures["dup_flags_at_b"].as_u64() >= Some(held), "redeliveries carry DUP: {figures}");
        let channels = figures["channels"].to_string();
        assert!(channels.contains(&format!("mqtt-share.{group}.")), "the group's channel in /stats: {channels}");
        if version == "5" {
            assert_eq!(figures["shared_available"], serde_json::json!([1, 1]), "CONNACK: {figures}");
        }
    }
}
