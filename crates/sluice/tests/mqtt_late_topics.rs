//! Subscriptions see topics and partitions created after they subscribed: a mosquitto_sub on
//! `#` started before any topic exists receives messages of topics created later, and one on
//! `grow/#` receives from every partition after the topic `grow` went from 1 to 8 partitions
//! through the admin API.

mod common;
mod mqtt_common;

use common::{http, Broker};
use mqtt_common::{mosquitto_pub, Subscriber};

#[test]
fn wildcard_and_named_subscriptions_read_topics_and_partitions_created_later() {
    let broker = Broker::start(&[]);
    let port = broker.http_port();
    let (status, body) = http(port, "POST", "/api/topics", br#"{"name": "grow", "partitions": 1}"#);
    assert_eq!(status, 201, "{body}");

    // No MQTT topic exists yet: the probe's own topic is created after `#` subscribed.
    let everything = Subscriber::start(&broker, &["#"], &[], "probe/first");
    let grow = Subscriber::start(&broker, &["grow/#"], &[], "grow/probe");
    mosquitto_pub(&broker, &["-t", "fresh/a", "-m", "hello", "-q", "1"]);
    everything.wait_for("fresh/a hello");

    let (status, body) = http(port, "POST", "/api/topics/grow/partitions", br#"{"count": 8}"#);
    assert_eq!(status, 200, "{body}");
    // Ten MQTT topics: murmur2 spreads their keys over the eight partitions.
    for i in 0..10 {
        mosquitto_pub(&broker, &["-t", &format!("grow/device-{i}"), "-m", "up", "-q", "1"]);
    }
    for i in 0..10 {
        grow.wait_for(&format!("grow/device-{i} up"));
    }
}
