//! NSQ TLS as nsqd does it, with pynsq: a broker with `--tls-cert --tls-key --tls-required`
//! offers `tls_v1` in IDENTIFY and upgrades the connection in place; pynsq publishes (PUB,
//! MPUB) and consumes over TLS (gnsq too), also with snappy and deflate on top (TLS first, then
//! compression, nsqd's order); a plaintext client is refused everything but IDENTIFY with
//! nsqd's `E_INVALID ... (TLS required)`; a TLS handshake of garbage closes that connection
//! only; the HTTP API is served over TLS on `--https-address`, and plain HTTP answers nsqd's
//! API `403 TLS_REQUIRED` as nsqd's `--tls-required=true` does. With
//! `--tls-client-auth-policy require-verify`, a client without a certificate fails its
//! handshake and one with a certificate from the CA is served.
//! Needs `scripts/install-nsq-test-deps.sh` (pynsq).

mod common;
mod nsq_common;

use common::certs::TestPki;
use nsq_common::{client_script, NsqBroker, Wire, FRAME_ERROR, FRAME_RESPONSE};
use std::process::Command;
use std::time::Duration;

/// Longest one pynsq scenario may run (each bounds itself to 30 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

fn pynsq(scenario: &str, nsq: &NsqBroker, pki: &TestPki, topic: &str) -> String {
    pynsq_with(scenario, nsq, pki, topic, &[])
}

/// `extra`: the secret (empty: none), then a client certificate and key.
fn pynsq_with(scenario: &str, nsq: &NsqBroker, pki: &TestPki, topic: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new("python3");
    cmd.env("STATS_URL", format!("http://127.0.0.1:{}/stats?format=json", nsq.http));
    cmd.arg(client_script("pynsq_secure.py")).args([scenario, &format!("127.0.0.1:{}", nsq.tcp), topic]);
    cmd.arg(&pki.ca_cert).args(extra);
    let out = common::run_bounded(&mut cmd, SCENARIO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.starts_with("OK"),
        "pynsq {scenario}: {stdout}\n{}\n(install the clients with scripts/install-nsq-test-deps.sh)",
        common::tail(&out.stderr, 3000)
    );
    eprintln!("pynsq {scenario}: {}", stdout.trim());
    stdout
}

fn gnsq(scenario: &str, nsq: &NsqBroker, pki: &TestPki, topic: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg(client_script("gnsq_secure.py")).args([scenario, &format!("127.0.0.1:{}", nsq.tcp), topic]);
    cmd.arg(&pki.ca_cert);
    let out = common::run_bounded(&mut cmd, SCENARIO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.starts_with("OK"),
        "gnsq {scenario}: {stdout}\n{}\n(install the clients with scripts/install-nsq-test-deps.sh)",
        common::tail(&out.stderr, 3000)
    );
    eprintln!("gnsq {scenario}: {}", stdout.trim());
    stdout
}

fn gnsq_refusal(nsq: &NsqBroker, pki: &TestPki) -> String {
    gnsq("plain_pub", nsq, pki, "plain")
}

#[test]
fn pynsq_over_tls_and_plaintext_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(dir.path());
    let https = common::free_port();
    let (cert, key) = (pki.server_cert.display().to_string(), pki.server_key.display().to_string());
    let https_addr = format!("127.0.0.1:{https}");
    let nsq =
        NsqBroker::start(&["--tls-cert", &cert, "--tls-key", &key, "--tls-required", "--https-address", &https_addr]);

    // Garbage where the ClientHello belongs: that connection closes, nothing else does.
    let mut garbage = Wire::connect(nsq.tcp);
    garbage.with_body("IDENTIFY", br#"{"feature_negotiation":true,"tls_v1":true}"#);
    let (kind, identify) = garbage.frame().expect("IDENTIFY response");
    assert_eq!(kind, FRAME_RESPONSE);
    let identify: serde_json::Value = serde_json::from_slice(&identify).expect("IDENTIFY JSON");
    assert_eq!(identify["tls_v1"], true, "{identify}");
    assert_eq!(identify["auth_required"], false, "{identify}");
    garbage.send(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0xff, 0xff]);
    assert!(garbage.closed(), "a garbage handshake closes its connection");

    for scenario in ["roundtrip", "roundtrip_snappy", "roundtrip_deflate", "bulk"] {
        pynsq(scenario, &nsq, &pki, &common::unique_topic("tls").replace('-', "_"));
    }

    // gnsq (gevent) too: its own TLS upgrade, PUB and MPUB, a consumer.
    let gnsq = gnsq("roundtrip", &nsq, &pki, &common::unique_topic("gtls").replace('-', "_"));
    assert!(gnsq.contains(r#""messages": 30, "tls_connections": 2"#), "{gnsq}");
    let refused = gnsq_refusal(&nsq, &pki);
    assert!(
        refused.contains("NSQInvalid") && refused.contains("cannot PUB in current state (TLS required)"),
        "{refused}"
    );

    // A client that does not ask for TLS: IDENTIFY is answered, PUB is refused as nsqd does.
    let refused = pynsq("plain_pub", &nsq, &pki, "plain");
    assert!(refused.contains("E_INVALID cannot PUB in current state (TLS required)"), "{refused}");
    let mut raw = Wire::connect(nsq.tcp);
    raw.line("NOP");
    raw.expect(FRAME_ERROR, b"E_INVALID cannot NOP in current state (TLS required)");
    assert!(raw.closed(), "the refusal is fatal, as in nsqd");

    // HTTPS: garbage instead of a ClientHello closes that connection only.
    let mut bad = std::net::TcpStream::connect(("127.0.0.1", https)).expect("connect https");
    bad.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    std::io::Write::write_all(&mut bad, b"GET /ping HTTP/1.1\r\n\r\n").expect("send garbage");
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut bad, &mut answer);
    assert!(!answer.starts_with(b"HTTP"), "plain HTTP is not served on the HTTPS port");

    // HTTPS: the nsqd HTTP API over TLS, verified against the test CA.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--max-time", "10", "--cacert"]).arg(&pki.ca_cert);
    curl.arg(format!("https://127.0.0.1:{https}/ping"));
    let out = common::run_bounded(&mut curl, Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{}", String::from_utf8_lossy(&out.stderr));
    // nsqd's --tls-required=true: plain HTTP answers nsqd's API with 403 TLS_REQUIRED naming
    // the HTTPS port; Sluice's own admin API and /metrics on that listener stay served.
    let (status, body) = common::http(nsq.http, "GET", "/ping", b"");
    assert_eq!((status, body), (403, format!(r#"{{"message": "TLS_REQUIRED", "https_port": {https}}}"#)));
    assert_eq!(common::http(nsq.http, "POST", "/pub?topic=plain", b"x").0, 403);
    assert_eq!(common::http(nsq.http, "GET", "/metrics", b"").0, 200);
    assert_eq!(common::http(nsq.http, "GET", "/api/topics", b"").0, 200);
}

#[test]
fn require_verify_wants_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(dir.path());
    let alice = pki.client("alice", "/CN=alice");
    let (cert, key, ca) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
        pki.ca_cert.display().to_string(),
    );
    let nsq = NsqBroker::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-root-ca-file",
        &ca,
        "--tls-client-auth-policy",
        "require-verify",
        // TCP only: the plain HTTP listener keeps serving /stats (a policy alone means `true`).
        "--tls-required",
        "tcp-https",
    ]);
    let refused = pynsq("pub", &nsq, &pki, "mtls");
    assert!(refused.contains("failed to upgrade to TLS"), "no client certificate: {refused}");
    let (client_cert, client_key) = (alice.cert.display().to_string(), alice.key.display().to_string());
    let served = pynsq_with("pub", &nsq, &pki, "mtls", &["", &client_cert, &client_key]);
    assert!(served.contains(r#"["OK"]"#), "{served}");
    // nsqd's /stats shows the subscriber's TLS.
    let stats = pynsq_with("sub_stats", &nsq, &pki, "mtls", &["", &client_cert, &client_key]);
    let client: serde_json::Value = serde_json::from_str(stats.trim_start_matches("OK ").trim()).expect("client JSON");
    assert_eq!(client["tls"], true, "{client}");
    assert!(client["tls_version"].as_str().is_some_and(|v| v.starts_with("TLS1.")), "{client}");
    assert!(client["tls_cipher_suite"].as_str().is_some_and(|c| c.starts_with("TLS")), "{client}");
}
