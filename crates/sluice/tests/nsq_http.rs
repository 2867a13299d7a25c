//! The nsqd HTTP API (`/pub`, `/mpub`, `/stats`, topic and channel admin) and the
//! nsqlookupd API (on the HTTP port and on `--lookupd-http-addr`), shaped as nsqd 1.x.

mod common;
mod nsq_common;

use nsq_common::{http, NsqBroker};
use std::time::Duration;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn publish_over_http_and_consume_over_tcp() {
    let nsq = NsqBroker::start(&[]);
    let mut c = nsq.wire();
    c.subscribe("web", "c", 100);
    assert_eq!(http(nsq.http, "POST", "/pub?topic=web", b"one"), (200, "OK".to_string()));
    assert_eq!(http(nsq.http, "POST", "/mpub?topic=web", b"two\nthree\n"), (200, "OK".to_string()));
    let mut binary = 2u32.to_be_bytes().to_vec();
    for m in [&b"four"[..], b"fi\nve"] {
        binary.extend_from_slice(&(m.len() as u32).to_be_bytes());
        binary.extend_from_slice(m);
    }
    assert_eq!(http(nsq.http, "POST", "/mpub?topic=web&binary=true", &binary).0, 200);
    assert_eq!(http(nsq.http, "POST", "/pub?topic=web&defer=1000", b"six").0, 200);
    let mut bodies = Vec::new();
    for _ in 0..6 {
        let m = c.message().expect("message");
        c.line(&format!("FIN {}", m.id));
        bodies.push(String::from_utf8_lossy(&m.body).to_string());
    }
    assert_eq!(bodies, ["one", "two", "three", "four", "fi\nve", "six"]);

    let (status, text) = http(nsq.http, "GET", "/stats?format=json", b"");
    assert_eq!(status, 200);
    let stats = json(&text);
    let topic = &stats["topics"][0];
    assert_eq!(topic["topic_name"], "web");
    let channel = &topic["channels"][0];
    assert_eq!(channel["channel_name"], "c");
    for key in [
        "depth",
        "backend_depth",
        "in_flight_count",
        "deferred_count",
        "requeue_count",
        "timeout_count",
        "message_count",
        "clients",
        "paused",
    ] {
        assert!(channel.get(key).is_some(), "channel stats lack {key}: {channel}");
    }
    assert_eq!(channel["message_count"], 6);
    assert_eq!(channel["clients"].as_array().map(Vec::len), Some(1));
    let (status, text) = http(nsq.http, "GET", "/stats", b"");
    assert!(status == 200 && text.contains("[web") && text.contains("[c"), "{text}");
}

#[test]
fn http_errors_are_nsqd_codes() {
    let nsq = NsqBroker::start(&["--max-msg-size", "100"]);
    let cases: [(&str, &[u8], u16, &str); 5] = [
        ("/pub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("/pub?topic=bad!", b"x", 400, "INVALID_TOPIC"),
        ("/pub?topic=t", b"", 400, "MSG_EMPTY"),
        ("/pub?topic=t", &[b'x'; 101], 413, "MSG_TOO_BIG"),
        ("/pub?topic=t&defer=-1", b"x", 400, "INVALID_DEFER"),
    ];
    for (path, body, status, message) in cases {
        let (got, text) = http(nsq.http, "POST", path, body);
        assert_eq!((got, json(&text)["message"].clone()), (status, serde_json::json!(message)), "{path}");
    }
    let (status, text) = http(nsq.lookupd, "GET", "/lookup?topic=nothing", b"");
    assert_eq!((status, json(&text)["message"].clone()), (404, serde_json::json!("TOPIC_NOT_FOUND")));
    let (status, text) = http(nsq.http, "POST", "/channel/delete?topic=t&channel=none", b"");
    assert_eq!(status, 404, "{text}");
}

#[test]
fn lookupd_api_names_this_node() {
    let nsq = NsqBroker::start(&[]);
    assert_eq!(http(nsq.http, "POST", "/topic/create?topic=found", b"").0, 200);
    assert_eq!(http(nsq.lookupd, "POST", "/channel/create?topic=found&channel=ch", b"").0, 200);
    for port in [nsq.http, nsq.lookupd] {
        let lookup = json(&http(port, "GET", "/lookup?topic=found", b"").1);
        assert_eq!(lookup["channels"], serde_json::json!(["ch"]));
        let producer = &lookup["producers"][0];
        assert_eq!(producer["broadcast_address"], "127.0.0.1");
        assert_eq!(producer["tcp_port"], nsq.tcp);
        assert_eq!(producer["http_port"], nsq.http);
        assert!(json(&http(port, "GET", "/topics", b"").1)["topics"]
            .as_array()
            .is_some_and(|t| t.contains(&"found".into())));
        assert_eq!(json(&http(port, "GET", "/channels?topic=found", b"").1)["channels"], serde_json::json!(["ch"]));
        assert_eq!(json(&http(port, "GET", "/nodes", b"").1)["producers"][0]["tcp_port"], nsq.tcp);
        assert_eq!(http(port, "GET", "/ping", b""), (200, "OK".to_string()));
        assert!(json(&http(port, "GET", "/info", b"").1)["version"].is_string());
    }
}

/// Channel pause holds delivery, unpause resumes, empty drops the backlog, delete removes it.
#[test]
fn channel_and_topic_admin() {
    let nsq = NsqBroker::start(&[]);
    let mut c = nsq.wire();
    c.subscribe("adm", "c", 10);
    assert_eq!(http(nsq.http, "POST", "/channel/pause?topic=adm&channel=c", b"").0, 200);
    nsq.wire().publish("adm", b"held");
    c.stream.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    assert!(c.frame().is_none(), "a paused channel delivered");
    assert_eq!(http(nsq.http, "POST", "/channel/unpause?topic=adm&channel=c", b"").0, 200);
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let m = c.message().expect("after unpause");
    assert_eq!(m.body, b"held");
    c.line(&format!("FIN {}", m.id));

    assert_eq!(http(nsq.http, "POST", "/topic/pause?topic=adm", b"").0, 200);
    nsq.wire().publish("adm", b"dropped");
    assert_eq!(http(nsq.http, "POST", "/channel/empty?topic=adm&channel=c", b"").0, 200);
    assert_eq!(http(nsq.http, "POST", "/topic/unpause?topic=adm", b"").0, 200);
    c.stream.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    assert!(c.frame().is_none(), "an emptied channel delivered");
    let stats = json(&http(nsq.http, "GET", "/stats?format=json&topic=adm", b"").1);
    assert_eq!(stats["topics"][0]["channels"][0]["depth"], 0);

    assert_eq!(http(nsq.http, "POST", "/channel/delete?topic=adm&channel=c", b"").0, 200);
    assert!(c.closed(), "a client of a deleted channel stays connected");
    assert_eq!(http(nsq.http, "POST", "/topic/delete?topic=adm", b"").0, 200);
    assert_eq!(http(nsq.http, "GET", "/lookup?topic=adm", b"").0, 404);
}

/// Answers compared with nsqd 1.3's http.go and api_response.go: `/channel/create` needs an
/// existing topic, an empty `/mpub` is OK, a truncated binary `/mpub` is 413 `BAD_MESSAGE`,
/// `/topic/create` names a bad topic `INVALID_TOPIC`, and unknown paths and methods answer
/// nsqd's JSON (while `/api` keeps its own error shape).
#[test]
fn http_answers_match_nsqd() {
    let nsq = NsqBroker::start(&[]);
    let message = |port: u16, method: &str, path: &str, body: &[u8]| {
        let (status, text) = http(port, method, path, body);
        (status, json(&text)["message"].as_str().unwrap_or_default().to_string())
    };
    let expect = |got: (u16, String), status: u16, text: &str| assert_eq!(got, (status, text.to_string()));
    expect(message(nsq.http, "POST", "/channel/create?topic=absent&channel=c", b""), 404, "TOPIC_NOT_FOUND");
    expect(message(nsq.http, "POST", "/topic/create?topic=bad!", b""), 400, "INVALID_TOPIC");
    assert_eq!(http(nsq.http, "POST", "/mpub?topic=quiet", b""), (200, "OK".to_string()));
    assert_eq!(http(nsq.http, "POST", "/channel/create?topic=quiet&channel=c", b"").0, 200);

    let mut truncated = 2u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&5u32.to_be_bytes());
    truncated.extend_from_slice(b"hello");
    truncated.extend_from_slice(&5u32.to_be_bytes());
    truncated.extend_from_slice(b"wo");
    expect(message(nsq.http, "POST", "/mpub?topic=quiet&binary=true", &truncated), 413, "BAD_MESSAGE");
    expect(message(nsq.http, "POST", "/mpub?topic=quiet&binary=true", &[0, 0]), 413, "BAD_BODY");

    expect(message(nsq.http, "GET", "/no/such/path", b""), 404, "NOT_FOUND");
    expect(message(nsq.http, "GET", "/pub?topic=quiet", b""), 405, "METHOD_NOT_ALLOWED");
    expect(message(nsq.http, "POST", "/stats", b""), 405, "METHOD_NOT_ALLOWED");
    let (status, text) = http(nsq.http, "GET", "/api/no/such/path", b"");
    assert_eq!(status, 404);
    assert!(json(&text).get("message").is_none(), "/api keeps its own error shape: {text}");
    // The messages published so far: none (the truncated batch was refused whole).
    let stats = json(&http(nsq.http, "GET", "/stats?format=json&topic=quiet", b"").1);
    assert_eq!(stats["topics"][0]["message_count"], 0, "{stats}");
}

/// `/info`, `/stats` and `/config/:opt` in nsqd 1.3's shapes (its doInfo, doStats and
/// doConfig): the `max_*` limits (Go durations in nanoseconds), the `memory` block, a
/// publishing connection among `producers` with its `pub_counts`; and a paused topic stays
/// paused across a restart, as a paused channel does.
#[test]
fn info_stats_config_and_topic_pause_as_nsqd() {
    let mut nsq = NsqBroker::start(&["--max-rdy-count", "50"]);
    let info = json(&http(nsq.http, "GET", "/info", b"").1);
    assert_eq!(info["max_heartbeat_interval"], 60_000_000_000u64, "{info}");
    assert_eq!(info["max_output_buffer_size"], 65536, "{info}");
    assert_eq!(info["max_output_buffer_timeout"], 30_000_000_000u64, "{info}");
    assert_eq!(info["max_deflate_level"], 6, "{info}");
    assert_eq!((info["topology_zone"].as_str(), info["topology_region"].as_str()), (Some(""), Some("")));

    let stats = json(&http(nsq.http, "GET", "/stats?format=json", b"").1);
    assert!(stats["memory"]["heap_in_use_bytes"].as_u64().is_some_and(|b| b > 0), "{stats}");
    assert!(stats["memory"]["gc_total_runs"].is_u64(), "{stats}");
    assert!(stats["producers"].is_null(), "no producer yet: {stats}");
    let mut producer = nsq.wire();
    producer.publish("held", b"one");
    producer.publish("held", b"two");
    producer.publish("other", b"three");
    let stats = json(&http(nsq.http, "GET", "/stats?format=json&topic=held", b"").1);
    let listed = &stats["producers"][0];
    assert_eq!(listed["pub_counts"], serde_json::json!([{"topic": "held", "count": 2}]), "{stats}");
    assert_eq!((listed["version"].as_str(), listed["state"].as_i64()), (Some("V2"), Some(0)), "{listed}");
    let lean = json(&http(nsq.http, "GET", "/stats?format=json&include_clients=false&include_mem=false", b"").1);
    assert!(lean["producers"].is_null() && lean.get("memory").is_none(), "{lean}");

    assert_eq!(http(nsq.http, "GET", "/config/max_rdy_count", b""), (200, "50".to_string()));
    assert_eq!(json(&http(nsq.http, "GET", "/config/msg_timeout", b"").1), 60_000_000_000u64);
    assert_eq!(json(&http(nsq.http, "GET", "/config/nsqlookupd_tcp_addresses", b"").1), serde_json::json!([]));
    let (status, text) = http(nsq.http, "GET", "/config/no_such_option", b"");
    assert_eq!((status, json(&text)["message"].clone()), (400, serde_json::json!("INVALID_OPTION")));
    assert_eq!(http(nsq.http, "PUT", "/config/log_level", b"debug").0, 405);

    assert_eq!(http(nsq.http, "POST", "/topic/pause?topic=held", b"").0, 200);
    drop(producer);
    nsq.restart();
    let paused = |nsq: &NsqBroker| {
        json(&http(nsq.http, "GET", "/stats?format=json&topic=held", b"").1)["topics"][0]["paused"].clone()
    };
    assert_eq!(paused(&nsq), true, "topic pause lost in the restart");
    let mut c = nsq.wire();
    c.subscribe("held", "c", 10);
    c.stream.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
    assert!(c.frame().is_none(), "a paused topic delivered after the restart");
    assert_eq!(http(nsq.http, "POST", "/topic/unpause?topic=held", b"").0, 200);
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    assert_eq!(c.message().expect("after unpause").body, b"one");
    drop(c);
    nsq.restart();
    assert_eq!(paused(&nsq), false, "topic unpause lost in the restart");
}

/// nsqadmin 1.3 pointed at Sluice (`--lookupd-http-address` at the lookupd listener): the
/// requests its clusterinfo package makes, in its order, with the query strings it sends,
/// and the fields it reads from each answer; then its actions, which call every lookupd and
/// then every nsqd the topic's `/lookup` names (pause, empty, create, delete, tombstone).
#[test]
fn nsqadmin_requests_are_answered() {
    let nsq = NsqBroker::start(&[]);
    let (lookupd, get) = (nsq.lookupd, |port: u16, path: &str| {
        let (status, text) = http(port, "GET", path, b"");
        assert_eq!(status, 200, "GET {path}: {text}");
        json(&text)
    });
    let post = |port: u16, path: &str| {
        let (status, text) = http(port, "POST", path, b"");
        assert_eq!(status, 200, "POST {path}: {text}");
    };
    let mut c = nsq.wire();
    c.with_body("IDENTIFY", br#"{"client_id": "worker", "hostname": "box", "user_agent": "test/1"}"#);
    c.expect_ok();
    c.subscribe("adm", "ch", 5);
    nsq.wire().publish("adm", b"one");
    let m = c.message().expect("delivery");

    // GetLookupdTopics, GetLookupdProducers, GetLookupdTopicProducers, GetLookupdTopicChannels.
    assert!(get(lookupd, "/topics")["topics"].as_array().is_some_and(|t| t.contains(&"adm".into())));
    let node = &get(lookupd, "/nodes")["producers"][0];
    for key in ["remote_address", "hostname", "broadcast_address", "version"] {
        assert!(node[key].is_string(), "/nodes lacks {key}: {node}");
    }
    assert_eq!((node["tcp_port"].clone(), node["http_port"].clone()), (nsq.tcp.into(), nsq.http.into()));
    let (topics, tombstones) = (node["topics"].as_array().expect("topics"), node["tombstones"].as_array().expect("t"));
    assert_eq!(topics.len(), tombstones.len(), "one tombstone flag per topic: {node}");
    let lookup = get(lookupd, "/lookup?topic=adm");
    let producer = &lookup["producers"][0];
    let nsqd: u16 = producer["http_port"].as_u64().expect("http_port") as u16;
    assert_eq!((producer["broadcast_address"].as_str(), nsqd), (Some("127.0.0.1"), nsq.http), "{lookup}");
    assert_eq!(lookup["channels"], serde_json::json!(["ch"]));
    assert_eq!(get(lookupd, "/channels?topic=adm")["channels"], serde_json::json!(["ch"]));

    // GetNSQDProducers, GetNSQDTopicProducers, GetNSQDStats (topic page, channel page).
    let info = get(nsqd, "/info");
    assert_eq!(info["version"], "1.3.0");
    assert_eq!((info["http_port"].clone(), info["tcp_port"].clone()), (nsq.http.into(), nsq.tcp.into()));
    let all = get(nsqd, "/stats?format=json&include_clients=false");
    assert!(all["topics"].as_array().is_some_and(|t| t.iter().any(|t| t["topic_name"] == "adm")), "{all}");
    let topic = &get(nsqd, "/stats?format=json&topic=adm&include_clients=false")["topics"][0];
    for key in ["depth", "backend_depth", "message_count", "paused", "e2e_processing_latency"] {
        assert!(topic.get(key).is_some(), "topic stats lack {key}: {topic}");
    }
    let channel = &get(nsqd, "/stats?format=json&topic=adm&channel=ch")["topics"][0]["channels"][0];
    assert_eq!((channel["channel_name"].as_str(), channel["in_flight_count"].as_u64()), (Some("ch"), Some(1)));
    assert_eq!(channel["client_count"], 1, "{channel}");
    let client = &channel["clients"][0];
    assert_eq!((client["client_id"].as_str(), client["hostname"].as_str()), (Some("worker"), Some("box")));
    assert_eq!((client["user_agent"].as_str(), client["ready_count"].as_u64()), (Some("test/1"), Some(5)));
    for key in ["remote_address", "version", "connect_ts", "finish_count", "requeue_count", "message_count"] {
        assert!(client.get(key).is_some(), "client stats lack {key}: {client}");
    }
    c.line(&format!("FIN {}", m.id));

    // Actions: pause/unpause/empty of the topic and the channel go to the nsqd.
    let topic_paused =
        || get(nsqd, "/stats?format=json&topic=adm&include_clients=false")["topics"][0]["paused"].clone();
    post(nsqd, "/topic/pause?topic=adm");
    assert_eq!(topic_paused(), true);
    post(nsqd, "/topic/unpause?topic=adm");
    assert_eq!(topic_paused(), false);
    post(nsqd, "/channel/pause?topic=adm&channel=ch");
    assert_eq!(get(nsqd, "/stats?format=json&topic=adm")["topics"][0]["channels"][0]["paused"], true);
    post(nsqd, "/channel/unpause?topic=adm&channel=ch");
    post(nsqd, "/topic/empty?topic=adm");
    post(nsqd, "/channel/empty?topic=adm&channel=ch");
    // CreateTopicChannel: every lookupd, then every nsqd the topic's lookup names.
    post(lookupd, "/topic/create?topic=made");
    post(lookupd, "/channel/create?topic=made&channel=new");
    post(nsqd, "/channel/create?topic=made&channel=new");
    // DeleteChannel and DeleteTopic: lookupds drop registrations, then the nsqd deletes.
    post(lookupd, "/channel/delete?topic=adm&channel=ch");
    post(nsqd, "/channel/delete?topic=adm&channel=ch");
    assert!(c.closed(), "a deleted channel's client stays connected");
    post(lookupd, &format!("/topic/tombstone?topic=made&node=127.0.0.1:{nsqd}"));
    post(lookupd, "/topic/delete?topic=made");
    post(nsqd, "/topic/delete?topic=made");
    let (status, text) = http(lookupd, "GET", "/lookup?topic=made", b"");
    assert_eq!((status, json(&text)["message"].clone()), (404, serde_json::json!("TOPIC_NOT_FOUND")));
}
