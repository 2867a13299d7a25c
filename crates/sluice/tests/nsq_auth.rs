//! NSQ AUTH as nsqd does it, with pynsq over TLS with a client certificate: an external auth
//! server (written here, speaking nsqd's `--auth-http-address` protocol) grants the secret
//! `pub-secret` publish on one topic only. pynsq with that secret publishes to the topic (the
//! AUTH response carries the identity and permission count), is refused another topic and a
//! SUB with `E_UNAUTHORIZED`; a wrong secret gets `E_AUTH_FAILED`; a PUB before AUTH gets
//! `E_AUTH_FIRST`; permissions are asked for again once their TTL runs out; the auth server
//! hears the client's address, `tls=true` and its certificate's common name. Sluice's own
//! tokens file (`--nsq-auth-tokens-file`, SHA-256 hashed secrets) grants and refuses the same
//! way without an auth server. With `--auth-http-request-method post` the server is asked
//! with nsqd's JSON body instead of a query string. An `https://` auth server is reached over
//! TLS, its certificate verified against `--tls-root-ca-file` and its name: pynsq AUTHs, then
//! publishes and consumes; a server whose certificate another CA signed, or that does not name
//! the URL's host, is never asked (`E_AUTH_FAILED`, the reason in the broker's log).
//! Needs `scripts/install-nsq-test-deps.sh` (pynsq).

mod common;
mod nsq_common;

use common::certs::TestPki;
use nsq_common::{client_script, NsqBroker};
use sluice_tls::rustls::{ServerConfig, ServerConnection, StreamOwned};
use sluice_tls::{ClientAuth, TlsFiles, TlsVersion};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest one pynsq scenario may run (each bounds itself to 30 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
const SECRET: &str = "pub-secret";
const TOPIC: &str = "granted";

/// A one-thread nsqd auth server on 127.0.0.1: `GET /auth?...` answered from the secret
/// (granting publish); every query is recorded. Runs until the test process ends.
fn auth_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    auth_server_on("127.0.0.1", None, r#""publish""#)
}

/// The same on `ip`, over TLS with `tls`, granting `permissions` (a JSON list's items).
fn auth_server_on(
    ip: &str,
    tls: Option<Arc<ServerConfig>>,
    permissions: &'static str,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind auth server");
    let port = listener.local_addr().expect("addr").port();
    let queries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&queries);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().flatten().enumerate() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            match &tls {
                None => answer(&stream, &seen, permissions),
                Some(config) => {
                    let Ok(session) = ServerConnection::new(config.clone()) else { continue };
                    let mut tls = StreamOwned::new(session, stream);
                    answer(&mut tls, &seen, permissions);
                    // Every other answer ends without close_notify, as many servers' do.
                    if n % 2 == 0 {
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                    }
                }
            }
        }
    });
    (port, queries)
}

/// Reads one request from `stream`, records it and answers it.
fn answer<S: Read + Write>(stream: S, seen: &Mutex<Vec<String>>, permissions: &str) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return; // e.g. a client that refused the TLS handshake
    }
    let (mut header, mut length) = (String::new(), 0usize);
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        header.clear();
    }
    let mut body = vec![0u8; length.min(4096)];
    let _ = reader.read_exact(&mut body);
    let target = request_line.split(' ').nth(1).unwrap_or("");
    // GET: the query string; POST: "POST /auth " and the JSON body.
    let query = match request_line.starts_with("POST ") {
        true => format!("POST {target} {}", String::from_utf8_lossy(&body)),
        false => target.to_string(),
    };
    seen.lock().unwrap().push(query.clone());
    let granted = query.starts_with("/auth?") && query.contains(&format!("secret={SECRET}&"))
        || query.starts_with("POST /auth ") && query.contains(&format!(r#""secret":["{SECRET}"]"#));
    // ttl 1: the broker must ask again a second later.
    let (status, body) = if granted {
        let grant = format!(
            r#"{{"ttl":1,"identity":"publisher","identity_url":"http://example/publisher",
            "authorizations":[{{"topic":"^{TOPIC}$","channels":[".*"],"permissions":[{permissions}]}}]}}"#
        );
        ("200 OK", grant)
    } else {
        ("403 Forbidden", r#"{"message":"unknown secret"}"#.to_string())
    };
    let _ = write!(
        reader.get_mut(),
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn pynsq(scenario: &str, nsq: &NsqBroker, pki: &TestPki, secret: &str) -> String {
    pynsq_on(scenario, nsq, pki, secret, TOPIC)
}

fn pynsq_on(scenario: &str, nsq: &NsqBroker, pki: &TestPki, secret: &str, topic: &str) -> String {
    let client = pki.dir.join("alice.pem");
    let key = pki.dir.join("alice.key");
    let mut cmd = Command::new("python3");
    cmd.env("STATS_URL", format!("http://127.0.0.1:{}/stats?format=json", nsq.http));
    cmd.arg(client_script("pynsq_secure.py")).args([scenario, &format!("127.0.0.1:{}", nsq.tcp), topic]);
    cmd.arg(&pki.ca_cert).arg(secret).arg(client).arg(key);
    let out = common::run_bounded(&mut cmd, SCENARIO_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.starts_with("OK"),
        "pynsq {scenario}: {stdout}\n{}\n(install the clients with scripts/install-nsq-test-deps.sh)",
        common::tail(&out.stderr, 3000)
    );
    eprintln!("pynsq {scenario} ({secret:?}): {}", stdout.trim());
    stdout
}

#[test]
fn pynsq_auth_against_an_nsqd_auth_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(dir.path());
    pki.client("alice", "/O=Sluice/CN=alice");
    let (auth_port, queries) = auth_server();
    let (cert, key, ca) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
        pki.ca_cert.display().to_string(),
    );
    let auth = format!("127.0.0.1:{auth_port}");
    let nsq = NsqBroker::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-root-ca-file",
        &ca,
        "--tls-client-auth-policy",
        "require",
        "--auth-http-address",
        &auth,
    ]);

    let ok = pynsq("pub", &nsq, &pki, SECRET);
    assert!(ok.contains(r#"AUTH {\"identity\": \"publisher\", \"identity_url\": \"http://example/publisher\", \"permission_count\": 1}"#), "{ok}");
    assert!(ok.contains(r#", "OK"]"#), "the PUB on the granted topic is answered OK: {ok}");

    let other = pynsq("pub_other", &nsq, &pki, SECRET);
    assert!(
        other.contains(&format!("E_UNAUTHORIZED AUTH failed for PUB on \\\"{TOPIC}_other\\\" \\\"\\\"")),
        "{other}"
    );
    let sub = pynsq("sub", &nsq, &pki, SECRET);
    assert!(sub.contains(&format!("E_UNAUTHORIZED AUTH failed for SUB on \\\"{TOPIC}\\\" \\\"c\\\"")), "{sub}");
    let wrong = pynsq("pub", &nsq, &pki, "wrong-secret");
    assert!(wrong.contains("E_AUTH_FAILED AUTH failed"), "{wrong}");
    let first = pynsq("no_auth_pub", &nsq, &pki, "");
    assert!(first.contains("E_AUTH_FIRST AUTH required before PUB"), "{first}");

    // Past the 1 s TTL the second PUB makes the broker ask the auth server again.
    let before = queries.lock().unwrap().len();
    let twice = pynsq("pub_twice", &nsq, &pki, SECRET);
    assert!(twice.contains(r#"["OK", "OK"]"#), "{twice}");
    let asked = queries.lock().unwrap()[before..].to_vec();
    assert_eq!(asked.len(), 2, "AUTH, then again after the TTL: {asked:?}");
    for query in &asked {
        assert!(query.contains("common_name=alice&remote_ip=127.0.0.1&secret=pub-secret&tls=true"), "{query}");
    }
}

#[test]
fn pynsq_auth_with_sluice_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(dir.path());
    pki.client("alice", "/O=Sluice/CN=alice");
    let out = Command::new("sh").args(["-c", "printf %s \"$0\" | sha256sum", "token-1"]).output().expect("sha256sum");
    let hash = String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap_or_default().to_string();
    assert_eq!(hash.len(), 64, "sha256sum: {hash}");
    let tokens = dir.path().join("tokens.json");
    let file = format!(
        r#"{{"tokens":[{{"secret_sha256":"{hash}","identity":"billing","ttl":60,
        "authorizations":[{{"topic":"^billing$","channels":[".*"],"permissions":["publish","subscribe"]}}]}}]}}"#
    );
    std::fs::write(&tokens, file).expect("write tokens");
    let tokens = tokens.display().to_string();
    // No TLS here: pynsq asks for it and gets a plain connection, as from an nsqd without certificates.
    let nsq = NsqBroker::start(&["--nsq-auth-tokens-file", &tokens]);
    let ok = pynsq_on("pub", &nsq, &pki, "token-1", "billing");
    assert!(ok.contains(r#"\"identity\": \"billing\""#) && ok.contains(r#", "OK"]"#), "{ok}");
    let other = pynsq_on("pub_other", &nsq, &pki, "token-1", "billing");
    assert!(other.contains("E_UNAUTHORIZED AUTH failed for PUB on \\\"billing_other\\\""), "{other}");
    let wrong = pynsq_on("pub", &nsq, &pki, "token-2", "billing");
    assert!(wrong.contains("E_AUTH_FAILED AUTH failed"), "{wrong}");
    // nsqd's /stats names a subscriber's AUTH identity.
    let stats = pynsq_on("sub_stats", &nsq, &pki, "token-1", "billing");
    let client: serde_json::Value = serde_json::from_str(stats.trim_start_matches("OK ").trim()).expect("client JSON");
    assert_eq!(
        (client["authed"].clone(), client["auth_identity"].clone()),
        (true.into(), "billing".into()),
        "{client}"
    );
    assert_eq!(client["tls"], false, "{client}");
    // HTTP publishing is not authenticated by nsqd either.
    assert_eq!(common::http(nsq.http, "POST", "/pub?topic=billing_http", b"x").0, 200);
}

#[test]
fn auth_server_asked_with_post() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(dir.path());
    pki.client("alice", "/O=Sluice/CN=alice");
    let (auth_port, queries) = auth_server();
    let auth = format!("127.0.0.1:{auth_port}");
    let nsq = NsqBroker::start(&["--auth-http-address", &auth, "--auth-http-request-method", "post"]);
    let ok = pynsq("pub", &nsq, &pki, SECRET);
    assert!(ok.contains(r#", "OK"]"#), "{ok}");
    let asked = queries.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].starts_with(
            r#"POST /auth {"common_name":[""],"remote_ip":["127.0.0.1"],"secret":["pub-secret"],"tls":["false"]}"#
        ),
        "{asked:?}"
    );
}

/// A TLS server configuration serving `pki`'s server certificate (SAN 127.0.0.1 … .20, localhost).
fn https_config(pki: &TestPki) -> Arc<ServerConfig> {
    let files = TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
        client_auth: ClientAuth::None,
        min_version: TlsVersion::Tls12,
    };
    files.server_config().expect("auth server TLS config")
}

#[test]
fn pynsq_auth_against_an_https_auth_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::create(&dir.path().join("trusted"));
    pki.client("alice", "/O=Sluice/CN=alice");
    let (cert, key, ca) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
        pki.ca_cert.display().to_string(),
    );
    let (port, queries) = auth_server_on("127.0.0.1", Some(https_config(&pki)), r#""publish","subscribe""#);
    let auth = format!("https://127.0.0.1:{port}/auth");
    // The broker's TLS settings, whose root CA also verifies the auth servers.
    let tls = ["--tls-cert", &cert, "--tls-key", &key, "--tls-root-ca-file", &ca];
    let nsq = NsqBroker::start(&[&tls[..], &["--auth-http-address", &auth]].concat());
    // A Writer and a Reader, each AUTHed through the https server, over TLS to the broker.
    let roundtrip = pynsq("roundtrip", &nsq, &pki, SECRET);
    assert!(roundtrip.contains(r#""messages": 41"#), "{roundtrip}");
    let asked = queries.lock().unwrap().clone();
    assert!(asked.len() >= 2, "the Writer and the Reader both AUTH: {asked:?}");
    assert!(asked.iter().all(|q| q.starts_with("/auth?") && q.contains("secret=pub-secret&tls=true")), "{asked:?}");
    let wrong = pynsq("pub", &nsq, &pki, "wrong-secret");
    assert!(wrong.contains("E_AUTH_FAILED AUTH failed"), "refused by the server: {wrong}");

    // Not trusted: a certificate from a CA the broker was not given, and a trusted certificate
    // that does not name the host the URL gives (127.0.0.21 is not among its SANs).
    let other = TestPki::create(&dir.path().join("other"));
    let (other_ca_port, other_ca_queries) = auth_server_on("127.0.0.1", Some(https_config(&other)), r#""publish""#);
    let (wrong_name_port, wrong_name_queries) = auth_server_on("127.0.0.21", Some(https_config(&pki)), r#""publish""#);
    let servers = format!("https://127.0.0.1:{other_ca_port}/auth,https://127.0.0.21:{wrong_name_port}/auth");
    let untrusted = NsqBroker::start(&[&tls[..], &["--auth-http-address", &servers]].concat());
    let refused = pynsq("pub", &untrusted, &pki, SECRET);
    assert!(refused.contains("E_AUTH_FAILED AUTH failed"), "{refused}");
    let log = untrusted.broker.log_contents();
    let reason = log.lines().find(|l| l.contains("AUTH failed")).unwrap_or_default();
    eprintln!("logged: {reason}");
    assert!(
        reason.contains(&format!("https://127.0.0.1:{other_ca_port}/auth - TLS handshake with 127.0.0.1:{other_ca_port}: invalid peer certificate")),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("https://127.0.0.21:{wrong_name_port}/auth - TLS handshake"))
            && reason.contains("not valid for name \\\"127.0.0.21\\\""),
        "{reason}"
    );
    assert!(other_ca_queries.lock().unwrap().is_empty() && wrong_name_queries.lock().unwrap().is_empty());
}
