//! NSQ protocol V2 over raw wire bytes: publish/subscribe, FIN/REQ/TOUCH, timeouts, DPUB,
//! MPUB, and nsqd's errors for bad input, against the real binary.

mod common;
mod nsq_common;

use nsq_common::{NsqBroker, FRAME_ERROR, FRAME_RESPONSE};
use std::time::{Duration, Instant};

/// The first channel of a topic receives what was published before it existed; a later
/// channel starts at the tail; each channel gets every message after that.
#[test]
fn first_channel_gets_backlog_and_every_channel_gets_every_message() {
    let nsq = NsqBroker::start(&[]);
    let mut publisher = nsq.wire();
    publisher.publish("fan", b"early");
    let mut a = nsq.wire();
    a.subscribe("fan", "a", 10);
    let first = a.message().expect("backlog message");
    assert_eq!(first.body, b"early");
    assert_eq!(first.attempts, 1);
    a.line(&format!("FIN {}", first.id));
    let mut b = nsq.wire();
    b.subscribe("fan", "b", 10);
    publisher.publish("fan", b"late");
    assert_eq!(a.message().expect("a late").body, b"late");
    assert_eq!(b.message().expect("b late").body, b"late");
}

/// REQ with a delay holds the message back; a message not FINished in time comes back with
/// its attempts counted; TOUCH keeps it in flight.
#[test]
fn req_timeout_and_touch() {
    let nsq = NsqBroker::start(&["--msg-timeout", "1500ms"]);
    let mut publisher = nsq.wire();
    let mut c = nsq.wire();
    c.subscribe("work", "c", 1);
    publisher.publish("work", b"job");
    let m = c.message().expect("first delivery");
    let started = Instant::now();
    c.line(&format!("REQ {} 800", m.id));
    let again = c.message().expect("after REQ delay");
    assert!(started.elapsed() >= Duration::from_millis(700), "REQ delay not honoured: {:?}", started.elapsed());
    assert_eq!((again.id.clone(), again.attempts), (m.id.clone(), 2));
    // Not finished within msg_timeout (1.5 s): delivered again with attempts 3.
    let timed_out = c.message().expect("after timeout");
    assert_eq!(timed_out.attempts, 3);
    // TOUCH twice across more than one timeout: no redelivery meanwhile.
    let touched_at = Instant::now();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(900));
        c.line(&format!("TOUCH {}", timed_out.id));
    }
    c.line(&format!("FIN {}", timed_out.id));
    c.line("NOP");
    c.stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    assert!(c.frame().is_none(), "a touched and finished message came back");
    assert!(touched_at.elapsed() >= Duration::from_millis(1800));
}

/// DPUB is not delivered before its deferral; MPUB delivers every message, in order.
#[test]
fn dpub_waits_and_mpub_is_whole() {
    let nsq = NsqBroker::start(&[]);
    let mut c = nsq.wire();
    c.subscribe("later", "c", 100);
    let mut p = nsq.wire();
    let sent = Instant::now();
    p.with_body("DPUB later 1500", b"deferred");
    p.expect_ok();
    let mut body = 3u32.to_be_bytes().to_vec();
    for m in [&b"m1"[..], b"m2", b"m3"] {
        body.extend_from_slice(&(m.len() as u32).to_be_bytes());
        body.extend_from_slice(m);
    }
    p.with_body("MPUB later", &body);
    p.expect_ok();
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = c.message().expect("message");
        got.push((String::from_utf8_lossy(&m.body).to_string(), sent.elapsed()));
        c.line(&format!("FIN {}", m.id));
    }
    let names: Vec<&str> = got.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(names, ["m1", "m2", "m3", "deferred"]);
    assert!(got[3].1 >= Duration::from_millis(1500), "DPUB delivered early: {:?}", got[3].1);
}

/// nsqd's errors: fatal ones close the connection, FIN of an unknown id does not; a bad
/// client never disturbs another.
#[test]
fn bad_input_gets_nsqd_errors() {
    let nsq = NsqBroker::start(&["--max-msg-size", "1024", "--max-rdy-count", "50"]);
    let mut bystander = nsq.wire();
    bystander.subscribe("ok", "c", 10);

    let mut w = nsq.wire();
    w.line("BOGUS x");
    w.expect(FRAME_ERROR, b"E_INVALID invalid command BOGUS");
    assert!(w.closed());

    let mut w = nsq.wire();
    w.with_body("PUB bad!topic", b"x");
    w.expect(FRAME_ERROR, b"E_BAD_TOPIC PUB topic name \"bad!topic\" is not valid");

    let mut w = nsq.wire();
    w.line("SUB ok bad/channel");
    w.expect(FRAME_ERROR, b"E_BAD_CHANNEL SUB channel name \"bad/channel\" is not valid");

    let mut w = nsq.wire();
    w.with_body("PUB ok", &[b'x'; 2000]);
    w.expect(FRAME_ERROR, b"E_BAD_MESSAGE PUB message too big 2000 > 1024");
    assert!(w.closed());

    let mut w = nsq.wire();
    w.subscribe("ok", "c", 1);
    w.line("FIN 0000000000000063");
    w.expect(FRAME_ERROR, b"E_FIN_FAILED FIN 0000000000000063 failed ID not in flight");
    w.line("RDY 51");
    w.expect(FRAME_ERROR, b"E_INVALID RDY count 51 out of range 0-50");
    assert!(w.closed());

    let mut w = nsq.wire();
    w.line("FIN 0000000000000001");
    w.expect(FRAME_ERROR, b"E_INVALID cannot FIN in current state");

    let mut p = nsq.wire();
    p.publish("ok", b"still served");
    assert_eq!(bystander.message().expect("bystander").body, b"still served");
    let mut w = nsq.wire();
    w.with_body("IDENTIFY", br#"{"heartbeat_interval": 5}"#);
    w.expect(FRAME_ERROR, b"E_BAD_BODY IDENTIFY heartbeat interval (5) is invalid");
    w.line("CLS");
}

/// A client that subscribes with a high RDY and never reads is disconnected once the
/// server cannot write to it; the broker keeps serving others.
#[test]
fn a_client_that_never_reads_is_dropped() {
    let nsq = NsqBroker::start(&["--max-rdy-count", "2500"]);
    let mut sink = nsq.wire();
    sink.subscribe("flood", "slow", 2500);
    let mut p = nsq.wire();
    let body = vec![b'z'; 512 * 1024];
    for _ in 0..40 {
        p.publish("flood", &body);
    }
    // 20 MiB cannot fit in socket buffers: the server's write times out (10 s) and it closes.
    common::wait_until(Duration::from_secs(60), "the non-reading client to be dropped", || {
        nsq.channel_stats("flood", "slow")["clients"] == 0
    });
    let mut other = nsq.wire();
    other.subscribe("flood", "fast", 1);
    p.publish("flood", &body);
    let m = other.message().expect("other client still served");
    assert_eq!(m.body.len(), body.len());
    sink.stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    assert!(sink.closed(), "the non-reading client was not disconnected");
}

/// IDENTIFY with feature negotiation answers nsqd's JSON.
#[test]
fn identify_negotiates_features() {
    let nsq = NsqBroker::start(&[]);
    let mut w = nsq.wire();
    w.with_body("IDENTIFY", br#"{"feature_negotiation": true, "msg_timeout": 5000, "client_id": "t"}"#);
    let (kind, data) = w.frame().expect("identify response");
    assert_eq!(kind, FRAME_RESPONSE);
    let json: serde_json::Value = serde_json::from_slice(&data).expect("json");
    assert_eq!(json["max_rdy_count"], 2500);
    assert_eq!(json["msg_timeout"], 5000);
    for key in [
        "version",
        "max_msg_timeout",
        "tls_v1",
        "deflate",
        "deflate_level",
        "max_deflate_level",
        "snappy",
        "sample_rate",
        "auth_required",
        "output_buffer_size",
        "output_buffer_timeout",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
}

/// Heartbeats arrive at the negotiated interval; a client that answers none is
/// disconnected after two missed intervals, while one that answers NOP stays.
#[test]
fn heartbeats_and_disconnect_after_two_missed() {
    use std::io::Read;
    let nsq = NsqBroker::start(&[]);
    let mut silent = nsq.wire();
    silent.with_body("IDENTIFY", br#"{"heartbeat_interval": 1000}"#);
    silent.expect_ok();
    let mut lively = nsq.wire();
    lively.with_body("IDENTIFY", br#"{"heartbeat_interval": 1000}"#);
    lively.expect_ok();
    let silent_check = std::thread::spawn(move || {
        let started = Instant::now();
        let mut head = [0u8; 8];
        silent.stream.read_exact(&mut head).expect("heartbeat frame");
        let mut data = vec![0u8; u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize - 4];
        silent.stream.read_exact(&mut data).expect("heartbeat body");
        assert_eq!(data, b"_heartbeat_");
        assert!(started.elapsed() >= Duration::from_millis(800), "heartbeat too early");
        assert!(silent.closed(), "silent client not disconnected");
        let closed_after = started.elapsed();
        // Not before two intervals were missed; that it happens at all is bounded by the
        // socket's read timeout in `closed`, not by this machine's speed.
        assert!(closed_after >= Duration::from_millis(1900), "disconnected after only {closed_after:?}");
    });
    // The lively client answers heartbeats (Wire::frame sends NOP) and is still served.
    lively.stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(lively.frame().is_none(), "unexpected frame");
    }
    lively.line("SUB hb c");
    lively.expect_ok();
    silent_check.join().expect("silent client check");
}

/// An `#ephemeral` channel keeps no state and vanishes with its last client.
#[test]
fn ephemeral_channel_vanishes_with_its_last_client() {
    let nsq = NsqBroker::start(&[]);
    let mut c = nsq.wire();
    c.subscribe("eph", "tmp#ephemeral", 10);
    nsq.wire().publish("eph", b"x");
    let m = c.message().expect("message");
    c.line(&format!("FIN {}", m.id));
    let stats = nsq_common::http(nsq.http, "GET", "/stats?format=json&topic=eph", b"").1;
    assert!(stats.contains("tmp#ephemeral"), "{stats}");
    drop(c);
    common::wait_until(Duration::from_secs(10), "the ephemeral channel to vanish with its client", || {
        !nsq_common::http(nsq.http, "GET", "/stats?format=json&topic=eph", b"").1.contains("tmp#ephemeral")
    });
    let files = common::files_with_suffix(&nsq.broker.data_dir(), ".json");
    assert!(files.iter().all(|f| !f.to_string_lossy().contains("ephemeral")), "state kept: {files:?}");
}

/// Answers compared byte for byte with nsqd 1.3's protocol_v2.go and tcp.go: a repeated
/// IDENTIFY before SUB is accepted, a wrong magic gets a framed `E_BAD_PROTOCOL`, and the
/// RDY/REQ/DPUB/FIN/MPUB error texts (including MPUB's repeated `E_BAD_TOPIC`) are nsqd's.
#[test]
fn answers_match_nsqd_texts() {
    use std::io::{Read, Write};
    let nsq = NsqBroker::start(&["--max-rdy-count", "50"]);

    let mut w = nsq.wire();
    w.with_body("IDENTIFY", br#"{"client_id": "first"}"#);
    w.expect_ok();
    w.with_body("IDENTIFY", br#"{"client_id": "second"}"#);
    w.expect_ok();
    w.subscribe("texts", "c", 1);
    w.with_body("IDENTIFY", br#"{"client_id": "third"}"#);
    w.expect(FRAME_ERROR, b"E_INVALID cannot IDENTIFY in current state");
    assert!(w.closed());

    let mut raw = std::net::TcpStream::connect(("127.0.0.1", nsq.tcp)).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    raw.write_all(b"  V1").expect("magic");
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let mut expected = 18u32.to_be_bytes().to_vec();
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(b"E_BAD_PROTOCOL");
    assert_eq!(answer, expected, "framed E_BAD_PROTOCOL, then EOF");

    for (line, error) in [
        ("RDY x", &b"E_INVALID RDY could not parse count x"[..]),
        ("RDY -1", b"E_INVALID RDY could not parse count -1"),
        ("FIN short", b"E_INVALID invalid message ID"),
        ("REQ 0000000000000001 soon", b"E_INVALID REQ could not parse timeout soon"),
    ] {
        let mut w = nsq.wire();
        w.subscribe("texts", "c", 0);
        w.line(line);
        w.expect(FRAME_ERROR, error);
        assert!(w.closed(), "{line} is fatal");
    }

    let mut w = nsq.wire();
    w.with_refused_body("DPUB texts -5", b"x");
    w.expect(FRAME_ERROR, b"E_INVALID DPUB could not parse timeout -5");
    let mut w = nsq.wire();
    w.with_refused_body("MPUB bad!topic", b"x");
    w.expect(FRAME_ERROR, b"E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"bad!topic\" is not valid");
    for (body, error) in [
        (vec![0, 0, 0, 2, 0, 0, 0, 1, b'a'], &b"E_BAD_MESSAGE MPUB failed to read message(1) body size"[..]),
        (vec![0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0], b"E_BAD_MESSAGE MPUB invalid message(1) body size 0"),
    ] {
        let mut w = nsq.wire();
        w.with_refused_body("MPUB texts", &body);
        w.expect(FRAME_ERROR, error);
        assert!(w.closed());
    }
}
