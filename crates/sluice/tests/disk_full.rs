//! Proves a full disk is survived: with the data dir on a small tmpfs filled to the last
//! byte, Kafka produce gets KAFKA_STORAGE_ERROR and NSQ PUB gets E_PUB_FAILED, `/ping`
//! says NOK, Kafka fetch and NSQ delivery of stored data keep working; once space is freed
//! `/ping` turns OK and writes resume by themselves, and every acknowledged record is
//! intact and contiguous, also after a restart.

mod common;
mod limits_support;
mod nsq_common;

use common::raw::Raw;
use common::{consume_exact, Broker};
use limits_support::{produce, KAFKA_STORAGE_ERROR};
use nsq_common::{http, Wire, FRAME_ERROR};
use rdkafka::Offset;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Small enough to fill in a moment, large enough for the broker's files.
const TMPFS_SIZE: &str = "size=8m";
/// Kafka records acknowledged before the disk fills.
const RECORDS_BEFORE: usize = 20;
const VALUE_BYTES: usize = 16 * 1024;
/// Bigger than any slack a filler could leave (tmpfs allocates whole pages).
const NSQ_BODY_BYTES: usize = 128 * 1024;
/// The broker probes storage every second while failing; allow for a loaded machine.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A tmpfs mounted for one test, unmounted on drop (lazily if the broker still uses it).
struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs on `path`, or says why it cannot (not root, no CAP_SYS_ADMIN, a container).
    fn at(path: &Path) -> Result<TmpfsMount, String> {
        let path = path.to_path_buf();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", TMPFS_SIZE, "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(TmpfsMount { path })
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds it open: detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes `dir/name` until the file system says it is full; returns the bytes written.
fn fill(dir: &Path, name: &str) -> u64 {
    let mut file = std::fs::File::create(dir.join(name)).expect("create filler");
    let mut written = 0u64;
    // Big chunks first, then single pages for the last slack. Bounded by the tmpfs size.
    for chunk in [256 * 1024, 4096, 512] {
        let bytes = vec![0xAB; chunk];
        for _ in 0..(16 << 20) / chunk {
            match file.write(&bytes) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
    }
    written
}

fn ping(broker: &Broker) -> (u16, String) {
    let port = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
    http(port, "GET", "/ping", b"")
}

/// The value of one unlabelled series in a `/metrics` scrape.
fn metric(broker: &Broker, name: &str) -> f64 {
    let port = broker.http_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("http port");
    let (status, text) = http(port, "GET", "/metrics", b"");
    assert_eq!(status, 200, "/metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn nsq_port(broker: &Broker) -> u16 {
    broker.nsq_tcp_addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("nsq port")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("record-{i:06}-").into_bytes();
    v.resize(VALUE_BYTES, b'a' + (i % 26) as u8);
    v
}

#[test]
fn full_disk_refuses_writes_keeps_reads_and_recovers_when_space_is_freed() {
    // Start once to get ports and a data dir, then put the data dir on a tmpfs of its own.
    let mut broker = Broker::start(&[]);
    broker.kill9();
    let _ = std::fs::remove_dir_all(broker.data_dir());
    std::fs::create_dir_all(broker.data_dir()).expect("data dir");
    let mount = match TmpfsMount::at(&broker.data_dir()) {
        Ok(mount) => mount,
        Err(reason) => panic!(
            "full_disk test cannot run: mounting a small tmpfs on the data dir failed ({reason}); it needs root \
             and permission to mount (CI runs as root)"
        ),
    };
    broker.restart();
    let topic = "diskfull";
    let mut raw = Raw::connect(&broker);
    let mut acked: Vec<Vec<u8>> = Vec::new();
    for i in 0..RECORDS_BEFORE {
        let (code, offset) = produce(&mut raw, topic, &value(i));
        assert_eq!((code, offset), (0, i as i64), "produce before the disk fills");
        acked.push(value(i));
    }
    let mut nsq = Wire::connect(nsq_port(&broker));
    nsq.publish("diskfull_nsq", b"nsq-before-full");

    let filled = fill(&mount.path, "filler");
    eprintln!("filled the tmpfs with {filled} bytes");

    // Writes fail with each protocol's storage error.
    let (code, _) = produce(&mut raw, topic, &value(999));
    assert_eq!(code, KAFKA_STORAGE_ERROR, "Kafka produce on a full disk");
    nsq.with_body("PUB diskfull_nsq", &vec![b'n'; NSQ_BODY_BYTES]);
    let (kind, body) = nsq.frame().expect("an answer to PUB");
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(kind, FRAME_ERROR, "NSQ PUB on a full disk: {body}");
    assert!(body.starts_with("E_PUB_FAILED"), "NSQ PUB on a full disk: {body}");
    let (status, text) = ping(&broker);
    assert_eq!(status, 500, "/ping while the disk is full: {text}");
    assert!(text.starts_with("NOK"), "/ping body: {text}");
    assert_eq!(metric(&broker, "sluice_storage_failing"), 1.0, "the metric agrees with /ping");
    assert!(metric(&broker, "sluice_storage_write_failures_total") >= 2.0, "the Kafka and NSQ writes failed");

    // Reads keep working: Kafka fetch of everything acknowledged, NSQ delivery.
    let records = consume_exact(&broker.bootstrap(), topic, 0, Offset::Beginning, acked.len(), Duration::from_secs(30));
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone().unwrap_or_default()).collect();
    assert!(values == acked, "Kafka reads while the disk is full return every acknowledged record");
    let mut sub = Wire::connect(nsq_port(&broker));
    sub.subscribe("diskfull_nsq", "reader#ephemeral", 10);
    let message = sub.message().expect("an NSQ message while the disk is full");
    assert_eq!(message.body, b"nsq-before-full");

    // Free the space: /ping and writes recover without any operator action.
    std::fs::remove_file(mount.path.join("filler")).expect("remove filler");
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    while ping(&broker).0 != 200 {
        assert!(Instant::now() < deadline, "/ping still unhealthy {RECOVERY_TIMEOUT:?} after space was freed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ping(&broker), (200, "OK".to_string()));
    assert_eq!(metric(&broker, "sluice_storage_failing"), 0.0);
    let (code, offset) = produce(&mut raw, topic, &value(RECORDS_BEFORE));
    assert_eq!((code, offset), (0, RECORDS_BEFORE as i64), "produce after space was freed: no gap, no leftovers");
    acked.push(value(RECORDS_BEFORE));
    let mut nsq = Wire::connect(nsq_port(&broker));
    nsq.publish("diskfull_nsq", b"nsq-after-free");

    // Everything acknowledged is there, in order, also after a crash and recovery.
    for round in ["running", "after kill -9 and restart"] {
        if round != "running" {
            broker.kill9();
            broker.restart();
        }
        let records =
            consume_exact(&broker.bootstrap(), topic, 0, Offset::Beginning, acked.len(), Duration::from_secs(30));
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..acked.len() as i64).collect::<Vec<_>>(), "{round}: contiguous offsets");
        let values: Vec<Vec<u8>> = records.into_iter().map(|r| r.value.unwrap_or_default()).collect();
        assert!(values == acked, "{round}: every acknowledged record intact");
    }
    broker.kill9();
    drop(mount);
}
