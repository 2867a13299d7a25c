//! Mapping rules from the TOML file (`[[mqtt.mapping]]`): `factory/+/sensors` → topic
//! `sensors`. mosquitto_pub to `factory/7/sensors/temp` lands in `sensors` (kcat reads it with
//! the MQTT topic as key), a subscriber on `factory/+/sensors/#` receives it, and a kcat
//! producer's record in `sensors` carrying an `mqtt-topic` header under the prefix reaches that
//! subscriber too; topics outside the rule keep the first-level mapping.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use mqtt_common::{mosquitto_pub, Subscriber};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const KCAT_TIMEOUT: Duration = Duration::from_secs(30);

fn kcat_records(broker: &Broker, topic: &str) -> Vec<String> {
    let mut cmd = Command::new("kcat");
    cmd.args(["-C", "-b", &broker.bootstrap(), "-t", topic, "-o", "beginning", "-e", "-f", "%k|%s\\n"]);
    String::from_utf8_lossy(&run_ok(&mut cmd, KCAT_TIMEOUT).stdout).lines().map(str::to_string).collect()
}

#[test]
fn toml_mapping_rules_route_publishes_and_subscriptions() {
    let dir = tempfile::tempdir().expect("config dir");
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[[mqtt.mapping]]\nprefix = \"factory/+/sensors\"\ntopic = \"sensors\"\n")
        .expect("write config");
    let broker = Broker::start(&["--config", &config.display().to_string()]);
    let sub = Subscriber::start(&broker, &["factory/+/sensors/#", "office/#"], &[], "factory/0/sensors/probe");

    mosquitto_pub(&broker, &["-t", "factory/7/sensors/temp", "-m", "21.5", "-q", "1"]);
    mosquitto_pub(&broker, &["-t", "office/lamp", "-m", "on", "-q", "1"]);
    sub.wait_for("factory/7/sensors/temp 21.5");
    sub.wait_for("office/lamp on");
    let sensors = kcat_records(&broker, "sensors");
    assert!(sensors.contains(&"factory/7/sensors/temp|21.5".to_string()), "{sensors:?}");
    assert!(kcat_records(&broker, "office").contains(&"office/lamp|on".to_string()));

    // A Kafka producer writes to the mapped topic with the MQTT topic as a header.
    let mut produce = Command::new("kcat");
    produce.args(["-P", "-b", &broker.bootstrap(), "-t", "sensors", "-H", "mqtt-topic=factory/9/sensors/hum"]);
    common::use_system_libraries(&mut produce);
    let mut child = produce.stdin(Stdio::piped()).spawn().expect("spawn kcat");
    child.stdin.take().expect("stdin").write_all(b"40%\n").expect("write to kcat");
    let status = child.wait().expect("kcat producer");
    assert!(status.success(), "kcat -P failed");
    sub.wait_for("factory/9/sensors/hum 40%");
}
