//! Persistent sessions with mosquitto_sub (-c): a 3.1.1 session (clean session 0) and a 5.0
//! one (session expiry) keep their subscriptions while the client is away and across a
//! broker kill -9, and get every QoS 1 message published meanwhile on reconnecting; a clean
//! session drops what was stored. Raw 3.1.1 sessions: an unacknowledged delivery is resent
//! with DUP and its packet id; a QoS 2 delivery PUBREC'd but not PUBCOMP'd gets its PUBREL
//! again; a QoS 2 publish from the client taken before the reconnect is not appended twice
//! when the client resends it.

mod common;
mod mqtt_common;

use common::{run_ok, Broker};
use mqtt_common::{mosquitto_pub, CLIENT_TIMEOUT};
use std::process::Command;
use std::time::Duration;

/// Connects `id` with a persistent session on `filter` and prints `count` messages (`-W`
/// bounds the wait; 0 messages: it times out and only registers the session).
fn session(broker: &Broker, id: &str, extra: &[&str], count: usize) -> Vec<String> {
    let mut cmd = Command::new("mosquitto_sub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string(), "-i", id, "-q", "1"])
        .args(["-t", "jobs/#", "-F", "%t %p", "-W", if count == 0 { "1" } else { "20" }])
        .args(extra);
    if count > 0 {
        cmd.args(["-C", &count.to_string()]);
        let out = run_ok(&mut cmd, CLIENT_TIMEOUT);
        return String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    }
    // Registers the session, then times out (exit status 27) without printing anything.
    let out = common::run_bounded(&mut cmd, CLIENT_TIMEOUT);
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    Vec::new()
}

#[test]
fn persistent_sessions_get_what_was_published_while_away_across_kill_9() {
    let mut broker = Broker::start(&[]);
    let v311 = ["-c"];
    let v5 = ["-c", "-V", "mqttv5", "-x", "3600"];
    session(&broker, "worker-311", &v311, 0);
    session(&broker, "worker-5", &v5, 0);
    for i in 1..=3 {
        mosquitto_pub(&broker, &["-t", "jobs/resize", "-m", &format!("job-{i}"), "-q", "1"]);
    }
    let expected: Vec<String> = (1..=3).map(|i| format!("jobs/resize job-{i}")).collect();
    assert_eq!(session(&broker, "worker-311", &v311, 3), expected, "3.1.1 session");

    // The broker stores the session when it sees the client gone, a moment after the client
    // exits: the kill -9 comes after that, or it would test the 1 s checkpoint instead.
    let hex: String = "worker-311".bytes().map(|b| format!("{b:02x}")).collect();
    let stored = broker.data_dir().join("mqtt").join("sessions").join(format!("{hex}.json"));
    common::wait_until(Duration::from_secs(10), "the 3.1.1 session stored as disconnected", || {
        let text = std::fs::read_to_string(&stored).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|v| v["disconnected_at_ms"].as_i64().is_some_and(|ms| ms > 0))
    });
    broker.kill9();
    broker.restart();
    mosquitto_pub(&broker, &["-t", "jobs/resize", "-m", "job-4", "-q", "1"]);
    // The 3.1.1 worker had its three; the 5.0 worker gets all four after the kill -9.
    assert_eq!(session(&broker, "worker-311", &v311, 1), vec!["jobs/resize job-4".to_string()]);
    let mut all = expected.clone();
    all.push("jobs/resize job-4".to_string());
    assert_eq!(session(&broker, "worker-5", &v5, 4), all, "5.0 session after kill -9");

    // A clean session drops the stored one: what follows is not kept for the old one.
    session(&broker, "worker-311", &[], 0);
    mosquitto_pub(&broker, &["-t", "jobs/resize", "-m", "job-5", "-q", "1"]);
    session(&broker, "worker-311", &v311, 0);
    mosquitto_pub(&broker, &["-t", "jobs/resize", "-m", "job-6", "-q", "1"]);
    assert_eq!(session(&broker, "worker-311", &v311, 1), vec!["jobs/resize job-6".to_string()]);
}

#[test]
fn an_unacknowledged_delivery_is_resent_with_dup_to_the_resumed_session() {
    use mqtt_common::{connect_packet, RawClient};
    let broker = Broker::start(&[]);
    let session_connect = || {
        let mut packet = connect_packet(4, 60, "dup-1");
        packet[9] = 0x00; // clean session 0
        packet
    };
    let mut first = RawClient::connect(&broker);
    first.send(&session_connect());
    assert_eq!(first.read_exact(4), vec![0x20, 2, 0, 0], "a new session");
    first.send(&[0x82, 10, 0, 1, 0, 5, b'd', b'u', b'p', b'/', b'#', 1]);
    assert_eq!(first.read_exact(5), vec![0x90, 3, 0, 1, 1], "SUBACK granting QoS 1");
    mosquitto_pub(&broker, &["-t", "dup/x", "-m", "once", "-q", "1"]);
    // PUBLISH QoS 1, not DUP: topic (2 + 5), packet id (2), payload (4).
    assert_eq!(first.read_exact(2), vec![0x32, 13]);
    let body = first.read_exact(13);
    assert_eq!(&body[9..], b"once");
    let packet_id = [body[7], body[8]];
    // Gone without a PUBACK; once the broker let go of it, the session is stored.
    drop(first);
    common::wait_until(CLIENT_TIMEOUT, "the first connection to end", || {
        !common::listed_clients(&broker).iter().any(|c| c["client_id"] == "dup-1")
    });
    let mut second = RawClient::connect(&broker);
    second.send(&session_connect());
    assert_eq!(second.read_exact(4), vec![0x20, 2, 1, 0], "session present");
    assert_eq!(second.read_exact(2), vec![0x3A, 13], "resent with DUP");
    let body = second.read_exact(13);
    assert_eq!(&body[9..], b"once");
    assert_eq!([body[7], body[8]], packet_id, "with its packet id");
}

#[test]
fn qos_2_flows_in_both_directions_survive_a_reconnect() {
    use mqtt_common::{connect_packet, RawClient};
    let broker = Broker::start(&[]);
    let session_connect = || {
        let mut packet = connect_packet(4, 60, "q2-1");
        packet[9] = 0x00; // clean session 0
        packet
    };
    let mut first = RawClient::connect(&broker);
    first.send(&session_connect());
    assert_eq!(first.read_exact(4), vec![0x20, 2, 0, 0]);
    first.send(&[0x82, 9, 0, 1, 0, 4, b'q', b'2', b'/', b'#', 2]);
    assert_eq!(first.read_exact(5), vec![0x90, 3, 0, 1, 2], "SUBACK granting QoS 2");
    mosquitto_pub(&broker, &["-t", "q2/x", "-m", "hi", "-q", "2"]);
    // PUBLISH QoS 2: topic (2 + 4), packet id (2), payload (2).
    assert_eq!(first.read_exact(2), vec![0x34, 10]);
    let body = first.read_exact(10);
    let id = [body[6], body[7]];
    first.send(&[0x50, 2, id[0], id[1]]);
    assert_eq!(first.read_exact(4), vec![0x62, 2, id[0], id[1]], "PUBREL");
    // The client publishes at QoS 2 (packet id 7) to a topic of its own and gets PUBREC.
    first.send(&[0x34, 13, 0, 5, b'i', b'n', b'2', b'/', b'x', 0, 7, b'o', b'n', b'c', b'e']);
    assert_eq!(first.read_exact(4), vec![0x50, 2, 0, 7], "PUBREC");
    // Gone without PUBCOMP (as receiver) and without PUBREL (as sender).
    drop(first);
    common::wait_until(CLIENT_TIMEOUT, "the first connection to end", || {
        !common::listed_clients(&broker).iter().any(|c| c["client_id"] == "q2-1")
    });
    let mut second = RawClient::connect(&broker);
    second.send(&session_connect());
    assert_eq!(second.read_exact(4), vec![0x20, 2, 1, 0], "session present");
    assert_eq!(second.read_exact(4), vec![0x62, 2, id[0], id[1]], "PUBREL resent with its packet id");
    second.send(&[0x70, 2, id[0], id[1]]);
    // The client resends its PUBLISH (DUP): answered, not appended again; then releases it.
    second.send(&[0x3C, 13, 0, 5, b'i', b'n', b'2', b'/', b'x', 0, 7, b'o', b'n', b'c', b'e']);
    assert_eq!(second.read_exact(4), vec![0x50, 2, 0, 7], "PUBREC again");
    second.send(&[0x62, 2, 0, 7]);
    assert_eq!(second.read_exact(4), vec![0x70, 2, 0, 7], "PUBCOMP");
    let port = broker.http_port();
    let (status, body) = common::http(port, "GET", "/api/topics/in2", b"");
    assert_eq!(status, 200, "{body}");
    let topic: serde_json::Value = serde_json::from_str(&body).expect("topic JSON");
    let records: i64 = (topic["partitions"].as_array().expect("partitions").iter())
        .map(|p| p["log_end_offset"].as_i64().expect("log_end_offset"))
        .sum();
    assert_eq!(records, 1, "appended once: {topic}");
}
