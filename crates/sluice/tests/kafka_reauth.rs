//! Proves KIP-368 re-authentication (`--connections-max-reauth-ms`): librdkafka (2.12, the
//! rdkafka crate's) produces over SASL PLAIN for several login lifetimes on the same
//! connections, re-authenticating before each login ends, so no connection is closed for an
//! expired login and every send succeeds; a raw connection that does not re-authenticate is
//! closed at its first request after the login ended; a re-authentication renews the login,
//! must keep the mechanism (ILLEGAL_SASL_STATE otherwise) and the principal (Kafka's
//! "Cannot change principals during re-authentication", and the connection closes).

mod common;

use common::raw::{Raw, Reply};
use common::{runtime, start_sasl_broker, unique_topic, wait_until, Broker};
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request, StrBytes};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::time::{Duration, Instant};

/// Short, so a test sees several lifetimes; librdkafka re-authenticates at 90% of it.
const LIFETIME_MS: u64 = 1500;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker with one SASL_PLAINTEXT listener, users alice and bob, logins lasting
/// `LIFETIME_MS`; returns it, the listener's address and the directory holding its data.
fn start_broker() -> (Broker, String, tempfile::TempDir) {
    let lifetime = LIFETIME_MS.to_string();
    start_sasl_broker(&[("alice", "alice-pw"), ("bob", "bob-pw")], &["--connections-max-reauth-ms", &lifetime])
}

/// Logs `raw` in with PLAIN (handshake v1, SaslAuthenticate v1): (error code, message,
/// session lifetime).
fn login(raw: &mut Raw, mechanism: &'static str, user: &str, password: &str) -> (i16, String, i64) {
    let handshake =
        raw.request(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)));
    if handshake.error_code != 0 {
        return (handshake.error_code, String::new(), 0);
    }
    let token = format!("\0{user}\0{password}").into_bytes();
    let answer = raw.request(1, &SaslAuthenticateRequest::default().with_auth_bytes(token.into()));
    let message = answer.error_message.map(|m| m.to_string()).unwrap_or_default();
    (answer.error_code, message, answer.session_lifetime_ms)
}

/// Sends a Metadata v1 request for no topic and reads what comes back.
fn metadata(raw: &mut Raw) -> Reply {
    let correlation_id = raw.next_correlation_id();
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(MetadataRequest::KEY)
        .with_request_api_version(1)
        .with_correlation_id(correlation_id);
    let mut body = bytes::BytesMut::new();
    MetadataRequest::default().with_topics(Some(Vec::new())).encode(&mut body, 1).expect("encode");
    raw.send_request_bytes(&header, MetadataRequest::header_version(1), &body);
    raw.read_reply()
}

#[test]
fn librdkafka_re_authenticates_and_keeps_its_connections() {
    let (broker, sasl, _dir) = start_broker();
    let topic = unique_topic("reauth");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &sasl)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", "alice")
        .set("sasl.password", "alice-pw")
        .set("acks", "all")
        .create()
        .expect("producer");
    let rt = runtime();
    let send = |i: usize| {
        let value = format!("m{i}");
        let record = FutureRecord::<(), str>::to(&topic).payload(&value);
        rt.block_on(producer.send(record, SEND_TIMEOUT)).map(|_| ()).map_err(|(e, _)| e.to_string())
    };
    send(0).expect("first send");
    let logins_at_start = broker.log_contents().matches("principal=User:alice").count();
    // Four lifetimes of steady sends.
    let until = Instant::now() + Duration::from_millis(4 * LIFETIME_MS);
    let mut sent = 1;
    while Instant::now() < until {
        send(sent).unwrap_or_else(|e| panic!("send {sent} failed: {e}"));
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = broker.log_contents();
    assert!(!log.contains("login expired"), "no connection closed for an expired login:\n{log}");
    assert_eq!(
        log.matches("principal=User:alice").count(),
        logins_at_start,
        "no new connection (and so no new login) was needed"
    );
    eprintln!("{sent} sends over {} ms of {LIFETIME_MS} ms logins", 4 * LIFETIME_MS);
}

#[test]
fn a_login_ends_unless_renewed_as_the_same_principal() {
    let (broker, sasl, _dir) = start_broker();
    let addr = sasl.parse().expect("address");

    // Not renewed: the first request after the login ended closes the connection.
    let mut lapsed = Raw::connect_addr(addr);
    let (code, _, lifetime) = login(&mut lapsed, "PLAIN", "alice", "alice-pw");
    assert_eq!((code, lifetime), (0, LIFETIME_MS as i64), "SaslAuthenticate v1 says how long the login lasts");
    assert!(matches!(metadata(&mut lapsed), Reply::Frame(_)), "served while the login lasts");
    // Renewed (same mechanism, same principal) before it ends: served after the first end.
    let mut renewed = Raw::connect_addr(addr);
    assert_eq!(login(&mut renewed, "PLAIN", "alice", "alice-pw").0, 0);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(LIFETIME_MS / 2));
    assert_eq!(login(&mut renewed, "PLAIN", "alice", "alice-pw").0, 0, "re-authentication");
    wait_until(Duration::from_secs(10), "the first login's end", || {
        started.elapsed() > Duration::from_millis(LIFETIME_MS + 100)
    });
    assert!(matches!(metadata(&mut lapsed), Reply::Closed), "the lapsed login's connection is closed");
    assert!(matches!(metadata(&mut renewed), Reply::Frame(_)), "the renewed login is served");
    wait_until(Duration::from_secs(10), "the lapse logged", || broker.log_contents().contains("login expired"));

    // Another mechanism: refused.
    let mut other = Raw::connect_addr(addr);
    assert_eq!(login(&mut other, "PLAIN", "alice", "alice-pw").0, 0);
    assert_eq!(login(&mut other, "SCRAM-SHA-256", "alice", "alice-pw").0, 34, "ILLEGAL_SASL_STATE");
    // Another principal: refused with Kafka's message, and the connection closed.
    let mut switch = Raw::connect_addr(addr);
    assert_eq!(login(&mut switch, "PLAIN", "alice", "alice-pw").0, 0);
    let (code, message, _) = login(&mut switch, "PLAIN", "bob", "bob-pw");
    assert_eq!(code, 58, "SASL_AUTHENTICATION_FAILED: {message}");
    assert!(message.contains("Cannot change principals during re-authentication"), "{message}");
    switch.expect_closed("after a principal change");
}
