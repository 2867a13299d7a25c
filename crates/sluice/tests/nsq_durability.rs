//! NSQ channels are durable: after `kill -9` every unfinished message (in flight, requeued,
//! deferred) is delivered again, deferred ones not before their time, and no finished one;
//! after a clean restart no finished message comes back.

mod common;
mod nsq_common;

use nsq_common::{Msg, NsqBroker, Wire};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn body(m: &Msg) -> String {
    String::from_utf8_lossy(&m.body).to_string()
}

/// Collects messages (FINishing each) until `want` distinct bodies arrived or `timeout`.
fn collect(w: &mut Wire, want: usize, timeout: Duration) -> BTreeMap<String, (Msg, Instant)> {
    let deadline = Instant::now() + timeout;
    let mut got = BTreeMap::new();
    w.stream.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    while got.len() < want && Instant::now() < deadline {
        let Some((kind, data)) = w.frame() else { continue };
        assert_eq!(kind, nsq_common::FRAME_MESSAGE, "{}", String::from_utf8_lossy(&data));
        let m = Msg::parse(&data);
        w.line(&format!("FIN {}", m.id));
        assert!(got.insert(body(&m), (m, Instant::now())).is_none(), "a message came twice");
    }
    got
}

#[test]
fn kill9_redelivers_every_unfinished_message_and_clean_restart_none() {
    let mut nsq = NsqBroker::start(&["--msg-timeout", "30s"]);
    let mut c = nsq.wire();
    c.subscribe("durable", "c", 20);
    let mut p = nsq.wire();
    for i in 0..10 {
        p.publish("durable", format!("m{i}").as_bytes());
    }
    let published = Instant::now();
    p.with_body("DPUB durable 5000", b"deferred");
    p.expect_ok();
    let mut first: BTreeMap<String, Msg> = BTreeMap::new();
    while first.len() < 10 {
        let m = c.message().expect("first delivery");
        first.insert(body(&m), m);
    }
    for i in 0..5 {
        c.line(&format!("FIN {}", first[&format!("m{i}")].id));
    }
    c.line(&format!("REQ {} 0", first["m5"].id));
    let again = c.message().expect("m5 requeued");
    assert_eq!((body(&again), again.attempts), ("m5".to_string(), 2));
    let requeued_at = Instant::now();
    c.line(&format!("REQ {} 4000", first["m6"].id));
    // m7..m9 stay in flight, m5 in flight again, m6 deferred, "deferred" not yet due.
    nsq.wait_checkpoint("durable", "c", "m0..m4 finished and m6's REQ deferral on disk", |c| {
        let floor = c["partitions"]["0"]["floor"].as_i64();
        let m6_deferred = c["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|e| e["offset"] == 6 && e["defer_until_ms"].as_i64().is_some_and(|d| d > 0)));
        floor == Some(5) && m6_deferred
    });
    nsq.broker.kill9();
    drop(c);
    nsq.restart();

    let mut c = nsq.wire();
    c.subscribe("durable", "c", 20);
    let got = collect(&mut c, 6, Duration::from_secs(15));
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, ["deferred", "m5", "m6", "m7", "m8", "m9"], "unfinished set after kill -9");
    assert!(got["m6"].1.duration_since(requeued_at) >= Duration::from_millis(3900), "REQ delay lost in crash");
    assert!(got["deferred"].1.duration_since(published) >= Duration::from_millis(4900), "DPUB early after crash");
    assert!(got["m5"].0.attempts >= 2 && got["m7"].0.attempts >= 2, "attempts not kept across the crash");

    // Everything is finished now: a clean restart delivers nothing.
    nsq.wait_checkpoint("durable", "c", "all 11 messages finished on disk", |c| c["partitions"]["0"]["floor"] == 11);
    nsq.broker.stop();
    drop(c);
    nsq.restart();
    let mut c = nsq.wire();
    c.subscribe("durable", "c", 20);
    let late = collect(&mut c, 1, Duration::from_secs(3));
    assert!(late.is_empty(), "finished messages came back after a clean restart: {:?}", late.keys());
    // The channel still works and new messages flow.
    nsq.wire().publish("durable", b"after");
    let after = collect(&mut c, 1, Duration::from_secs(10));
    assert!(after.contains_key("after"));
}

/// A FIN acknowledged just before a clean shutdown is never redelivered (the shutdown
/// writes a final checkpoint), even without waiting for the periodic checkpoint.
#[test]
fn clean_shutdown_checkpoints_the_last_fins() {
    let mut nsq = NsqBroker::start(&[]);
    let mut c = nsq.wire();
    c.subscribe("quick", "c", 100);
    let mut p = nsq.wire();
    for i in 0..50 {
        p.publish("quick", format!("q{i}").as_bytes());
    }
    let got = collect(&mut c, 50, Duration::from_secs(10));
    assert_eq!(got.len(), 50);
    // The FINs reached the broker (nothing in flight) but, stopped at once, it has had no
    // time for a periodic checkpoint unless it writes one on shutdown.
    common::wait_until(Duration::from_secs(10), "every FIN processed", || {
        nsq.channel_stats("quick", "c")["in_flight"] == 0
    });
    nsq.broker.stop();
    drop(c);
    nsq.restart();
    let mut c = nsq.wire();
    c.subscribe("quick", "c", 100);
    assert!(collect(&mut c, 1, Duration::from_secs(3)).is_empty());
}
