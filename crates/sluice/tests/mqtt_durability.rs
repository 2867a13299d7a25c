//! QoS 1 means what Kafka's acks=all means: every PUBLISH mosquitto_pub saw acknowledged
//! (PUBACK) before the broker was killed with SIGKILL mid-stream is in the log after the
//! restart, under the default flush policy (fsync before the acknowledgement).

mod common;

use common::{run_ok, use_system_libraries, wait_until, Broker};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Lines offered to mosquitto_pub: more than it gets through before the kill.
const LINES_MAX: usize = 50_000;
/// Acknowledgements seen before the broker is killed.
const ACKED_BEFORE_KILL: usize = 300;

/// The message ids mosquitto_pub's debug output says were acknowledged.
fn acked_mids(debug: &str) -> BTreeSet<usize> {
    debug
        .lines()
        .filter_map(|l| l.split_once("received PUBACK (Mid: "))
        .filter_map(|(_, rest)| rest.split(',').next()?.parse().ok())
        .collect()
}

#[test]
fn qos1_publishes_acknowledged_before_kill_9_survive() {
    let mut broker = Broker::start(&[]);
    let dir = tempfile::tempdir().expect("scratch");
    let debug_path = dir.path().join("pub.out");
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.mqtt_port().to_string()])
        .args(["-d", "-l", "-q", "1", "-t", "meter/feed/power", "-i", "meter-1"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&debug_path).expect("debug file"))
        .stderr(Stdio::null());
    use_system_libraries(&mut cmd);
    let mut publisher = cmd.spawn().expect("spawn mosquitto_pub");
    let mut stdin = publisher.stdin.take().expect("stdin");
    // With -l each line is one message, numbered from 1: line i has message id i.
    let feeder = std::thread::spawn(move || {
        for i in 1..=LINES_MAX {
            if writeln!(stdin, "reading-{i}").is_err() {
                return;
            }
        }
    });
    let debug = || std::fs::read_to_string(&debug_path).unwrap_or_default();
    wait_until(Duration::from_secs(30), "PUBACKs before the kill", || acked_mids(&debug()).len() >= ACKED_BEFORE_KILL);
    broker.kill9();
    // Only the publisher this test spawned, by its own handle.
    let _ = publisher.kill();
    let _ = publisher.wait();
    let _ = feeder.join();
    let output = debug();
    let acked = acked_mids(&output);
    // Message ids were given in line order: the n-th PUBLISH sent carries id n.
    let sent: Vec<usize> = output
        .lines()
        .filter(|l| l.contains("sending PUBLISH (d0"))
        .filter_map(|l| l.split(", m").nth(1)?.split(',').next()?.parse().ok())
        .collect();
    assert!(sent.iter().enumerate().all(|(n, mid)| n + 1 == *mid), "ids follow line order");
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    broker.restart();
    let out = run_ok(
        Command::new("kcat").args([
            "-C",
            "-b",
            &broker.bootstrap(),
            "-t",
            "meter",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\\n",
        ]),
        Duration::from_secs(60),
    );
    let stored: BTreeSet<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let lost: Vec<usize> = acked.iter().copied().filter(|i| !stored.contains(&format!("reading-{i}"))).collect();
    assert!(lost.is_empty(), "{} acknowledged publishes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
    eprintln!("{} acknowledged before kill -9, {} stored after restart", acked.len(), stored.len());
}
