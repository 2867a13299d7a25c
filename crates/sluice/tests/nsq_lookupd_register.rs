//! Proves `--lookupd-tcp-address` registers this node with an nsqlookupd as nsqd does, over
//! lookupd's TCP protocol, against a lookupd-protocol server of the tests' own (no nsqlookupd
//! package exists for CI):
//! - IDENTIFY carries the broadcast address, the NSQ TCP and HTTP ports and the version;
//! - a topic published to is registered, a channel created is registered with it, a deleted
//!   channel is unregistered while its topic stays, a deleted topic is unregistered;
//! - a topic whose name lookupd refuses (a Kafka name longer than NSQ's 64 characters) is
//!   not sent, so the connection is never closed by lookupd's name check;
//! - when lookupd drops the connection (a restart), the node reconnects and registers again;
//! - pynsq, configured with only the lookupd's HTTP address, finds the node and consumes.

mod common;
mod nsq_common;

use common::{http, wait_until};
use nsq_common::fake_lookupd::FakeLookupd;
use nsq_common::{client_script, NsqBroker};
use std::process::Command;
use std::time::Duration;

/// Bound on a registration reaching lookupd (the node compares every second) and on a
/// reconnect (its backoff starts at half a second).
const REGISTERED_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on the pynsq scenario (it bounds itself to 40 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

fn registered(lookupd: &FakeLookupd, topic: &str, channel: Option<&str>) -> bool {
    lookupd.peers().iter().any(|p| match channel {
        Some(c) => p.channels.contains(&(topic.to_string(), c.to_string())),
        None => p.topics.contains(topic),
    })
}

fn ok(status_and_body: (u16, String), what: &str) {
    assert_eq!(status_and_body.0, 200, "{what}: {}", status_and_body.1);
}

#[test]
fn a_node_registers_its_topics_and_channels_with_nsqlookupd() {
    let lookupd = FakeLookupd::start();
    let nsq = NsqBroker::start(&["--lookupd-tcp-address", &lookupd.tcp_addr()]);
    wait_until(REGISTERED_TIMEOUT, "the node identifying to lookupd", || lookupd.peers().len() == 1);
    let info = lookupd.peers()[0].info.clone();
    eprintln!("nsq_lookupd_register: IDENTIFY body {info}");
    assert_eq!(info["tcp_port"], nsq.tcp);
    assert_eq!(info["http_port"], nsq.http);
    assert_eq!(info["broadcast_address"], "127.0.0.1");
    assert_eq!(info["version"], "1.3.0");

    let topic = "lookupd_reg";
    ok(http(nsq.http, "POST", &format!("/pub?topic={topic}"), b"hello"), "publish");
    wait_until(REGISTERED_TIMEOUT, "the topic registered", || registered(&lookupd, topic, None));
    ok(http(nsq.http, "POST", &format!("/channel/create?topic={topic}&channel=ch1"), b""), "create channel");
    wait_until(REGISTERED_TIMEOUT, "the channel registered", || registered(&lookupd, topic, Some("ch1")));
    ok(http(nsq.http, "POST", &format!("/channel/delete?topic={topic}&channel=ch1"), b""), "delete channel");
    wait_until(REGISTERED_TIMEOUT, "the channel unregistered, its topic kept", || {
        !registered(&lookupd, topic, Some("ch1")) && registered(&lookupd, topic, None)
    });

    // A Kafka topic name lookupd would refuse is left out; the connection stays up.
    let long = "k".repeat(70);
    let created = http(nsq.http, "POST", "/api/topics", format!(r#"{{"name":"{long}","partitions":1}}"#).as_bytes());
    assert!(created.0 == 200 || created.0 == 201, "create {long}: {created:?}");
    ok(http(nsq.http, "POST", "/pub?topic=after_long", b"x"), "publish after_long");
    wait_until(REGISTERED_TIMEOUT, "after_long registered", || registered(&lookupd, "after_long", None));
    assert!(!registered(&lookupd, &long, None), "a name lookupd refuses was sent");
    assert_eq!(lookupd.identified(), 1, "the connection was never closed");

    // lookupd restarts: the node comes back and registers everything again.
    lookupd.drop_connections();
    wait_until(REGISTERED_TIMEOUT, "the node registering again after lookupd dropped it", || {
        lookupd.identified() == 2 && registered(&lookupd, topic, None) && registered(&lookupd, "after_long", None)
    });

    ok(http(nsq.http, "POST", &format!("/topic/delete?topic={topic}"), b""), "delete topic");
    wait_until(REGISTERED_TIMEOUT, "the deleted topic unregistered", || !registered(&lookupd, topic, None));

    // A real client finds the node through lookupd alone (its lookupd scenario publishes
    // to the node, then reads with only `lookupd_http_addresses`).
    let mut cmd = Command::new("python3");
    cmd.arg(client_script("pynsq_scenarios.py")).args([
        "lookupd",
        &format!("127.0.0.1:{}", nsq.tcp),
        &format!("127.0.0.1:{}", nsq.http),
        &lookupd.http_addr(),
        "lookupd_pynsq",
    ]);
    let out = common::run_bounded(&mut cmd, SCENARIO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK"),
        "pynsq through the lookupd: {stdout}\n{}\n(install the clients with scripts/install-nsq-test-deps.sh)",
        common::tail(&out.stderr, 3000)
    );
    eprintln!("nsq_lookupd_register: pynsq through the lookupd: {}", stdout.trim());
}
