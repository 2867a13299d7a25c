//! QoS 1 through a power cut: the broker's data directory is on the power-cut FUSE filesystem
//! (crates/powercut), which drops everything not fsynced at the cut. A mosquitto_pub streaming
//! QoS 1 publishes is cut off mid-stream by a power cut (and the broker's `kill -9`); after
//! the restart on what the disk kept, every publish that was acknowledged (PUBACK) is in the
//! log, under the default flush policy (fsync before the acknowledgement). With `--flush os`
//! (acknowledged once written, fsynced later) the same run loses acknowledged publishes,
//! proving the test can fail.

mod common;
mod mqtt_common;
mod powercut_support;

use mqtt_common::{kcat_values, LinePublisher};
use powercut_support::PowerCutBroker;

/// Acknowledgements seen before each cut.
const ACKED_BEFORE_CUT: usize = 300;
/// Power cuts, each with a new publisher (a new MQTT topic, so each cut is checked alone).
const CUTS: usize = 2;

#[test]
fn qos1_publishes_acknowledged_before_a_power_cut_survive() {
    let lost = run(&[]);
    assert!(lost.iter().all(|l| *l == 0), "acknowledged publishes lost per cut: {lost:?}");
}

#[test]
fn qos1_publishes_acknowledged_are_lost_without_fsync() {
    let lost = run(&["--flush", "os"]);
    assert!(lost.iter().any(|l| *l > 0), "no acknowledged publish lost without fsync: {lost:?}");
}

/// Streams QoS 1 publishes through `CUTS` power cuts; per cut, how many acknowledged
/// publishes are not in the log after the restart.
fn run(args: &[&str]) -> Vec<usize> {
    let mut broker = PowerCutBroker::start(args);
    let mut lost_per_cut = Vec::new();
    for cut in 0..CUTS {
        let topic = format!("meter-{cut}");
        let publisher = LinePublisher::start(&broker.broker, &format!("{topic}/feed/power"), &format!("meter-{cut}"));
        publisher.wait_acked(ACKED_BEFORE_CUT);
        let report = broker.power_cut();
        let acked = publisher.stop();
        let stored = kcat_values(&broker.bootstrap(), &topic);
        let lost: Vec<usize> = acked.iter().copied().filter(|i| !stored.contains(&format!("reading-{i}"))).collect();
        eprintln!(
            "{args:?} cut {cut}: {} acknowledged, {} stored after the restart, {} acknowledged lost (e.g. {:?}); {report:?}",
            acked.len(),
            stored.len(),
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        lost_per_cut.push(lost.len());
    }
    lost_per_cut
}
