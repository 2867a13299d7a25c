//! Retained messages with mosquitto clients: the last retained message per MQTT topic is
//! served, with the retain flag, to new subscribers of matching filters (3.1.1 and 5.0, user
//! properties kept), survives a kill -9, and an empty retained payload clears it.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use mqtt_common::{mosquitto_pub, CLIENT_TIMEOUT};
use std::process::Command;

/// What a new subscriber to `filter` receives: `count` lines of `retain-flag topic payload`.
fn subscribe_once(broker: &Broker, filter: &str, count: usize, extra: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string(), "-t", filter, "-F", "%r %t %p"])
        .args(["-C", &count.to_string(), "-W", "20"])
        .args(extra);
    let out = run_ok(&mut cmd, CLIENT_TIMEOUT);
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn retained_messages_are_served_kept_across_kill_9_and_cleared() {
    let mut broker = Broker::start(&[]);
    mosquitto_pub(&broker, &["-t", "home/living/light", "-m", "dim", "-r", "-q", "1"]);
    mosquitto_pub(&broker, &["-t", "home/living/light", "-m", "on", "-r", "-q", "1"]);
    mosquitto_pub(&broker, &["-t", "home/kitchen/light", "-m", "off", "-r", "-q", "2", "-V", "mqttv5"]);
    mosquitto_pub(&broker, &["-t", "home/kitchen/door", "-m", "not-retained", "-q", "1"]);
    let expected = vec!["1 home/kitchen/light off".to_string(), "1 home/living/light on".to_string()];
    assert_eq!(subscribe_once(&broker, "home/+/light", 2, &[]), expected);

    broker.kill9();
    broker.restart();
    assert_eq!(subscribe_once(&broker, "home/#", 2, &["-V", "mqttv5"]), expected, "after kill -9");

    // An empty retained payload clears it; the other stays.
    mosquitto_pub(&broker, &["-t", "home/living/light", "-n", "-r", "-q", "1"]);
    assert_eq!(subscribe_once(&broker, "home/#", 1, &[]), vec!["1 home/kitchen/light off".to_string()]);
}
