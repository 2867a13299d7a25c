//! The admin API's OpenAPI document (`/api/openapi.json`) is valid and true: schemathesis
//! generates requests for every operation from it, against a live broker holding the data the
//! document's examples name, and checks every answer's status, content type and body against
//! the document, that schema-violating requests are refused, and that no request breaks the
//! server. Needs `scripts/install-api-test-deps.sh` (pinned schemathesis).

mod common;
mod nsq_common;

use common::{run_bounded, Broker};
use nsq_common::http;
use std::process::Command;
use std::time::Duration;

/// Test cases per operation and phase: enough to reach every documented status of each
/// operation, small enough for a 2-core CI machine.
const EXAMPLES_PER_OPERATION: &str = "20";
/// The whole schemathesis run (about 10 s on a quiet machine).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Fixed, so a failure replays the same requests.
const SEED: &str = "20250601";

/// Every check schemathesis has, but `positive_data_acceptance`: it expects every
/// schema-valid request to succeed, and the API rightly refuses valid-looking requests whose
/// meaning is wrong (an unknown config key, a partition count that does not grow) with 400.
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in address")
}

fn call(port: u16, method: &str, path: &str, body: &[u8]) -> String {
    let (status, text) = http(port, method, path, body);
    assert!(status < 300, "{method} {path}: {status} {text}");
    text
}

/// The data the document's examples name: topic `orders` (messages in both partitions, one
/// binary), topic `scratch` (the delete example), NSQ channels `orders/audit` and
/// `orders/retired`, groups `billing` and `finished-job` with committed offsets.
fn seed(port: u16) {
    call(
        port,
        "POST",
        "/api/topics",
        r#"{"name":"orders","partitions":2,"config":{"retention.ms":"86400000"}}"#.as_bytes(),
    );
    call(port, "POST", "/api/topics", r#"{"name":"scratch"}"#.as_bytes());
    for i in 0..4 {
        let body = format!(
            r#"{{"value":"order {i}","key":"k{i}","partition":{},"headers":[{{"key":"h","value":"v"}}]}}"#,
            i % 2
        );
        call(port, "POST", "/api/topics/orders/messages", body.as_bytes());
    }
    let binary = [0xffu8, 0x00, 0x80];
    let mut mpub = 1u32.to_be_bytes().to_vec();
    mpub.extend_from_slice(&(binary.len() as u32).to_be_bytes());
    mpub.extend_from_slice(&binary);
    call(port, "POST", "/mpub?topic=orders&binary=true", &mpub);
    call(port, "POST", "/channel/create?topic=orders&channel=audit", b"");
    call(port, "POST", "/channel/create?topic=orders&channel=retired", b"");
    call(port, "POST", "/api/groups/billing/reset-offsets", r#"{"topic":"orders","to":"earliest"}"#.as_bytes());
    call(port, "POST", "/api/groups/finished-job/reset-offsets", r#"{"topic":"orders","to":"latest"}"#.as_bytes());
}

/// What `/api/mqtt` lists: a retained message and a stored persistent session with a
/// subscription (mosquitto_sub -c leaves it after waiting a second for a message).
fn seed_mqtt(broker: &Broker) {
    let mqtt_port = broker.mqtt_port().to_string();
    let mut publish = Command::new("mosquitto_pub");
    publish.args(["-h", "127.0.0.1", "-p", &mqtt_port, "-t", "orders/status", "-m", "open", "-r", "-q", "1"]);
    let published = run_bounded(&mut publish, Duration::from_secs(30));
    assert!(published.status.success(), "mosquitto_pub: {}", String::from_utf8_lossy(&published.stderr));
    let mut subscribe = Command::new("mosquitto_sub");
    subscribe
        .args(["-h", "127.0.0.1", "-p", &mqtt_port, "-c", "-i", "openapi-seed", "-q", "1"])
        .args(["-t", "audit/#", "-C", "1", "-W", "1"]);
    // Ends with "timed out" (no message on audit/#): the session is what it leaves.
    let _ = run_bounded(&mut subscribe, Duration::from_secs(30));
}

#[test]
fn every_answer_conforms_to_the_openapi_document() {
    // Small limits keep generated topic creations cheap: a document maximum of 10000
    // partitions is answered with 400 here, which the document also allows.
    let broker = Broker::start(&["--max-partitions-per-topic", "4", "--max-topics", "200"]);
    let http_port = port(&broker.http_addr());
    seed(http_port);
    seed_mqtt(&broker);
    let document: serde_json::Value =
        serde_json::from_str(&call(http_port, "GET", "/api/openapi.json", b"")).expect("the document is JSON");
    let operations: usize =
        document["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
    let work = tempfile::tempdir().expect("work dir");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.current_dir(work.path())
        .args(["-m", "schemathesis.cli", "run", &format!("http://127.0.0.1:{http_port}/api/openapi.json")])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", EXAMPLES_PER_OPERATION, "--seed", SEED, "--workers", "1"])
        .args(["--request-timeout", "30", "--no-color"])
        .env_remove("SCHEMATHESIS_HOOKS");
    let out = run_bounded(&mut cmd, RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found answers that break the OpenAPI document (or is not installed: \
         scripts/install-api-test-deps.sh):\n{stdout}\n{stderr}"
    );
    // Every operation was tested (schemathesis leaves out the one serving the document).
    let figure = |label: &str| -> Option<usize> {
        let line = stdout.lines().find(|l| l.trim_start().starts_with(label))?;
        line.trim_start()[label.len()..].trim().split('/').next()?.trim().parse().ok()
    };
    let tested = figure("Tested:");
    assert!(
        tested.is_some_and(|n| n + 1 >= operations) && tested == figure("Selected:"),
        "schemathesis did not test all {operations} operations:\n{stdout}"
    );
}
