//! Proves `--http-auth` with real HTTP clients (Python's urllib, answering the Basic
//! challenge as browsers do, and the `sluice` CLI): users made by `sluice user add` and
//! cluster ACLs made by `sluice acl add` decide who may read and who may change through the
//! admin API and the console; anonymous and wrong-password requests get 401 with a Basic
//! challenge; a read-only operator reads but gets 403 on a change; ALTER on the cluster and
//! a super user change; a cross-site POST is refused even from the super user; nsqd's API,
//! `/metrics` and `/ping` stay open unless `--http-auth-metrics`, nsqd's topic and channel
//! actions unless `--http-auth-nsqd-admin` (`/pub`, `/stats` stay open); after ten wrong passwords
//! an address is refused (429) even with the right one; and headless Chromium, logged in,
//! renders the console live while without a login it gets no console.

mod common;

use common::{run_bounded, unique_topic, Broker, BrokerOpts, SLUICE_BIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends each request of a JSON list with urllib; a request with `user` answers the server's
/// Basic challenge with it (HTTPBasicAuthHandler), as a browser's login prompt would.
const URLLIB_CLIENT: &str = r#"
import json, sys, urllib.request, urllib.error
base = sys.argv[1]
answers = []
for r in json.load(sys.stdin):
    handlers = []
    if "user" in r:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, base, r["user"], r["password"])
        handlers.append(urllib.request.HTTPBasicAuthHandler(passwords))
    opener = urllib.request.build_opener(*handlers)
    data = json.dumps(r["body"]).encode() if "body" in r else None
    request = urllib.request.Request(base + r["path"], data=data, method=r["method"], headers=r.get("headers", {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with opener.open(request, timeout=30) as answer:
            status, headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, e.headers, e.read()
    answers.append({"status": status, "challenge": headers.get("WWW-Authenticate"), "body": body.decode("utf-8", "replace")})
print(json.dumps(answers))
"#;

/// One request for `URLLIB_CLIENT`.
fn req(method: &str, path: &str, login: Option<(&str, &str)>) -> Value {
    let mut r = json!({ "method": method, "path": path });
    if let Some((user, password)) = login {
        r["user"] = json!(user);
        r["password"] = json!(password);
    }
    r
}

/// The answers (status, challenge, body) to `requests`, in order.
fn send(broker: &Broker, requests: &[Value]) -> Vec<Value> {
    let input = tempfile::NamedTempFile::new().expect("stdin file");
    std::fs::write(input.path(), json!(requests).to_string()).expect("write requests");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", URLLIB_CLIENT, &format!("http://{}", broker.http_addr())]);
    cmd.stdin(std::fs::File::open(input.path()).expect("open stdin"));
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    assert!(out.status.success(), "urllib client: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("answers as JSON")
}

fn status(answer: &Value) -> u64 {
    answer["status"].as_u64().unwrap_or(0)
}

fn sluice(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args).stdin(Stdio::null());
    common::clear_sluice_env(&mut cmd);
    cmd.envs(env.iter().copied());
    run_bounded(&mut cmd, CLIENT_TIMEOUT)
}

fn sluice_ok(args: &[&str], env: &[(&str, &str)]) {
    let out = sluice(args, env);
    assert!(out.status.success(), "sluice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn add_user(data_dir: &Path, name: &str, password: &str) {
    let dir = data_dir.to_str().expect("utf-8 path");
    sluice_ok(&["user", "add", name, "--data-dir", dir], &[("SLUICE_USER_PASSWORD", password)]);
}

fn allow_on_cluster(data_dir: &Path, principal: &str, operation: &str) {
    let dir = data_dir.to_str().expect("utf-8 path");
    let args = ["acl", "add", "--data-dir", dir, "--allow-principal", principal, "--operation", operation, "--cluster"];
    sluice_ok(&args, &[]);
}

#[test]
fn admin_api_and_console_need_a_user_with_the_cluster_acls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    add_user(&data_dir, "admin", "admin-pw");
    add_user(&data_dir, "operator", "operator-pw");
    add_user(&data_dir, "changer", "changer-pw");
    add_user(&data_dir, "nobody", "nobody-pw");
    allow_on_cluster(&data_dir, "User:operator", "Describe");
    allow_on_cluster(&data_dir, "User:changer", "Alter");
    let args = ["--authorizer", "acl", "--super-users", "User:admin", "--http-auth", "true"];
    let broker = Broker::start_with(BrokerOpts {
        args: args.iter().map(|s| s.to_string()).collect(),
        data_dir: Some(data_dir),
        ..BrokerOpts::default()
    });
    let (admin, operator, changer, nobody) =
        (("admin", "admin-pw"), ("operator", "operator-pw"), ("changer", "changer-pw"), ("nobody", "nobody-pw"));
    let (by_operator, by_changer, by_admin) =
        (unique_topic("by-operator"), unique_topic("by-changer"), unique_topic("by-admin"));
    let create = |name: &str, login| {
        let mut r = req("POST", "/api/topics", Some(login));
        r["body"] = json!({ "name": name });
        r
    };
    let mut cross_site = create(&unique_topic("cross-site"), admin);
    cross_site["headers"] = json!({ "Origin": "http://evil.example" });
    let mut fetch_cross_site = create(&unique_topic("fetch-cross-site"), admin);
    fetch_cross_site["headers"] = json!({ "Sec-Fetch-Site": "cross-site" });
    let same_origin_topic = unique_topic("same-origin");
    let mut same_origin = create(&same_origin_topic, admin);
    same_origin["headers"] =
        json!({ "Origin": format!("http://{}", broker.http_addr()), "Sec-Fetch-Site": "same-origin" });
    let answers = send(
        &broker,
        &[
            req("GET", "/api/topics", None),
            req("GET", "/api/topics", Some(("operator", "wrong"))),
            req("GET", "/api/topics", Some(("ghost", "ghost-pw"))),
            req("GET", "/", None),
            req("GET", "/api/topics", Some(operator)),
            req("GET", "/", Some(operator)),
            req("GET", "/console/app.js", Some(operator)),
            create(&by_operator, operator),
            req("GET", "/api/topics", Some(nobody)),
            create(&by_changer, changer),
            create(&by_admin, admin),
            req("DELETE", &format!("/api/topics/{by_admin}"), Some(admin)),
            cross_site,
            fetch_cross_site,
            same_origin,
            req("GET", "/metrics", None),
            req("GET", "/ping", None),
            req("POST", &format!("/topic/create?topic={}", unique_topic("nsqd")), None),
        ],
    );
    let statuses: Vec<u64> = answers.iter().map(status).collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 200, 200, 200, 403, 403, 201, 201, 204, 403, 403, 201, 200, 200, 200],
        "{answers:#?}"
    );
    for refused in &answers[..4] {
        let challenge = refused["challenge"].as_str().unwrap_or("");
        assert!(challenge.starts_with("Basic realm="), "401 carries a Basic challenge: {refused}");
    }
    let forbidden: Value = serde_json::from_str(answers[7]["body"].as_str().unwrap_or("")).expect("JSON error");
    assert!(forbidden["error"].as_str().unwrap_or("").contains("User:operator"), "{forbidden}");
    assert!(answers[12]["body"].as_str().unwrap_or("").contains("cross-site"), "{}", answers[12]);

    // The CLI sends SLUICE_HTTP_USER / SLUICE_HTTP_PASSWORD; without them it is refused.
    let http = broker.http_addr();
    let listed = sluice(&["topic", "list", "--http", &http], &[]);
    assert!(!listed.status.success(), "anonymous CLI refused");
    let login = [("SLUICE_HTTP_USER", "operator"), ("SLUICE_HTTP_PASSWORD", "operator-pw")];
    let listed = sluice(&["topic", "list", "--http", &http], &login);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&by_changer) && text.contains(&same_origin_topic), "{text}");
    assert!(!text.contains(&by_operator) && !text.contains(&by_admin), "{text}");
}

#[test]
fn metrics_can_be_protected_and_failed_logins_are_limited() {
    // No authorizer: every authenticated user may do everything, as in Kafka.
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    add_user(&data_dir, "ops", "ops-pw");
    let args = ["--http-auth", "true", "--http-auth-metrics", "true", "--http-auth-nsqd-admin", "true"];
    let broker = Broker::start_with(BrokerOpts {
        args: args.iter().map(|s| s.to_string()).collect(),
        data_dir: Some(data_dir),
        ..BrokerOpts::default()
    });
    let ops = ("ops", "ops-pw");
    let mut create = req("POST", "/api/topics", Some(ops));
    create["body"] = json!({ "name": unique_topic("any-user") });
    let nsq_topic = unique_topic("nsqd-admin");
    let mut publish = req("POST", &format!("/pub?topic={}", unique_topic("nsqd")), None);
    publish["body"] = json!("an NSQ message");
    let answers = send(
        &broker,
        &[
            req("GET", "/metrics", None),
            req("GET", "/ping", None),
            req("GET", "/metrics", Some(ops)),
            req("GET", "/ping", Some(ops)),
            create,
            publish,
            req("POST", &format!("/topic/create?topic={nsq_topic}"), None),
            req("POST", &format!("/topic/create?topic={nsq_topic}"), Some(ops)),
            req("POST", &format!("/channel/create?topic={nsq_topic}&channel=workers"), None),
            req("GET", "/stats?format=json", None),
        ],
    );
    let statuses: Vec<u64> = answers.iter().map(status).collect();
    assert_eq!(statuses, [401, 401, 200, 200, 201, 200, 401, 200, 401, 200], "{answers:#?}");
    assert!(answers[2]["body"].as_str().unwrap_or("").contains("sluice_"), "metrics served to the user");

    // Ten wrong passwords from this address; then even the right one is refused for a while.
    let wrong: Vec<Value> = (0..10).map(|_| req("GET", "/api/node", Some(("ops", "guess")))).collect();
    assert!(send(&broker, &wrong).iter().all(|a| status(a) == 401));
    let blocked = send(&broker, &[req("GET", "/api/node", Some(ops))]);
    assert_eq!(status(&blocked[0]), 429, "{blocked:#?}");
}

/// The page headless Chromium renders at `url` once its scripts have run for a few
/// (virtual) seconds.
fn rendered_console(url: &str) -> String {
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "needs Chromium — run scripts/install-console-test-deps.sh");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=8000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url]);
    let out = run_bounded(&mut cmd, CLIENT_TIMEOUT);
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn console_goes_live_behind_auth_in_headless_chromium() {
    // Chromium logs in with the credentials of the URL, as after its login prompt, and the
    // console's own API calls then carry the remembered login: the page reaches "Live".
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    add_user(&data_dir, "ops", "ops-pw");
    let broker = Broker::start_with(BrokerOpts {
        args: vec!["--http-auth".into(), "true".into()],
        data_dir: Some(data_dir),
        ..BrokerOpts::default()
    });
    let page = rendered_console(&format!("http://ops:ops-pw@{}/", broker.http_addr()));
    let status = page.split("data-testid=\"status\"").nth(1).unwrap_or("");
    assert!(status.split("</div>").next().unwrap_or("").contains("Live"), "console not live:\n{page}");
    let anonymous = rendered_console(&format!("http://{}/", broker.http_addr()));
    assert!(!anonymous.contains("data-testid=\"status\""), "no console without a login:\n{anonymous}");
}
