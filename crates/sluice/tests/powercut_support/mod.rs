//! A broker whose data directory lives on the power-cut FUSE filesystem (crates/powercut):
//! [`PowerCutBroker::power_cut`] drops everything not yet fsynced at one instant, kills the
//! broker with `kill -9`, and starts it again on what a disk would have kept.
#![allow(dead_code)]

use crate::common::{Broker, BrokerOpts};
use sluice_powercut::{CutReport, PowerCutFs};
use std::fs::File;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bound on the NSQ listener coming up after the Kafka one.
const NSQ_READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct PowerCutBroker {
    // Fields drop in order: the broker dies before its filesystem is unmounted.
    pub broker: Broker,
    fs: PowerCutFs,
    _mount_dir: tempfile::TempDir,
    pub nsq_tcp: u16,
    pub http: u16,
    pub cuts: u64,
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("harness address has a port")
}

impl PowerCutBroker {
    /// Mounts an empty power-cut filesystem, makes `data/` on it durable, and starts the
    /// broker there with `args`. Panics with what is missing if FUSE cannot be mounted.
    pub fn start(args: &[&str]) -> PowerCutBroker {
        let mount_dir = tempfile::Builder::new().prefix("sluice-powercut-").tempdir().expect("temp dir");
        let fs = PowerCutFs::mount(mount_dir.path()).unwrap_or_else(|e| {
            panic!(
                "cannot mount the power-cut FUSE filesystem on {}: {e}. It needs /dev/fuse and fusermount3 \
                 (apt-get install fuse3; scripts/install-test-deps.sh installs it)",
                mount_dir.path().display()
            )
        });
        let data_dir = mount_dir.path().join("data");
        std::fs::create_dir(&data_dir).expect("create data dir on the power-cut fs");
        File::open(mount_dir.path()).and_then(|d| d.sync_all()).expect("fsync the mount root");
        let opts = BrokerOpts {
            args: args.iter().map(|s| s.to_string()).collect(),
            data_dir: Some(data_dir),
            ..BrokerOpts::default()
        };
        let broker = Broker::start_with(opts);
        let (nsq_tcp, http) = (port_of(&broker.nsq_tcp_addr()), port_of(&broker.http_addr()));
        let b = PowerCutBroker { broker, fs, _mount_dir: mount_dir, nsq_tcp, http, cuts: 0 };
        b.wait_nsq();
        b
    }

    fn wait_nsq(&self) {
        let deadline = Instant::now() + NSQ_READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.nsq_tcp)).is_err() {
            assert!(Instant::now() < deadline, "nsq port not ready after {NSQ_READY_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// The power cut: the disk loses everything unsynced at this instant (and fails every
    /// later operation), then the broker is `kill -9`ed, the disk comes back with what was
    /// durable, and the broker restarts on it.
    pub fn power_cut(&mut self) -> CutReport {
        let report = self.fs.cut();
        self.broker.kill9();
        self.fs.restore().expect("remount the power-cut filesystem");
        self.cuts += 1;
        self.broker.restart();
        self.wait_nsq();
        report
    }

    pub fn fsyncs(&self) -> u64 {
        self.fs.fsyncs()
    }
}
