//! One log, two protocols: a Kafka record is delivered on NSQ channels with its value as
//! body, and an NSQ PUB body is a Kafka record value (kcat on both sides).

mod common;
mod nsq_common;

use common::run_ok;
use nsq_common::NsqBroker;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn kafka_records_reach_nsq_channels_and_nsq_messages_reach_kafka() {
    let nsq = NsqBroker::start(&["--default-partitions", "3"]);
    let bootstrap = nsq.broker.bootstrap();
    // Kafka → NSQ: 30 records over 3 partitions (created by Kafka), consumed on one channel.
    let mut c = nsq.wire();
    let mut kcat = Command::new("kcat")
        .args(["-P", "-b", &bootstrap, "-t", "both", "-z", "snappy"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    let input: String = (0..30).map(|i| format!("k{i:02}\n")).collect();
    kcat.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    assert!(kcat.wait().expect("kcat").success());
    c.subscribe("both", "nsq", 50);
    let mut bodies = Vec::new();
    for _ in 0..30 {
        let m = c.message().expect("kafka record on nsq");
        c.line(&format!("FIN {}", m.id));
        bodies.push(String::from_utf8_lossy(&m.body).to_string());
    }
    bodies.sort();
    assert_eq!(bodies, (0..30).map(|i| format!("k{i:02}")).collect::<Vec<_>>());

    // NSQ → Kafka: PUB round-robins over the 3 partitions; kcat reads every body back.
    let mut p = nsq.wire();
    for i in 0..9 {
        p.publish("both", format!("n{i}").as_bytes());
    }
    let out = run_ok(
        Command::new("kcat").args(["-C", "-b", &bootstrap, "-t", "both", "-o", "beginning", "-e", "-f", "%s\\n"]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for i in 0..9 {
        assert!(text.lines().any(|l| l == format!("n{i}")), "n{i} missing from kafka: {text}");
    }
    let per_partition = run_ok(
        Command::new("kcat").args(["-C", "-b", &bootstrap, "-t", "both", "-o", "beginning", "-e", "-f", "%p %s\\n"]),
        Duration::from_secs(30),
    );
    let partitions: std::collections::BTreeSet<String> = String::from_utf8_lossy(&per_partition.stdout)
        .lines()
        .filter(|l| l.contains(" n"))
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect();
    assert_eq!(partitions.len(), 3, "NSQ PUB did not spread over the topic's partitions");
}
