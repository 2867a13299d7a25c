//! Authentication and authorization of the admin API and the console (`--http-auth`), and
//! the cross-site check of the admin API's changes (always on).
//!
//! - Who: HTTP Basic with a Sluice user (`sluice user add`), the password checked against
//!   the user's SCRAM credential as Kafka's PLAIN login checks it; the principal is
//!   `User:<name>`, the same as on the Kafka listeners. Missing or wrong credentials: 401
//!   with `WWW-Authenticate: Basic`, a wrong one after Kafka's 100 ms failed-login delay; an
//!   address past its failed logins (shared with Kafka SASL) gets 429 without a check.
//! - What: reading (GET/HEAD of `/api/*`, the console at `/` and `/console/*`) needs
//!   DESCRIBE on the Cluster resource, a change (any other method under `/api/`) needs ALTER
//!   on it, as Kafka's DescribeCluster and AlterPartitionReassignments do; 403 otherwise.
//!   Without an ACL authorizer every authenticated user may do everything (Kafka's rule).
//! - Left open: nsqd's and nsqlookupd's endpoints (NSQ clients and nsqadmin send no
//!   credentials) unless `--http-auth-nsqd-admin` (then their topic and channel actions,
//!   `/topic/*` and `/channel/*`, need ALTER), and, unless `--http-auth-metrics`, `/metrics`
//!   and `/ping`.
//! - Cross-site: a change under `/api/` that a browser sends from another site is refused
//!   (403) whether or not authentication is on, by the rule of Go's
//!   `http.CrossOriginProtection`: `Sec-Fetch-Site` must be `same-origin` or `none` when
//!   present; otherwise an `Origin` must name the request's own `Host`; a request with
//!   neither header (curl, scripts, the CLI) is no browser's and passes. A browser attaches
//!   remembered Basic credentials to cross-site requests too, so this is what keeps another
//!   page from acting as the logged-in operator.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Kafka's `connection.failed.authentication.delay.ms` default: a wrong password is answered
/// this late, which slows guessing over one keep-alive connection.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(100);
/// How long an address past its failed logins is told to wait (the limiter's window).
const RETRY_AFTER_SECONDS: &str = "60";
/// The realm browsers show in their login prompt.
const CHALLENGE: &str = "Basic realm=\"sluice\", charset=\"UTF-8\"";

/// What a request asks of the admin side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// DESCRIBE on the cluster: look.
    Read,
    /// ALTER on the cluster: change.
    Change,
}

/// What a user name and password led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The principal, as ACLs name it (`User:alice`).
    Authenticated(String),
    Failed,
    /// Too many failed logins from this address lately; the password was not checked.
    Blocked,
}

/// The users and ACLs the Kafka listeners use, as the HTTP side asks them.
pub trait AdminAuthenticator: Send + Sync + 'static {
    /// Checks a password (blocking: hashing takes milliseconds); failures count against `peer`.
    fn login(&self, user: &str, password: &[u8], peer: IpAddr) -> Login;
    /// Whether `principal` from `host` may have `access` to the cluster.
    fn allows(&self, principal: &str, host: &str, access: Access) -> bool;
}

/// `--http-auth` and what it covers.
#[derive(Clone)]
pub struct HttpAuth {
    pub authenticator: Arc<dyn AdminAuthenticator>,
    /// `--http-auth-metrics`: `/metrics` and `/ping` need DESCRIBE too.
    pub protect_metrics: bool,
    /// `--http-auth-nsqd-admin`: nsqd's and nsqlookupd's `/topic/*`, `/channel/*` need ALTER.
    pub protect_nsqd_admin: bool,
}

/// Wraps the HTTP router: the cross-site check on the admin API's changes, and with `auth`
/// the logins and ACL checks above.
pub fn guard_admin(router: Router, auth: Option<HttpAuth>) -> Router {
    let auth = auth.map(Arc::new);
    router.layer(axum::middleware::from_fn(move |request: Request<Body>, next: Next| {
        let auth = auth.clone();
        async move {
            let path = request.uri().path();
            let method = request.method().clone();
            if path.starts_with("/api/") && !is_safe(&method) && is_cross_site(request.headers()) {
                return error(
                    StatusCode::FORBIDDEN,
                    "cross-site request refused: the admin API takes changes only from its own origin",
                );
            }
            let Some(auth) = auth else { return next.run(request).await };
            let Some(access) = access_needed(path, &method, auth.protect_metrics, auth.protect_nsqd_admin) else {
                return next.run(request).await;
            };
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
            match check(&auth, request.headers(), peer, access).await {
                Ok(()) => next.run(request).await,
                Err(refusal) => refusal,
            }
        }
    }))
}

/// What `method` on `path` needs; None: open to all.
fn access_needed(path: &str, method: &Method, protect_metrics: bool, protect_nsqd_admin: bool) -> Option<Access> {
    // nsqd's topic and channel actions (create, delete, empty, pause, unpause; lookupd's
    // tombstone) all change something, whatever the method.
    if protect_nsqd_admin && (path.starts_with("/topic/") || path.starts_with("/channel/")) {
        return Some(Access::Change);
    }
    let admin = path == "/" || path.starts_with("/api/") || path == "/api" || path.starts_with("/console/");
    let monitoring = path == "/metrics" || path == "/ping";
    if !(admin || (monitoring && protect_metrics)) {
        return None;
    }
    Some(if is_safe(method) { Access::Read } else { Access::Change })
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a browser says this request comes from another site (the module's rule).
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, host)| host);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// Ok when the request's credentials name a principal allowed `access`; else the refusal.
async fn check(auth: &Arc<HttpAuth>, headers: &HeaderMap, peer: IpAddr, access: Access) -> Result<(), Response> {
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(unauthorized("authentication required: HTTP Basic with a Sluice user"));
    };
    let authenticator = Arc::clone(&auth.authenticator);
    let login = tokio::task::spawn_blocking(move || authenticator.login(&user, password.as_bytes(), peer)).await;
    let principal = match login {
        Ok(Login::Authenticated(principal)) => principal,
        Ok(Login::Failed) => {
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            return Err(unauthorized("authentication failed: invalid username or password"));
        }
        Ok(Login::Blocked) => {
            let mut refusal = error(
                StatusCode::TOO_MANY_REQUESTS,
                "authentication failed: too many failed authentication attempts from this address; retry later",
            );
            refusal.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            return Err(refusal);
        }
        Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, &format!("login check failed: {e}"))),
    };
    if auth.authenticator.allows(&principal, &peer.to_string(), access) {
        return Ok(());
    }
    let needed = match access {
        Access::Read => "DESCRIBE",
        Access::Change => "ALTER",
    };
    Err(error(StatusCode::FORBIDDEN, &format!("{principal} is not authorized: this needs {needed} on the cluster")))
}

/// User and password of an `Authorization: Basic` header (RFC 7617, UTF-8).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    response
}

/// The admin API's error shape, `{"error": "..."}`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cross_site_follows_fetch_metadata_then_origin() {
        assert!(!is_cross_site(&headers(&[])), "no browser headers: a script");
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[("origin", "http://127.0.0.1:4151"), ("host", "127.0.0.1:4151")])));
        assert!(is_cross_site(&headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:4151")])));
        assert!(is_cross_site(&headers(&[("origin", "null"), ("host", "127.0.0.1:4151")])));
    }

    #[test]
    fn basic_credentials_are_decoded_and_other_schemes_ignored() {
        // "alice:pa:ss" — a password may hold colons.
        let map = headers(&[("authorization", "Basic YWxpY2U6cGE6c3M=")]);
        assert_eq!(basic_credentials(&map), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(basic_credentials(&headers(&[("authorization", "Bearer abc")])), None);
        assert_eq!(basic_credentials(&headers(&[("authorization", "Basic !!!")])), None);
    }

    #[test]
    fn what_each_path_needs() {
        assert_eq!(access_needed("/api/topics", &Method::GET, false, false), Some(Access::Read));
        assert_eq!(access_needed("/api/topics", &Method::POST, false, false), Some(Access::Change));
        assert_eq!(access_needed("/", &Method::GET, false, false), Some(Access::Read));
        assert_eq!(access_needed("/console/app.js", &Method::GET, false, false), Some(Access::Read));
        assert_eq!(access_needed("/metrics", &Method::GET, false, false), None);
        assert_eq!(access_needed("/metrics", &Method::GET, true, false), Some(Access::Read));
        assert_eq!(access_needed("/ping", &Method::GET, true, false), Some(Access::Read));
        assert_eq!(access_needed("/pub", &Method::POST, true, true), None);
        assert_eq!(access_needed("/stats", &Method::GET, true, true), None);
        assert_eq!(access_needed("/topic/delete", &Method::POST, true, false), None);
        assert_eq!(access_needed("/topic/delete", &Method::POST, false, true), Some(Access::Change));
        assert_eq!(access_needed("/channel/pause", &Method::POST, false, true), Some(Access::Change));
    }
}
