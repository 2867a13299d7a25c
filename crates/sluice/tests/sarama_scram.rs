//! Proves sarama (Debian's 1.22, with the xdg-go/scram client its example wires in) logs in
//! with SASL SCRAM-SHA-256 and SCRAM-SHA-512 on a SASL_PLAINTEXT listener, sends with
//! WaitForAll and reads every message back; a wrong password is refused with Kafka's error.

mod common;

use common::{run_bounded, start_sasl_broker, unique_topic};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

fn sarama(program: &Path, broker: &str, mechanism: &str, password: &str) -> serde_json::Value {
    let mut cmd = Command::new(program);
    cmd.args(["-brokers", broker, "-mechanism", mechanism, "-user", "alice", "-password", password])
        .args(["-topic", &unique_topic("sarama-scram"), "-n", "25"])
        .stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("sarama {mechanism}: {e}\n{stdout}\n{}", common::tail(&out.stderr, 3000)))
}

#[test]
fn sarama_logs_in_with_scram() {
    let program = common::go::build_programs("sarama", "sluicetest", &["./scram"]).join("scram");
    let (_broker, sasl, _dir) = start_sasl_broker(&[("alice", "alice-pw")], &[]);

    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let answer = sarama(&program, &sasl, mechanism, "alice-pw");
        assert_eq!(answer, serde_json::json!({"ok": true, "sent": 25, "read": 25}), "{mechanism}");
    }
    let refused = sarama(&program, &sasl, "SCRAM-SHA-512", "wrong");
    assert_eq!(refused["ok"], false, "{refused}");
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains("SASL Authentication failed") || error.contains("invalid credentials"), "{error}");
}
