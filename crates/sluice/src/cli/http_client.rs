//! A tiny HTTP/1.1 client for the admin JSON API: one request per connection
//! (`Connection: close`), JSON in and out, and the API's `{"error": "..."}` turned into the
//! error message. No TLS: the admin API listens on plain HTTP. With `--http-auth` on the
//! broker, `SLUICE_HTTP_USER` and `SLUICE_HTTP_PASSWORD` are sent as HTTP Basic credentials.

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

use super::net::{connect, describe_io_error};

/// Bound on one request and its answer (a topic deletion fsyncs; give it room).
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The admin API's user and password, when the broker runs with `--http-auth`.
pub const HTTP_USER_ENV: &str = "SLUICE_HTTP_USER";
pub const HTTP_PASSWORD_ENV: &str = "SLUICE_HTTP_PASSWORD";

/// Largest answer accepted; the admin API's biggest answers (message pages) are far smaller.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

pub struct HttpClient {
    addr: String,
}

/// A decoded answer: the status and the JSON body (`Null` for an empty body, e.g. 204).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl HttpClient {
    pub fn new(addr: &str) -> HttpClient {
        HttpClient { addr: addr.to_string() }
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call("DELETE", path, None)
    }

    /// Sends one request; a non-2xx answer becomes an error carrying the API's message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let answer = self.request(method, path, body)?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let message = answer.body.get("error").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
            match answer.status {
                404 => format!("not found: {path} (is this broker's admin API at {}?)", self.addr),
                status => format!("{method} {path} answered HTTP {status}"),
            }
        });
        bail!("{message}")
    }

    /// Sends one request and returns whatever the server answered.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        let mut stream = connect(&self.addr, IO_TIMEOUT)?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.addr
        );
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(credentials) = basic_credentials() {
            head.push_str(&format!("Authorization: Basic {credentials}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        let lost = |e: std::io::Error| anyhow!("lost connection to broker at {}: {}", self.addr, describe_io_error(&e));
        stream.write_all(head.as_bytes()).map_err(lost)?;
        stream.write_all(payload.as_bytes()).map_err(lost)?;
        let mut raw = Vec::new();
        stream.take(RESPONSE_BYTES_MAX as u64 + 1).read_to_end(&mut raw).map_err(lost)?;
        if raw.len() > RESPONSE_BYTES_MAX {
            bail!("answer to {method} {path} is larger than {RESPONSE_BYTES_MAX} bytes");
        }
        parse_response(&raw).with_context(|| format!("bad HTTP answer to {method} {path} from {}", self.addr))
    }
}

/// `user:password` from the environment, base64-encoded (RFC 7617), if a user is set.
fn basic_credentials() -> Option<String> {
    use base64::Engine as _;
    let user = std::env::var(HTTP_USER_ENV).ok().filter(|u| !u.is_empty())?;
    let password = std::env::var(HTTP_PASSWORD_ENV).unwrap_or_default();
    Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The answer's status and its body as JSON (`Null` when empty; a non-JSON error page kept as
/// the error's text).
fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    let answer = sluice_http_wire::parse_answer(raw).map_err(|e| anyhow!(e))?;
    let (status, body) = (answer.status, answer.body);
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            // A non-JSON error page (e.g. a plain-text 404 from another router): keep its text.
            Err(_) if !(200..300).contains(&status) => {
                serde_json::json!({ "error": String::from_utf8_lossy(&body).trim().to_string() })
            }
            Err(e) => return Err(e).context("body is not JSON"),
        }
    };
    Ok(Answer { status, body })
}

/// Escapes one path segment (topic, group and channel names may hold '.' and '#').
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_empty_bodies() {
        let a = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((a.status, a.body["a"].as_i64()), (200, Some(1)));
        let c = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"err\r\n8\r\nor\":\"x\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((c.status, c.body["error"].as_str()), (404, Some("x")));
        let e = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((e.status, e.body), (204, Value::Null));
        let t = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found").unwrap();
        assert_eq!(t.body["error"].as_str(), Some("Not Found"));
    }

    #[test]
    fn escapes_segments() {
        assert_eq!(segment("a.b_c-1"), "a.b_c-1");
        assert_eq!(segment("ch#ephemeral"), "ch%23ephemeral");
    }
}
