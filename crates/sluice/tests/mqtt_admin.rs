//! The admin API's `/api/mqtt` with mosquitto clients: a mosquitto_sub holding a persistent
//! session (`-c -i … -q 1`) is listed as connected with its subscription and QoS, a retained
//! mosquitto_pub message is counted, a `$share/…` subscriber's group is listed with its
//! member, the listener addresses are the broker's, and once the client leaves its session
//! stays listed as disconnected.

mod common;
mod mqtt_common;

use common::{http, wait_until, Broker};
use mqtt_common::{mosquitto_pub, Subscriber, DELIVERY_TIMEOUT};
use serde_json::Value;

fn mqtt_status(broker: &Broker) -> Value {
    let port = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
    let (status, body) = http(port, "GET", "/api/mqtt", b"");
    assert_eq!(status, 200, "GET /api/mqtt: {body}");
    serde_json::from_str(&body).expect("mqtt status JSON")
}

fn session<'a>(status: &'a Value, client_id: &str) -> Option<&'a Value> {
    status["persistent_sessions"]["sessions"].as_array()?.iter().find(|s| s["client_id"] == client_id)
}

#[test]
fn api_mqtt_lists_a_persistent_session_its_subscription_and_retained_messages() {
    let broker = Broker::start(&[]);
    mosquitto_pub(&broker, &["-t", "plant/boiler/temp", "-m", "71", "-r", "-q", "1"]);
    let sub = Subscriber::start(&broker, &["plant/#"], &["-c", "-i", "admin-watcher"], "plant/probe");

    let mut status = Value::Null;
    wait_until(DELIVERY_TIMEOUT, "/api/mqtt to list the session with its subscription", || {
        status = mqtt_status(&broker);
        session(&status, "admin-watcher").is_some_and(|s| s["subscriptions"].as_array().is_some_and(|f| !f.is_empty()))
    });
    let listed = session(&status, "admin-watcher").expect("listed");
    assert_eq!(listed["connected"], true, "{status}");
    assert_eq!(listed["subscriptions"], serde_json::json!([{ "filter": "plant/#", "qos": 1 }]), "{status}");
    assert_eq!(status["persistent_sessions"]["count"], 1, "{status}");
    assert_eq!(status["persistent_sessions"]["truncated"], false, "{status}");
    assert!(status["connected_clients"].as_u64() >= Some(1), "{status}");
    assert!(status["subscriptions"].as_i64() >= Some(1), "{status}");
    assert_eq!(status["retained_messages"], 1, "{status}");
    assert_eq!(status["listeners"]["tcp"], broker.mqtt_addr().as_str(), "{status}");
    assert_eq!(status["shared_subscriptions"]["count"], 0, "{status}");

    // A shared subscriber: its group is listed, with it as the member.
    let worker = Subscriber::start(&broker, &["$share/workers/plant/#"], &[], "plant/probe");
    wait_until(DELIVERY_TIMEOUT, "/api/mqtt to list the shared group", || {
        status = mqtt_status(&broker);
        status["shared_subscriptions"]["count"] == 1
    });
    let group = &status["shared_subscriptions"]["groups"][0];
    assert_eq!(
        (&group["group"], &group["topic"], &group["members"]),
        (&"workers".into(), &"plant".into(), &1.into()),
        "{status}"
    );
    assert_eq!(status["connected_clients"], 2, "{status}");
    drop(worker);

    // The client leaves: its session stays, disconnected.
    drop(sub);
    wait_until(DELIVERY_TIMEOUT, "/api/mqtt to show the session disconnected", || {
        status = mqtt_status(&broker);
        session(&status, "admin-watcher").is_some_and(|s| s["connected"] == false)
    });
    let listed = session(&status, "admin-watcher").expect("still listed");
    assert!(listed["disconnected_at_ms"].as_i64() > Some(0), "{status}");
    assert_eq!(status["connected_clients"], 0, "{status}");
}
