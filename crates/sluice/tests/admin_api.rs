//! The admin JSON API (docs/admin-api.md) against a running broker: every endpoint, with the
//! data real Kafka and NSQ clients put there, and its error answers (400, 404, 405, 409).

mod common;
mod nsq_common;

use common::{plain_consumer, unique_topic};
use nsq_common::{http, NsqBroker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Longest a test waits for a consumer group to settle (join, sync, leave).
const GROUP_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

struct Api {
    port: u16,
}

impl Api {
    /// Status and JSON body (Null when empty); an error answer must be `{"error": "..."}`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = http(self.port, method, path, bytes.as_bytes());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        if status >= 400 {
            assert!(value["error"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {status} {text}");
        }
        (status, value)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{method} {path}: {status} {value}");
        value
    }

    fn status(&self, method: &str, path: &str, body: Option<Value>) -> u16 {
        self.call(method, path, body).0
    }

    fn raw_status(&self, method: &str, path: &str, body: &str) -> u16 {
        http(self.port, method, path, body.as_bytes()).0
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn start() -> (NsqBroker, Api) {
    let nsq = NsqBroker::start(&[]);
    let api = Api { port: nsq.http };
    (nsq, api)
}

#[test]
fn node_overview_and_routing_errors() {
    let (nsq, api) = start();
    let node = api.ok("GET", "/api/node", None);
    assert_eq!(node["node_id"], 0);
    assert_eq!(node["listeners"]["kafka"], nsq.broker.bootstrap());
    assert_eq!(node["listeners"]["nsq_tcp"], format!("127.0.0.1:{}", nsq.tcp));
    assert_eq!(node["listeners"]["http"], format!("127.0.0.1:{}", nsq.http));
    assert_eq!(node["data_dir"], nsq.broker.data_dir().display().to_string());
    assert_eq!(node["config"]["flush"], "always");
    assert_eq!(node["config"]["http_addr"], format!("127.0.0.1:{}", nsq.http));
    assert!(node["uptime_ms"].as_i64().is_some_and(|ms| ms >= 0));
    assert!(node["cluster_id"].as_str().is_some_and(|id| !id.is_empty()));

    api.ok("POST", "/api/topics", Some(json!({"name": "a", "partitions": 3})));
    api.ok("POST", "/api/topics/a/messages", Some(json!({"value": "x"})));
    let overview = api.ok("GET", "/api/overview", None);
    assert_eq!((overview["topics"].as_u64(), overview["partitions"].as_u64()), (Some(1), Some(3)));
    assert_eq!(overview["messages_in"], 1);
    assert!(overview["size_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(overview["connections"]["kafka"].is_u64() && overview["connections"]["nsq"].is_u64());

    let doc = api.ok("GET", "/api/openapi.json", None);
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(api.status("GET", "/api/no-such-thing", None), 404);
    assert_eq!(api.status("PUT", "/api/topics", None), 405);
}

#[test]
fn topics_partitions_and_config() {
    let (_nsq, api) = start();
    let created = api.call(
        "POST",
        "/api/topics",
        Some(json!({"name": "orders", "partitions": 2, "config": {"retention.ms": "3600000"}})),
    );
    assert_eq!(created.0, 201, "{}", created.1);
    let detail = created.1;
    assert_eq!(detail["name"], "orders");
    assert_eq!(detail["partitions"].as_array().map(Vec::len), Some(2));
    let config = |detail: &Value, key: &str| -> (String, String) {
        let entry = detail.as_array().expect("config list").iter().find(|e| e["name"] == key).expect("key listed");
        (entry["value"].as_str().unwrap_or_default().into(), entry["source"].as_str().unwrap_or_default().into())
    };
    assert_eq!(config(&detail["config"], "retention.ms"), ("3600000".into(), "topic".into()));
    assert_eq!(config(&detail["config"], "segment.bytes").1, "default");

    // Creation errors.
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "orders"}))), 409);
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "bad name!"}))), 400);
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "z", "partitions": 0}))), 400);
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "z", "config": {"nope": "1"}}))), 400);
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "z", "config": {"segment.bytes": "1"}}))), 400);
    assert_eq!(api.status("POST", "/api/topics", Some(json!({"name": "z", "extra": 1}))), 400);
    assert_eq!(api.raw_status("POST", "/api/topics", "{not json"), 400);
    assert_eq!(api.status("GET", "/api/topics/z", None), 404, "a refused topic must not exist");

    let list = api.ok("GET", "/api/topics", None);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!((list[0]["name"].as_str(), list[0]["partitions"].as_u64()), (Some("orders"), Some(2)));
    assert_eq!(api.ok("GET", "/api/topics/orders", None)["partitions"][1]["partition"], 1);
    assert_eq!(api.status("GET", "/api/topics/unknown", None), 404);

    // Config: set one key, remove another; bad key or value changes nothing.
    let changed =
        api.ok("PATCH", "/api/topics/orders/config", Some(json!({"segment.bytes": "2048", "retention.ms": null})));
    assert_eq!(config(&changed, "segment.bytes"), ("2048".into(), "topic".into()));
    assert_eq!(config(&changed, "retention.ms").1, "default");
    assert_eq!(api.status("PATCH", "/api/topics/orders/config", Some(json!({"nope": "1"}))), 400);
    assert_eq!(api.status("PATCH", "/api/topics/orders/config", Some(json!({"retention.ms": "soon"}))), 400);
    assert_eq!(api.status("PATCH", "/api/topics/orders/config", Some(json!({"retention.ms": 5}))), 400);
    assert_eq!(api.status("PATCH", "/api/topics/unknown/config", Some(json!({}))), 404);
    let now = api.ok("GET", "/api/topics/orders", None);
    assert_eq!(config(&now["config"], "segment.bytes").0, "2048");

    // Partitions grow only.
    let grown = api.ok("POST", "/api/topics/orders/partitions", Some(json!({"count": 3})));
    assert_eq!(grown["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(api.status("POST", "/api/topics/orders/partitions", Some(json!({"count": 2}))), 400);
    assert_eq!(api.status("POST", "/api/topics/unknown/partitions", Some(json!({"count": 2}))), 404);

    // One partition: offsets, size, segments (a small segment.bytes rolls segments).
    for i in 0..40 {
        let value = format!("{i:0>100}");
        api.ok("POST", "/api/topics/orders/messages", Some(json!({"value": value, "partition": 2})));
    }
    let p = api.ok("GET", "/api/topics/orders/partitions/2", None);
    assert_eq!(
        (p["partition"].as_i64(), p["log_start_offset"].as_i64(), p["log_end_offset"].as_i64()),
        (Some(2), Some(0), Some(40))
    );
    let segments = p["segments"].as_array().expect("segment list");
    assert!(segments.len() > 1, "2048-byte segments must have rolled: {p}");
    assert_eq!(segments[0]["base_offset"], 0);
    let total: u64 = segments.iter().filter_map(|s| s["size_bytes"].as_u64()).sum();
    assert_eq!(Some(total), p["size_bytes"].as_u64());
    assert_eq!(p["messages_in"], 40);
    assert_eq!(api.status("GET", "/api/topics/orders/partitions/3", None), 404);
    assert_eq!(api.status("GET", "/api/topics/orders/partitions/x", None), 400);
    assert_eq!(api.status("GET", "/api/topics/unknown/partitions/0", None), 404);

    assert_eq!(api.status("DELETE", "/api/topics/orders", None), 204);
    assert_eq!(api.status("DELETE", "/api/topics/orders", None), 404);
    assert_eq!(api.ok("GET", "/api/topics", None), json!([]));
}

#[test]
fn message_browser_and_publish() {
    let (nsq, api) = start();
    api.ok("POST", "/api/topics", Some(json!({"name": "events", "partitions": 2})));
    let before_ms = now_ms();
    let sent = api.call(
        "POST",
        "/api/topics/events/messages",
        Some(json!({"value": "hello", "key": "k1", "partition": 1, "headers": [{"key": "trace", "value": "abc"}]})),
    );
    assert_eq!(sent.0, 201, "{}", sent.1);
    assert_eq!(sent.1, json!({"partition": 1, "offset": 0}));
    for i in 1..5 {
        api.ok("POST", "/api/topics/events/messages", Some(json!({"value": format!("m{i}"), "partition": 1})));
    }
    // The same key always lands on the same partition.
    let a = api.ok("POST", "/api/topics/events/messages", Some(json!({"value": "x", "key": "same"})));
    let b = api.ok("POST", "/api/topics/events/messages", Some(json!({"value": "y", "key": "same"})));
    assert_eq!(a["partition"], b["partition"]);
    // A binary NSQ message is shown as hex.
    let (status, _) = http(nsq.http, "POST", "/pub?topic=events", &[0xff, 0x00, 0x41]);
    assert_eq!(status, 200);

    let page = api.ok("GET", "/api/topics/events/partitions/1/messages?offset=0&limit=2", None);
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(page["next_offset"], 2);
    let first = &messages[0];
    assert_eq!((first["offset"].as_i64(), first["partition"].as_i64()), (Some(0), Some(1)));
    assert_eq!((first["key"].as_str(), first["key_encoding"].as_str()), (Some("k1"), Some("text")));
    assert_eq!((first["value"].as_str(), first["value_encoding"].as_str()), (Some("hello"), Some("text")));
    assert_eq!(first["headers"], json!([{"key": "trace", "value": "abc", "value_encoding": "text"}]));
    assert!(first["timestamp_ms"].as_i64().is_some_and(|t| t >= before_ms));
    assert_eq!(messages[1]["key"], Value::Null);
    assert_eq!(messages[1]["key_encoding"], Value::Null);
    let rest = api.ok("GET", "/api/topics/events/partitions/1/messages?offset=2", None);
    let values: Vec<&str> =
        rest["messages"].as_array().expect("messages").iter().filter_map(|m| m["value"].as_str()).collect();
    assert_eq!(&values[..3], ["m2", "m3", "m4"]);
    let all: Vec<Value> = (0..2)
        .flat_map(|p| {
            api.ok("GET", &format!("/api/topics/events/partitions/{p}/messages?limit=1000"), None)["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let hex = all.iter().find(|m| m["value_encoding"] == "hex").expect("the binary NSQ message");
    assert_eq!(hex["value"], "ff0041");
    assert_eq!(all.len(), 8);

    // By timestamp: the first record at or after it; past the newest gives nothing.
    let third_ts = messages[1]["timestamp_ms"].as_i64().expect("timestamp");
    let from_time =
        api.ok("GET", &format!("/api/topics/events/partitions/1/messages?timestamp={third_ts}&limit=1"), None);
    assert!(from_time["messages"][0]["offset"].as_i64().is_some_and(|o| o <= 1));
    let future = api.ok("GET", "/api/topics/events/partitions/1/messages?timestamp=99999999999999", None);
    assert_eq!(future["messages"], json!([]));

    // Errors.
    let browse = "/api/topics/events/partitions/1/messages";
    assert_eq!(api.status("GET", &format!("{browse}?offset=999"), None), 400);
    assert_eq!(api.status("GET", &format!("{browse}?offset=0&timestamp=0"), None), 400);
    assert_eq!(api.status("GET", &format!("{browse}?limit=0"), None), 400);
    assert_eq!(api.status("GET", &format!("{browse}?limit=1001"), None), 400);
    assert_eq!(api.status("GET", &format!("{browse}?offset=first"), None), 400);
    assert_eq!(api.status("GET", "/api/topics/events/partitions/7/messages", None), 404);
    assert_eq!(api.status("GET", "/api/topics/nope/partitions/0/messages", None), 404);
    assert_eq!(api.status("POST", "/api/topics/nope/messages", Some(json!({"value": "v"}))), 404);
    assert_eq!(api.status("POST", "/api/topics/events/messages", Some(json!({"value": "v", "partition": 9}))), 404);
    assert_eq!(api.status("POST", "/api/topics/events/messages", Some(json!({"key": "no value"}))), 400);

    // Traffic counters count what came in.
    let topics = api.ok("GET", "/api/topics", None);
    assert_eq!(topics[0]["messages_in"], 8);
    assert_eq!(topics[0]["messages"], 8);
}

/// Joins `group` with a subscribing librdkafka consumer and waits until it owns partitions.
fn joined_consumer(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer = plain_consumer(bootstrap, &[("group.id", group), ("session.timeout.ms", "6000")]);
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + GROUP_SETTLE_TIMEOUT;
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "consumer never got an assignment");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    consumer
}

#[test]
fn consumer_groups_offsets_lag_reset_and_delete() {
    let (nsq, api) = start();
    let topic = unique_topic("paid");
    let group = unique_topic("billing");
    api.ok("POST", "/api/topics", Some(json!({"name": topic, "partitions": 2})));
    for i in 0..6 {
        api.ok(
            "POST",
            &format!("/api/topics/{topic}/messages"),
            Some(json!({"value": format!("v{i}"), "partition": i % 2})),
        );
    }
    let consumer = joined_consumer(&nsq.broker.bootstrap(), &group, &topic);

    let groups = api.ok("GET", "/api/groups", None);
    let listed = groups.as_array().expect("groups").iter().find(|g| g["group_id"] == group.as_str()).expect("listed");
    assert_eq!((listed["state"].as_str(), listed["members"].as_u64()), (Some("Stable"), Some(1)));
    let detail = api.ok("GET", &format!("/api/groups/{group}"), None);
    assert_eq!(detail["protocol_type"], "consumer");
    let member = &detail["members"][0];
    assert!(member["member_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(member["assignments"][0]["topic"], topic.as_str());
    let mut owned: Vec<i64> = member["assignments"][0]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    owned.sort_unstable();
    assert_eq!(owned, [0, 1]);

    // Kafka refuses both while the group has members.
    let reset = format!("/api/groups/{group}/reset-offsets");
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": topic, "to": "earliest"}))), 409);
    assert_eq!(api.status("DELETE", &format!("/api/groups/{group}"), None), 409);
    consumer.unsubscribe();
    drop(consumer);
    let deadline = Instant::now() + GROUP_SETTLE_TIMEOUT;
    while api.ok("GET", &format!("/api/groups/{group}"), None)["members"] != json!([]) {
        assert!(Instant::now() < deadline, "the consumer never left the group");
        std::thread::sleep(Duration::from_millis(100));
    }

    let offsets = |body: Value| -> Vec<(i64, i64)> {
        api.ok("POST", &reset, Some(body))["offsets"]
            .as_array()
            .expect("offsets")
            .iter()
            .map(|o| (o["partition"].as_i64().unwrap_or(-1), o["committed_offset"].as_i64().unwrap_or(-1)))
            .collect()
    };
    assert_eq!(offsets(json!({"topic": topic, "to": "latest"})), [(0, 3), (1, 3)]);
    assert_eq!(offsets(json!({"topic": topic, "to": "earliest", "partitions": [1]})), [(1, 0)]);
    assert_eq!(offsets(json!({"topic": topic, "to": "offset", "offset": 2, "partitions": [0]})), [(0, 2)]);
    assert_eq!(offsets(json!({"topic": topic, "to": "offset", "offset": 99, "partitions": [0]})), [(0, 3)]);
    assert_eq!(offsets(json!({"topic": topic, "to": "timestamp", "timestamp_ms": 0, "partitions": [0]})), [(0, 0)]);
    let detail = api.ok("GET", &format!("/api/groups/{group}"), None);
    assert_eq!(detail["state"], "Empty");
    let lag: Vec<(i64, i64, i64)> = detail["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|o| {
            (
                o["committed_offset"].as_i64().unwrap_or(-1),
                o["log_end_offset"].as_i64().unwrap_or(-1),
                o["lag"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(lag, [(0, 3, 3), (0, 3, 3)]);
    let listed = api.ok("GET", "/api/groups", None);
    assert_eq!(
        listed.as_array().and_then(|g| g.iter().find(|g| g["group_id"] == group.as_str())).map(|g| g["lag"].clone()),
        Some(json!(6))
    );

    // Errors.
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": "nope", "to": "latest"}))), 404);
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": topic, "to": "latest", "partitions": [5]}))), 404);
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": topic, "to": "offset"}))), 400);
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": topic, "to": "timestamp"}))), 400);
    assert_eq!(api.status("POST", &reset, Some(json!({"topic": topic, "to": "yesterday"}))), 400);
    assert_eq!(api.status("GET", "/api/groups/never-seen", None), 404);
    assert_eq!(api.status("DELETE", "/api/groups/never-seen", None), 404);

    assert_eq!(api.status("DELETE", &format!("/api/groups/{group}"), None), 204);
    assert_eq!(api.status("GET", &format!("/api/groups/{group}"), None), 404);
}

#[test]
fn nsq_channels_and_clients() {
    let (nsq, api) = start();
    let mut sub = nsq.wire();
    sub.with_body("IDENTIFY", br#"{"client_id":"worker-1","hostname":"box","user_agent":"test/1"}"#);
    sub.expect_ok();
    sub.subscribe("jobs", "work", 1);
    for body in ["a", "b", "c"] {
        assert_eq!(http(nsq.http, "POST", "/pub?topic=jobs", body.as_bytes()).0, 200);
    }
    let first = sub.message().expect("a delivery");
    let channel_path = "/api/nsq/topics/jobs/channels/work";
    let channel = api.ok("GET", channel_path, None);
    assert_eq!((channel["topic"].as_str(), channel["channel"].as_str()), (Some("jobs"), Some("work")));
    assert_eq!((channel["in_flight"].as_u64(), channel["clients"].as_u64()), (Some(1), Some(1)));
    assert_eq!(channel["depth"], 2);
    sub.line(&format!("FIN {}", first.id));
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.ok("GET", channel_path, None)["finished"] != 1 {
        assert!(Instant::now() < deadline, "FIN never counted");
        std::thread::sleep(Duration::from_millis(20));
    }

    let topics = api.ok("GET", "/api/nsq/topics", None);
    let jobs = topics.as_array().and_then(|t| t.iter().find(|t| t["topic"] == "jobs")).expect("jobs listed");
    assert_eq!(jobs["message_count"], 3);
    assert_eq!(jobs["channels"][0]["channel"], "work");

    let clients = api.ok("GET", "/api/clients", None);
    let worker =
        clients.as_array().and_then(|c| c.iter().find(|c| c["client_id"] == "worker-1")).expect("client listed");
    assert_eq!(
        (worker["protocol"].as_str(), worker["topic"].as_str(), worker["channel"].as_str()),
        (Some("nsq"), Some("jobs"), Some("work"))
    );
    assert_eq!(worker["hostname"], "box");
    assert!(worker["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")));

    assert_eq!(api.ok("POST", &format!("{channel_path}/pause"), None)["paused"], true);
    assert_eq!(api.ok("GET", channel_path, None)["paused"], true);
    assert_eq!(api.ok("POST", &format!("{channel_path}/unpause"), None)["paused"], false);
    let emptied = api.ok("POST", &format!("{channel_path}/empty"), None);
    assert_eq!(emptied["depth"], 0);

    assert_eq!(api.status("GET", "/api/nsq/topics/jobs/channels/nope", None), 404);
    assert_eq!(api.status("POST", "/api/nsq/topics/nope/channels/work/pause", None), 404);
    assert_eq!(api.status("POST", "/api/nsq/topics/jobs/channels/nope/empty", None), 404);
    assert_eq!(api.status("DELETE", channel_path, None), 204);
    assert_eq!(api.status("DELETE", channel_path, None), 404);
    assert_eq!(api.status("GET", channel_path, None), 404);
}
