//! A tiny HTTP/1.1 client for the admin JSON API: one request per connection
//! (`Connection: close`), JSON in and out, and the API's `{"error": "..."}` turned into the
//! error message. No TLS: the admin API listens on plain HTTP.

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

use super::net::{connect, describe_io_error};

/// Bound on one request and its answer (a topic deletion fsyncs; give it room).
const IO_TIMEOUT: Duration = Duration::from_secs(30);
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

/// Parses a complete HTTP/1.1 response (read to EOF): status line, headers, body with
/// Content-Length, chunked transfer encoding, or up to EOF.
fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    let head_end = find(raw, b"\r\n\r\n").ok_or_else(|| anyhow!("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..head_end]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(n) => bail!("body cut short: {} of {n} bytes", rest.len()),
            None => rest.to_vec(),
        }
    };
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

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(|| anyhow!("chunk size line cut short"))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).context("chunk size is not text")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            bail!("chunk cut short");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
