//! MQTT and the other protocols over one log, with real clients: mosquitto_pub at QoS 0, 1
//! and 2 (3.1.1 and 5.0) lands as records kcat reads (key = MQTT topic, one partition per
//! device, `mqtt-topic` and user-property headers); a Kafka producer's and an NSQ publisher's
//! messages reach a mosquitto_sub wildcard subscription; an MQTT publish reaches an NSQ channel.

mod common;
mod mqtt_common;
mod nsq_common;

use common::{run_ok, Broker};
use mqtt_common::{mosquitto_pub, Subscriber};
use nsq_common::Wire;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

const KCAT_TIMEOUT: Duration = Duration::from_secs(30);

/// Every record of `topic` as kcat prints `partition|key|value|headers`.
fn kcat_records(broker: &Broker, topic: &str) -> Vec<String> {
    let out = run_ok(
        Command::new("kcat").args([
            "-C",
            "-b",
            &broker.bootstrap(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p|%k|%s|%h\\n",
        ]),
        KCAT_TIMEOUT,
    );
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn nsq_port(broker: &Broker) -> u16 {
    broker.nsq_tcp_addr().rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("nsq port")
}

#[test]
fn mosquitto_publishes_at_every_qos_and_version_are_kafka_records() {
    let broker = Broker::start(&["--default-partitions", "4"]);
    let devices = ["plant/press-1/temp", "plant/press-2/temp", "plant/oven/temp"];
    let mut sent = Vec::new();
    for (version, version_args) in [("v311", &["-V", "mqttv311"][..]), ("v5", &["-V", "mqttv5"][..])] {
        for qos in ["0", "1", "2"] {
            for device in devices {
                let payload = format!("{version}-q{qos}-{device}");
                let mut args = vec!["-t", device, "-m", &payload, "-q", qos];
                args.extend_from_slice(version_args);
                if version == "v5" {
                    args.extend_from_slice(&["-D", "publish", "user-property", "site", "north"]);
                }
                mosquitto_pub(&broker, &args);
                sent.push((device.to_string(), payload));
            }
        }
    }
    let records = kcat_records(&broker, "plant");
    assert_eq!(records.len(), sent.len(), "records: {records:#?}");
    let mut partition_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (device, payload) in &sent {
        let record = records
            .iter()
            .find(|r| r.split('|').nth(2) == Some(payload.as_str()))
            .unwrap_or_else(|| panic!("{payload} missing: {records:#?}"));
        let fields: Vec<&str> = record.splitn(4, '|').collect();
        assert_eq!(fields[1], device, "the key is the MQTT topic: {record}");
        assert!(fields[3].contains(&format!("mqtt-topic={device}")), "mqtt-topic header: {record}");
        if payload.starts_with("v5") {
            assert!(fields[3].contains("site=north"), "v5 user property as a header: {record}");
        }
        partition_of.entry(device.clone()).or_default().insert(fields[0].to_string());
    }
    // One device, one partition: its messages stay in order.
    for (device, partitions) in &partition_of {
        assert_eq!(partitions.len(), 1, "{device} spread over {partitions:?}");
    }
    let order: Vec<&str> = records
        .iter()
        .filter(|r| r.split('|').nth(1) == Some(devices[0]))
        .filter_map(|r| r.split('|').nth(2))
        .collect();
    let expected: Vec<&str> = sent.iter().filter(|(d, _)| d == devices[0]).map(|(_, p)| p.as_str()).collect();
    assert_eq!(order, expected, "one device's messages in publish order");
}

#[test]
fn kafka_and_nsq_messages_reach_a_wildcard_subscriber_and_mqtt_reaches_nsq() {
    let broker = Broker::start(&[]);
    // 3.1.1 and 5.0 subscribers on a wildcard filter over the topic `fleet`.
    let v311 = Subscriber::start(&broker, &["fleet/#"], &[], "fleet/probe");
    let v5 = Subscriber::start(&broker, &["fleet/+/status", "fleet"], &["-V", "mqttv5"], "fleet/probe/status");

    // Kafka: one record naming its MQTT topic in the header, one without (topic = `fleet`).
    let rt = common::runtime();
    let producer = common::acks_all_producer(&broker.bootstrap(), &[]);
    let with_header = rdkafka::producer::FutureRecord::to("fleet").key("truck-7").payload("kafka-with-header").headers(
        rdkafka::message::OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: "mqtt-topic", value: Some("fleet/truck-7/status") }),
    );
    rt.block_on(producer.send(with_header, Duration::from_secs(10))).map_err(|(e, _)| e).expect("kafka produce");
    common::produce_one(&rt, &producer, "fleet", 0, b"truck-8", b"kafka-plain");
    // NSQ: a PUB on the same topic.
    let mut nsq = Wire::connect(nsq_port(&broker));
    nsq.publish("fleet", b"nsq-pub");

    v311.wait_for("fleet/truck-7/status kafka-with-header");
    v311.wait_for("fleet kafka-plain");
    v311.wait_for("fleet nsq-pub");
    v5.wait_for("fleet/truck-7/status kafka-with-header");
    v5.wait_for("fleet nsq-pub");
    assert!(!v5.lines().iter().any(|l| l.contains("probe ")), "fleet/+/status does not match fleet/probe");

    // MQTT → NSQ: a channel on the topic receives the payload as the body.
    let mut channel = Wire::connect(nsq_port(&broker));
    channel.subscribe("fleet", "mqtt-reader", 100);
    mosquitto_pub(&broker, &["-t", "fleet/truck-9/status", "-m", "from-mqtt", "-q", "1"]);
    // The topic's first channel starts at the log start: skip what came before.
    let mut bodies = Vec::new();
    for _ in 0..200 {
        let message = channel.message().expect("a message on the NSQ channel");
        channel.line(&format!("FIN {}", message.id));
        bodies.push(String::from_utf8_lossy(&message.body).into_owned());
        if bodies.iter().any(|b| b == "from-mqtt") {
            break;
        }
    }
    assert!(bodies.iter().any(|b| b == "from-mqtt"), "NSQ channel got {bodies:?}");
}

#[test]
fn deliveries_take_the_lower_of_granted_and_published_qos() {
    let broker = Broker::start(&[]);
    let sub = Subscriber::start(&broker, &["grid/#"], &["-q", "2", "-d"], "grid/probe");
    mosquitto_pub(&broker, &["-t", "grid/a", "-m", "exactly-once", "-q", "2"]);
    mosquitto_pub(&broker, &["-t", "grid/a", "-m", "at-least-once", "-q", "1"]);
    sub.wait_for("grid/a exactly-once");
    sub.wait_for("grid/a at-least-once");
    let lines = sub.lines();
    let received: Vec<&String> = lines.iter().filter(|l| l.contains("received PUBLISH")).collect();
    // The probe (QoS 1), then QoS 2 with its PUBREC/PUBREL/PUBCOMP flow, then QoS 1.
    assert!(received.iter().any(|l| l.contains("q2,") && l.contains("'grid/a'")), "{lines:#?}");
    assert!(received.iter().filter(|l| l.contains("q1,") && l.contains("'grid/a'")).count() == 1, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("received PUBREL")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("sending PUBCOMP")), "{lines:#?}");
}
