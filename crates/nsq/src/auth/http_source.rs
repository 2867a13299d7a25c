//! nsqd's `--auth-http-address` protocol: `GET http://<address>/auth?common_name=..&
//! remote_ip=..&secret=..&tls=..`, answered `200` with JSON (`reply.rs`). One request per
//! connection (`Connection: close`) through `sluice_http_wire`, bounded in time and in answer
//! size. `https://` auth servers are not supported (nsqd can reach them with its
//! client TLS settings; Sluice has none yet).

use super::reply::{parse_reply, AuthState};
use super::{AuthMethod, AuthRequest};
use std::time::Duration;

/// Largest answer read from an auth server, headers included: permissions are a few hundred
/// bytes; a server sending more is broken.
pub const ANSWER_BYTES_MAX: usize = 1 << 20;

/// One query to one server; any failure is an error naming what went wrong.
pub(super) async fn query(
    address: &str,
    request: &AuthRequest<'_>,
    method: AuthMethod,
    timeout: Duration,
) -> Result<AuthState, String> {
    let (host_port, path) = endpoint(address)?;
    let common = format!(
        "Host: {host_port}\r\nAccept: application/vnd.nsq; version=1.0\r\nUser-Agent: sluice-nsqd\r\nConnection: close\r\n"
    );
    let head = match method {
        AuthMethod::Get => {
            let separator = if path.contains('?') { '&' } else { '?' };
            format!("GET {path}{separator}{} HTTP/1.1\r\n{common}\r\n", encode_query(request))
        }
        AuthMethod::Post => {
            let body = encode_json(request);
            format!(
                "POST {path} HTTP/1.1\r\n{common}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let answer = sluice_http_wire::exchange(&host_port, head.as_bytes(), timeout, ANSWER_BYTES_MAX).await?;
    let body = ok_body(answer)?;
    parse_reply(&body)
}

/// `host:port` means `http://host:port/auth`; a value with `://` is the whole URL (nsqd).
fn endpoint(address: &str) -> Result<(String, String), String> {
    let Some((scheme, rest)) = address.split_once("://") else {
        return Ok((address.to_string(), "/auth".to_string()));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!("unsupported scheme {scheme:?} (http only)"));
    }
    let (host_port, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let host_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:80") };
    Ok((host_port, path))
}

/// Go's `url.Values.Encode` of nsqd's four parameters: keys sorted, values query-escaped.
pub fn encode_query(request: &AuthRequest<'_>) -> String {
    let tls = if request.tls { "true" } else { "false" };
    let pairs = [
        ("common_name", request.common_name.to_string()),
        ("remote_ip", request.remote_ip.to_string()),
        ("secret", request.secret.to_string()),
        ("tls", tls.to_string()),
    ];
    pairs.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect::<Vec<_>>().join("&")
}

/// nsqd's POST body: Go's `json.Marshal` of the same `url.Values` (keys sorted, each value a
/// one-element list).
pub fn encode_json(request: &AuthRequest<'_>) -> String {
    let tls = if request.tls { "true" } else { "false" };
    serde_json::json!({
        "common_name": [request.common_name],
        "remote_ip": [request.remote_ip.to_string()],
        "secret": [request.secret],
        "tls": [tls],
    })
    .to_string()
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`, the rest `%XX`.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The body of a complete HTTP/1.x answer read to its end: `200` only (nsqd's client treats
/// anything else as an error).
pub fn parse_response(answer: &[u8]) -> Result<Vec<u8>, String> {
    ok_body(sluice_http_wire::parse_answer(answer)?)
}

fn ok_body(answer: sluice_http_wire::Answer) -> Result<Vec<u8>, String> {
    if answer.status != 200 {
        return Err(format!("got response {} {:?}", answer.status, String::from_utf8_lossy(&answer.body)));
    }
    Ok(answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_endpoints_as_nsqd_builds_them() {
        let request = AuthRequest {
            remote_ip: "127.0.0.1".parse().expect("ip"),
            tls: true,
            common_name: "",
            secret: "a b&c=d/é",
        };
        assert_eq!(encode_query(&request), "common_name=&remote_ip=127.0.0.1&secret=a+b%26c%3Dd%2F%C3%A9&tls=true");
        assert_eq!(
            encode_json(&request),
            r#"{"common_name":[""],"remote_ip":["127.0.0.1"],"secret":["a b&c=d/é"],"tls":["true"]}"#
        );
        assert_eq!(endpoint("127.0.0.1:4181"), Ok(("127.0.0.1:4181".into(), "/auth".into())));
        assert_eq!(endpoint("http://auth.local/v1/check"), Ok(("auth.local:80".into(), "/v1/check".into())));
        assert_eq!(endpoint("http://h:1?x=1"), Ok(("h:1".into(), "/?x=1".into())));
        assert!(endpoint("https://h:1/auth").is_err());
    }

    #[test]
    fn answers_with_length_chunks_or_errors() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(parse_response(ok), Ok(b"{}".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3;x\r\na\":\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok(b"{\"a\":".to_vec()));
        let denied = b"HTTP/1.0 403 Forbidden\r\n\r\nno";
        assert!(parse_response(denied).err().unwrap_or_default().contains("403"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
