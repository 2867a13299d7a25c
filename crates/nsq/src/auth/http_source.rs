//! nsqd's `--auth-http-address` protocol: `GET http://<address>/auth?common_name=..&
//! remote_ip=..&secret=..&tls=..`, answered `200` with JSON (`reply.rs`). One request per
//! connection (`Connection: close`) through `sluice_http_wire`, bounded in time and in answer
//! size. An `https://` URL is reached with the client TLS settings nsqd uses for it
//! (`sluice_tls::client_config`: `--tls-root-ca-file` or the system roots, `--tls-min-version`);
//! the certificate must name the URL's host.

use super::reply::{parse_reply, AuthState};
use super::{AuthMethod, AuthRequest};
use sluice_http_wire::Transport;
use sluice_tls::rustls::ClientConfig;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer read from an auth server, headers included: permissions are a few hundred
/// bytes; a server sending more is broken.
pub const ANSWER_BYTES_MAX: usize = 1 << 20;

/// One query to one server; any failure is an error naming what went wrong.
pub(super) async fn query(
    address: &str,
    request: &AuthRequest<'_>,
    method: AuthMethod,
    client_tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<AuthState, String> {
    let Endpoint { https, host, host_port, path } = parse_address(address)?;
    let transport = match (https, client_tls) {
        (false, _) => Transport::Plain,
        (true, Some(config)) => Transport::Tls { config: config.clone(), server_name: host },
        (true, None) => return Err("an https:// auth server but no client TLS settings".into()),
    };
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
    let answer =
        sluice_http_wire::exchange_over(&transport, &host_port, head.as_bytes(), timeout, ANSWER_BYTES_MAX).await?;
    let body = ok_body(answer)?;
    parse_reply(&body)
}

/// Where one auth server is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// An `https://` URL: asked over TLS.
    pub https: bool,
    /// The URL's host without the brackets of an IPv6 address: the name its certificate must carry.
    pub host: String,
    /// What is connected to and sent as `Host`, with the scheme's port when the URL has none.
    pub host_port: String,
    /// Path and query string.
    pub path: String,
}

/// An `--auth-http-address` as nsqd reads it: `host:port` means `http://host:port/auth`; a
/// value with `://` is the whole URL, `http` or `https`.
pub fn parse_address(address: &str) -> Result<Endpoint, String> {
    let Some((scheme, rest)) = address.split_once("://") else {
        let (host, port) = split_host_port(address)?;
        if port.is_none() {
            return Err(format!("{address:?} is neither HOST:PORT nor an http(s):// URL"));
        }
        return Ok(Endpoint { https: false, host, host_port: address.to_string(), path: "/auth".to_string() });
    };
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(format!("unsupported scheme {scheme:?} (http or https)")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = split_host_port(authority)?;
    let port = port.unwrap_or(if https { 443 } else { 80 });
    let host_port = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok(Endpoint { https, host, host_port, path })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` into the host (no brackets) and the port if given.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("bad host {authority:?}");
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.contains(['@', ' ', '/']) {
        return Err(bad());
    }
    let port = port.map(|p| p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad)).transpose()?;
    Ok((host.to_string(), port))
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
    }

    fn endpoint(https: bool, host: &str, host_port: &str, path: &str) -> Result<Endpoint, String> {
        Ok(Endpoint { https, host: host.into(), host_port: host_port.into(), path: path.into() })
    }

    #[test]
    fn addresses_as_nsqd_reads_them() {
        assert_eq!(parse_address("127.0.0.1:4181"), endpoint(false, "127.0.0.1", "127.0.0.1:4181", "/auth"));
        assert_eq!(
            parse_address("http://auth.local/v1/check"),
            endpoint(false, "auth.local", "auth.local:80", "/v1/check")
        );
        assert_eq!(parse_address("http://h:1?x=1"), endpoint(false, "h", "h:1", "/?x=1"));
        assert_eq!(parse_address("https://auth.local/auth"), endpoint(true, "auth.local", "auth.local:443", "/auth"));
        assert_eq!(parse_address("HTTPS://127.0.0.1:4181"), endpoint(true, "127.0.0.1", "127.0.0.1:4181", "/"));
        assert_eq!(parse_address("https://[::1]:8443/a?b=c"), endpoint(true, "::1", "[::1]:8443", "/a?b=c"));
        assert_eq!(parse_address("https://[::1]/a"), endpoint(true, "::1", "[::1]:443", "/a"));
        for bad in [
            "ftp://h/auth",
            "h",
            ":4181",
            "h:port",
            "h:0",
            "h:65536",
            "https://",
            "https://:443/auth",
            "https://[::1/auth",
            "https://[::1]x/auth",
            "https://user@h/auth",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
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
