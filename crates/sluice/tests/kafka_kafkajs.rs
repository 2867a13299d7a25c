//! Proves kafkajs (npm, a pure-JavaScript client with its own SCRAM code) logs in with SASL
//! SCRAM-SHA-256 and SCRAM-SHA-512 on a SASL_PLAINTEXT listener, produces with acks=all and
//! reads everything back through a consumer group, and that a wrong password gets kafkajs's
//! authentication error (Kafka's SASL_AUTHENTICATION_FAILED).

mod common;

use common::{run_bounded, start_sasl_broker, unique_topic};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const COUNT: usize = 20;

/// Runs `scram.mjs`; its JSON line.
fn kafkajs(broker: &str, mechanism: &str, password: &str, topic: &str) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/kafkajs");
    assert!(dir.join("node_modules/kafkajs").is_dir(), "run scripts/install-kafkajs-test-deps.sh");
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("scram.mjs"))
        .args([broker, mechanism, "alice", password, topic, &COUNT.to_string()])
        .current_dir(&dir)
        .stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("kafkajs {mechanism}: {e}\n{stdout}\n{}", common::tail(&out.stderr, 3000)))
}

#[test]
fn kafkajs_logs_in_with_scram_and_round_trips() {
    let (_broker, sasl, _dir) = start_sasl_broker(&[("alice", "alice-pw")], &[]);

    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = unique_topic("kafkajs");
        let answer = kafkajs(&sasl, mechanism, "alice-pw", &topic);
        assert_eq!(answer["ok"], true, "{mechanism}: {answer}");
        let mut read: Vec<String> =
            answer["read"].as_array().expect("read").iter().filter_map(|v| v.as_str().map(String::from)).collect();
        read.sort_by_key(|v| v.rsplit('-').next().and_then(|n| n.parse::<usize>().ok()));
        let expected: Vec<String> = (0..COUNT).map(|i| format!("{mechanism}-{i}")).collect();
        assert_eq!(read, expected, "{mechanism}: every message, once");
    }
    let refused = kafkajs(&sasl, "SCRAM-SHA-512", "wrong", &unique_topic("kafkajs-refused"));
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"], "KafkaJSSASLAuthenticationError", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("SASL_AUTHENTICATION_FAILED") || message.contains("invalid credentials"), "{message}");
}
