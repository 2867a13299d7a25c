//! QoS 1 means what Kafka's acks=all means: every PUBLISH mosquitto_pub saw acknowledged
//! (PUBACK) before the broker was killed with SIGKILL mid-stream is in the log after the
//! restart, under the default flush policy (fsync before the acknowledgement).

mod common;
mod mqtt_common;

use common::Broker;
use mqtt_common::{kcat_values, LinePublisher};

/// Acknowledgements seen before the broker is killed.
const ACKED_BEFORE_KILL: usize = 300;

#[test]
fn qos1_publishes_acknowledged_before_kill_9_survive() {
    let mut broker = Broker::start(&[]);
    let publisher = LinePublisher::start(&broker, "meter/feed/power", "meter-1");
    publisher.wait_acked(ACKED_BEFORE_KILL);
    broker.kill9();
    let acked = publisher.stop();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    broker.restart();
    let stored = kcat_values(&broker.bootstrap(), "meter");
    let lost: Vec<usize> = acked.iter().copied().filter(|i| !stored.contains(&format!("reading-{i}"))).collect();
    assert!(lost.is_empty(), "{} acknowledged publishes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
    eprintln!("{} acknowledged before kill -9, {} stored after restart", acked.len(), stored.len());
}
