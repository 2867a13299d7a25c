//! The auth source's answer, as nsqd's `internal/auth` reads and checks it:
//! `{"ttl":3600,"identity":"..","identity_url":"..","authorizations":[{"topic":"regex",
//! "channels":["regex"],"permissions":["subscribe","publish"]}]}`.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Compiled size of one topic or channel pattern: far above any real pattern, and it keeps
/// a broken auth server from making the broker compile something huge.
const PATTERN_SIZE_MAX: usize = 1 << 20;
/// Authorizations kept from one answer (each is a few compiled patterns).
const AUTHORIZATIONS_MAX: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Reply {
    ttl: i64,
    identity: Option<String>,
    identity_url: Option<String>,
    authorizations: Option<Vec<ReplyAuthorization>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReplyAuthorization {
    topic: String,
    channels: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
}

/// What a secret may do, until `expires`.
#[derive(Debug, Clone)]
pub struct AuthState {
    pub identity: String,
    pub identity_url: String,
    pub authorizations: Vec<Authorization>,
    pub expires: Instant,
}

#[derive(Debug, Clone)]
pub struct Authorization {
    pub topic: Regex,
    pub channels: Vec<Regex>,
    pub publish: bool,
    pub subscribe: bool,
}

impl Authorization {
    /// nsqd's rule: a publish (empty channel) needs `publish`, a subscribe needs `subscribe`;
    /// the topic pattern must match, and so must one channel pattern, also for a publish
    /// (where the channel is empty: grant publishing with a channel pattern such as `.*`).
    /// Patterns match anywhere in the name unless anchored, as Go's `MatchString`.
    fn allows(&self, topic: &str, channel: &str) -> bool {
        let permitted = if channel.is_empty() { self.publish } else { self.subscribe };
        permitted && self.topic.is_match(topic) && self.channels.iter().any(|c| c.is_match(channel))
    }
}

impl AuthState {
    pub fn allows(&self, topic: &str, channel: &str) -> bool {
        self.authorizations.iter().any(|a| a.allows(topic, channel))
    }

    pub fn expired(&self) -> bool {
        self.expires <= Instant::now()
    }
}

/// Parses and checks an answer: unknown permissions, patterns that do not compile and a TTL
/// that is not positive are refused with nsqd's reasons.
pub fn parse_reply(body: &[u8]) -> Result<AuthState, String> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| format!("invalid auth reply: {e}"))?;
    let listed = reply.authorizations.unwrap_or_default();
    if listed.len() > AUTHORIZATIONS_MAX {
        return Err(format!("{} authorizations (at most {AUTHORIZATIONS_MAX})", listed.len()));
    }
    let mut authorizations = Vec::with_capacity(listed.len());
    for a in listed {
        let (mut publish, mut subscribe) = (false, false);
        for p in a.permissions.unwrap_or_default() {
            match p.as_str() {
                "publish" => publish = true,
                "subscribe" => subscribe = true,
                other => return Err(format!("unknown permission {other}")),
            }
        }
        let topic = compile(&a.topic).map_err(|e| format!("unable to compile topic {:?} {e}", a.topic))?;
        let channels = a
            .channels
            .unwrap_or_default()
            .iter()
            .map(|c| compile(c).map_err(|e| format!("unable to compile channel {c:?} {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        authorizations.push(Authorization { topic, channels, publish, subscribe });
    }
    if reply.ttl <= 0 {
        return Err(format!("invalid TTL {} (must be >0)", reply.ttl));
    }
    // A TTL past what an Instant can hold is "for as long as the connection lasts".
    let ttl = Duration::from_secs(reply.ttl as u64).min(Duration::from_secs(100 * 365 * 86_400));
    Ok(AuthState {
        identity: reply.identity.unwrap_or_default(),
        identity_url: reply.identity_url.unwrap_or_default(),
        authorizations,
        expires: Instant::now() + ttl,
    })
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).size_limit(PATTERN_SIZE_MAX).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_follow_nsqds_rules() {
        let state = parse_reply(
            br#"{"ttl":60,"identity":"alice","authorizations":[
                {"topic":"^orders$","channels":[".*"],"permissions":["publish"]},
                {"topic":"logs","channels":["^audit$"],"permissions":["subscribe"]}]}"#,
        )
        .expect("valid reply");
        assert_eq!(state.identity, "alice");
        assert!(state.allows("orders", ""), "publish granted");
        assert!(!state.allows("orders2", ""), "anchored topic");
        assert!(!state.allows("orders", "ch"), "no subscribe on orders");
        assert!(state.allows("app-logs", "audit"), "unanchored topic pattern matches anywhere");
        assert!(!state.allows("logs", "other"));
        assert!(!state.allows("logs", ""), "no publish on logs");
        assert!(!state.expired());
    }

    #[test]
    fn bad_replies_are_refused_with_nsqds_reasons() {
        let err = |body: &str| parse_reply(body.as_bytes()).err().unwrap_or_default();
        assert!(err(r#"{"ttl":0,"authorizations":[]}"#).contains("invalid TTL 0"));
        assert!(err(r#"{"ttl":5,"authorizations":[{"topic":"t","permissions":["admin"]}]}"#)
            .contains("unknown permission admin"));
        assert!(err(r#"{"ttl":5,"authorizations":[{"topic":"(","permissions":[]}]}"#).contains("unable to compile"));
        assert!(err("not json").contains("invalid auth reply"));
        let empty = parse_reply(br#"{"ttl":5,"authorizations":null}"#).expect("no authorizations is a valid reply");
        assert!(empty.authorizations.is_empty());
    }
}
