//! Proves Kafka's security protocols with real clients: kcat (Debian's librdkafka) over
//! SASL_SSL with SCRAM-SHA-512 and over SSL with a client certificate (whose subject becomes
//! the principal), each listener advertising its own address; a wrong password shows the user
//! Kafka's authentication error while the broker keeps serving others; requests before a login
//! and garbage into a TLS port close only that connection; credentials made with `sluice user`
//! online (AlterUserScramCredentials) and offline (`--data-dir`) are stored hashed and survive
//! a restart; SIGHUP reloads the certificate; kafka-python (SaslHandshake v0, bare tokens) and
//! confluent-kafka log in with PLAIN and SCRAM-SHA-256.

mod common;

use common::certs::TestPki;
use common::{free_port, run_bounded, unique_topic, wait_until, Broker, BrokerOpts, SLUICE_BIN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One client run: a debug-build broker and a cold librdkafka start stay well within it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const PYTHON: &str = "/usr/bin/python3";
const PASSWORD: &str = "alice-secret-1";

/// A broker with PLAINTEXT (the harness's), SASL_SSL, SSL and SASL_PLAINTEXT listeners.
struct SecureBroker {
    broker: Broker,
    pki: TestPki,
    sasl_ssl: String,
    ssl: String,
    sasl_plaintext: String,
}

fn start(pki_dir: &Path) -> SecureBroker {
    let pki = TestPki::create(pki_dir);
    let (sasl_ssl, ssl, sasl_plaintext) = (free_port(), free_port(), free_port());
    let listeners =
        format!("SASL_SSL://127.0.0.1:{sasl_ssl},SSL://127.0.0.1:{ssl},SASL_PLAINTEXT://127.0.0.1:{sasl_plaintext}");
    let args = vec![
        "--kafka-listener".to_string(),
        listeners,
        "--ssl-cert".into(),
        pki.server_cert.display().to_string(),
        "--ssl-key".into(),
        pki.server_key.display().to_string(),
        "--ssl-client-ca".into(),
        pki.ca_cert.display().to_string(),
        "--ssl-client-auth".into(),
        "requested".into(),
    ];
    let broker = Broker::start_with(BrokerOpts { args, ..BrokerOpts::default() });
    SecureBroker {
        broker,
        pki,
        sasl_ssl: format!("127.0.0.1:{sasl_ssl}"),
        ssl: format!("127.0.0.1:{ssl}"),
        sasl_plaintext: format!("127.0.0.1:{sasl_plaintext}"),
    }
}

/// `sluice user …` as an operator runs it; returns stdout.
fn sluice_user(args: &[&str], password: Option<&str>) -> String {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.arg("user").args(args).stdin(Stdio::null());
    common::clear_sluice_env(&mut cmd);
    if let Some(password) = password {
        cmd.env("SLUICE_USER_PASSWORD", password);
    }
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sluice user {args:?}: {}\n{stdout}{stderr}", out.status);
    stdout.to_string()
}

fn kcat(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("kcat");
    cmd.args(args);
    let input = tempfile::NamedTempFile::new().expect("stdin file");
    if let Some(text) = stdin {
        std::fs::write(input.path(), text).expect("write stdin");
        cmd.stdin(std::fs::File::open(input.path()).expect("open stdin"));
    } else {
        cmd.stdin(Stdio::null());
    }
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn scram512(s: &SecureBroker, password: &str) -> Vec<String> {
    [
        "-b",
        &s.sasl_ssl,
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        "sasl.username=alice",
        "-X",
        &format!("sasl.password={password}"),
        "-X",
        &format!("ssl.ca.location={}", s.pki.ca_cert.display()),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn kcat_over_sasl_ssl_and_ssl_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(&dir.path().join("pki"));
    let added = sluice_user(&["add", "alice", "--bootstrap", &s.broker.bootstrap()], Some(PASSWORD));
    assert!(added.contains("SCRAM-SHA-512"), "{added}");
    // Stored salted and hashed: the password is nowhere in the data directory's file.
    let stored = std::fs::read_to_string(s.broker.data_dir().join("users.json")).expect("credentials file");
    assert!(stored.contains("stored_key") && !stored.contains(PASSWORD), "{stored}");

    let topic = unique_topic("sasl-ssl");
    let auth = scram512(&s, PASSWORD);
    let mut produce = refs(&auth);
    produce.extend(["-P", "-t", &topic]);
    let (ok, _, err) = kcat(&produce, Some("one\ntwo\nthree\n"));
    assert!(ok, "kcat produce over SASL_SSL failed: {err}");
    let mut consume = refs(&auth);
    consume.extend(["-C", "-t", &topic, "-o", "beginning", "-e", "-q"]);
    let (ok, out, err) = kcat(&consume, None);
    assert!(ok && out.lines().collect::<Vec<_>>() == ["one", "two", "three"], "consume: {out}\n{err}");
    // Metadata on a listener names the broker by that listener's address.
    let mut metadata = refs(&auth);
    metadata.push("-L");
    let (ok, out, err) = kcat(&metadata, None);
    assert!(ok && out.contains(&format!("at {} (controller)", s.sasl_ssl)), "metadata over SASL_SSL: {out}\n{err}");

    // SSL with a client certificate: served, advertised on the SSL port, principal = subject.
    let cert = s.pki.client("alice", "/O=Sluice Tests/CN=alice");
    let ssl_args = [
        "-b".to_string(),
        s.ssl.clone(),
        "-X".into(),
        "security.protocol=SSL".into(),
        "-X".into(),
        format!("ssl.ca.location={}", s.pki.ca_cert.display()),
        "-X".into(),
        format!("ssl.certificate.location={}", cert.cert.display()),
        "-X".into(),
        format!("ssl.key.location={}", cert.key.display()),
        "-C".into(),
        "-t".into(),
        topic.clone(),
        "-o".into(),
        "beginning".into(),
        "-e".into(),
        "-q".into(),
    ];
    let (ok, out, err) = kcat(&refs(&ssl_args), None);
    assert!(ok && out.lines().count() == 3, "consume over SSL with a client certificate: {out}\n{err}");
    assert!(
        s.broker.log_contents().contains("principal=User:CN=alice,O=Sluice Tests"),
        "the client certificate's subject is the principal"
    );
}

#[test]
fn a_wrong_password_shows_kafkas_error_and_the_broker_serves_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(&dir.path().join("pki"));
    sluice_user(&["add", "alice", "--bootstrap", &s.broker.bootstrap()], Some(PASSWORD));
    let mut wrong = refs(&scram512(&s, "not-the-password")).into_iter().map(String::from).collect::<Vec<_>>();
    // Few reconnects, so this test's failures stay below the per-address limit.
    wrong.extend(["-L", "-m", "5", "-X", "reconnect.backoff.ms=1000"].map(String::from));
    let (ok, _, err) = kcat(&refs(&wrong), None);
    assert!(!ok, "a wrong password must fail");
    assert!(
        err.contains(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        ),
        "kcat shows Kafka's message: {err}"
    );

    // A request other than the SASL ones before a login closes that connection.
    let mut raw = TcpStream::connect(&s.sasl_plaintext).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    // Metadata v1, correlation 7, client id "t", all topics (null array).
    let metadata: &[u8] = &[0, 0, 0, 15, 0, 3, 0, 1, 0, 0, 0, 7, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    raw.write_all(metadata).expect("write");
    let mut buf = [0u8; 16];
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)), "closed without an answer");

    // Garbage instead of a TLS ClientHello closes that one connection.
    let mut garbage = TcpStream::connect(&s.sasl_ssl).expect("connect");
    garbage.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    garbage.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9]).expect("write");
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    let mut sink = Vec::new();
    let _ = garbage.read_to_end(&mut sink);
    s.broker.assert_running();

    // The right password still works, right after, from the same address.
    let right_args = scram512(&s, PASSWORD);
    let mut right = refs(&right_args);
    right.push("-L");
    let (ok, out, err) = kcat(&right, None);
    assert!(ok && out.contains("1 brokers"), "after the failures: {out}\n{err}");
}

#[test]
fn offline_users_survive_a_restart_and_sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = start(&dir.path().join("pki"));
    s.broker.stop();
    let data_dir = s.broker.data_dir().display().to_string();
    sluice_user(&["add", "bob", "--data-dir", &data_dir, "--mechanism", "SCRAM-SHA-256"], Some("bob-pw-123"));
    s.broker.restart();
    let listed = sluice_user(&["list", "--json", "--bootstrap", &s.broker.bootstrap()], None);
    assert!(listed.contains("\"bob\"") && listed.contains("SCRAM-SHA-256"), "{listed}");
    let plain = [
        "-b",
        &s.sasl_plaintext,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        "sasl.username=bob",
        "-X",
        "sasl.password=bob-pw-123",
        "-L",
    ];
    let (ok, out, err) = kcat(&plain, None);
    assert!(ok && out.contains(&format!("at {} (controller)", s.sasl_plaintext)), "PLAIN login: {out}\n{err}");
    sluice_user(&["delete", "bob", "--bootstrap", &s.broker.bootstrap()], None);
    let (ok, _, _) = kcat(&[&plain[..plain.len() - 1], &["-L", "-m", "5"]].concat(), None);
    assert!(!ok, "a deleted user cannot log in");

    // Rotate the server certificate in place and SIGHUP: new handshakes see the new one.
    let rotated = s.pki.client("rotated", "/CN=rotated-server");
    std::fs::copy(&rotated.cert, &s.pki.server_cert).expect("replace cert");
    std::fs::copy(&rotated.key, &s.pki.server_key).expect("replace key");
    common::send_signal(s.broker.pid().expect("running"), "HUP");
    wait_until(Duration::from_secs(20), "the reloaded certificate", || {
        server_subject(&s.ssl).contains("rotated-server")
    });
    s.broker.assert_running();
}

/// The subject of the certificate the server shows, as `openssl s_client` prints it.
fn server_subject(addr: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", addr, "-brief"]).stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}

/// One PLAIN login over SaslHandshake v1 + SaslAuthenticate v2 on a new connection.
fn raw_plain_login(addr: &str, password: &str) -> (i16, String) {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    use kafka_protocol::protocol::StrBytes;
    let mut raw = common::raw::Raw::connect_addr(addr.parse().expect("address"));
    let handshake = raw.request(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")));
    assert_eq!(handshake.error_code, 0, "PLAIN is offered");
    let token = format!("\0alice\0{password}");
    let answer = raw.request(2, &SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into()));
    (answer.error_code, answer.error_message.map(|m| m.to_string()).unwrap_or_default())
}

#[test]
fn failed_logins_are_limited_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(&dir.path().join("pki"));
    sluice_user(&["add", "alice", "--bootstrap", &s.broker.bootstrap()], Some(PASSWORD));
    assert_eq!(raw_plain_login(&s.sasl_plaintext, PASSWORD).0, 0, "the right password logs in");
    for _ in 0..10 {
        let (code, message) = raw_plain_login(&s.sasl_plaintext, "wrong");
        assert_eq!((code, message.as_str()), (58, "Authentication failed: Invalid username or password"));
    }
    // Past ten failures within a minute this address is refused even with the right password.
    let (code, message) = raw_plain_login(&s.sasl_plaintext, PASSWORD);
    assert_eq!(code, 58, "{message}");
    assert!(message.contains("too many failed authentication attempts"), "{message}");
}

fn python_client(client: &str, bootstrap: &str, mechanism: &str, password: &str, timeout_s: u32) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/python/sasl_clients.py");
    let topic = unique_topic(&format!("{client}-{mechanism}").to_lowercase());
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script)
        .args(["--client", client, "--bootstrap", bootstrap, "--mechanism", mechanism])
        .args(["--user", "alice", "--password", password, "--topic", &topic, "--timeout", &timeout_s.to_string()])
        .stdin(Stdio::null());
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("{client}: no JSON summary ({e})\nstdout: {stdout}\nstderr: {}", common::tail(&out.stderr, 4000))
    })
}

#[test]
fn python_clients_log_in_with_plain_and_scram_sha_256() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(&dir.path().join("pki"));
    sluice_user(&["add", "alice", "--bootstrap", &s.broker.bootstrap()], Some(PASSWORD));
    for client in ["kafka-python", "confluent"] {
        for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
            let summary = python_client(client, &s.sasl_plaintext, mechanism, PASSWORD, 20);
            eprintln!("{summary}");
            assert!(summary["ok"] == true && summary["consumed"] == 20, "{client} {mechanism}: {summary}");
        }
    }
    let refused = python_client("kafka-python", &s.sasl_plaintext, "SCRAM-SHA-256", "wrong", 5);
    assert!(refused["ok"] == false, "a wrong password is refused: {refused}");
}
