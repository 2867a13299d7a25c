//! pynsq and gnsq, the Python NSQ clients, used unchanged against Sluice: TCP and HTTP
//! publishing, two channels with two consumers each, REQ with delay, timeouts with attempts,
//! TOUCH, DPUB, MPUB, snappy and deflate connections, lookupd discovery.
//! Needs `scripts/install-nsq-test-deps.sh` (pinned pynsq, gnsq, python-snappy).

mod common;
mod nsq_common;

use nsq_common::{client_script, NsqBroker};
use std::process::Command;
use std::time::Duration;

/// Longest one scenario may run (each bounds itself to 40 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);
const SCENARIOS: [&str; 8] = ["fanout", "req", "timeout", "touch", "dpub", "snappy", "deflate", "lookupd"];

fn run_scenarios(script: &str, extra_args: &[&str]) {
    let nsq = NsqBroker::start(extra_args);
    for scenario in SCENARIOS {
        let topic = format!("{}_{scenario}", script.trim_end_matches(".py"));
        let mut cmd = Command::new("python3");
        cmd.arg(client_script(script)).args([
            scenario,
            &format!("127.0.0.1:{}", nsq.tcp),
            &format!("127.0.0.1:{}", nsq.http),
            &format!("127.0.0.1:{}", nsq.lookupd),
            &topic,
        ]);
        let out = common::run_bounded(&mut cmd, SCENARIO_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("OK"),
            "{script} {scenario}: {stdout}\n{}\n(install the clients with scripts/install-nsq-test-deps.sh)",
            common::tail(&out.stderr, 3000)
        );
        eprintln!("{script} {scenario}: {}", stdout.trim());
    }
}

#[test]
fn pynsq_scenarios() {
    run_scenarios("pynsq_scenarios.py", &[]);
}

#[test]
fn gnsq_scenarios() {
    // gnsq cannot negotiate a message timeout: the broker's default is shortened instead.
    run_scenarios("gnsq_scenarios.py", &["--msg-timeout", "2s"]);
}
