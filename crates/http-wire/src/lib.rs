//! The few HTTP/1.x requests Sluice makes itself: nsqd's auth-server query, a node asking
//! another node's HTTP API (channel lists, forwarded admin calls) and the `sluice` CLI's admin
//! API calls. Each is one request on its own connection with `Connection: close` (or
//! HTTP/1.0), so an answer ends with the connection: read it whole, bounded in bytes, then
//! parse it here. Plain TCP or TLS (rustls, for `https://` auth servers). Not a general client
//! (no keep-alive or redirects): an answer is trusted no more than any network input, and a
//! malformed one is an error, never a panic.

use sluice_tls::rustls::pki_types::ServerName;
use sluice_tls::rustls::ClientConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A whole answer: its status code and its body (chunked transfer decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How an exchange's connection is made.
#[derive(Debug, Clone)]
pub enum Transport {
    Plain,
    /// TLS with `config`'s roots; the server's certificate must name `server_name` (the URL's
    /// host: a DNS name or an IP address, without brackets).
    Tls {
        config: Arc<ClientConfig>,
        server_name: String,
    },
}

/// Sends `request` (head and body, already encoded) to `addr` (HOST:PORT) and parses the
/// answer read to the end of the connection, all within `timeout` and at most `bytes_max`
/// bytes of answer.
pub async fn exchange(addr: &str, request: &[u8], timeout: Duration, bytes_max: usize) -> Result<Answer, String> {
    exchange_over(&Transport::Plain, addr, request, timeout, bytes_max).await
}

/// `exchange` over `transport`: for TLS, the handshake is inside `timeout` too.
pub async fn exchange_over(
    transport: &Transport,
    addr: &str,
    request: &[u8],
    timeout: Duration,
    bytes_max: usize,
) -> Result<Answer, String> {
    let raw = tokio::time::timeout(timeout, read_answer(transport, addr, request, bytes_max))
        .await
        .map_err(|_| format!("no answer from {addr} within {timeout:?}"))??;
    parse_answer(&raw)
}

async fn read_answer(transport: &Transport, addr: &str, request: &[u8], bytes_max: usize) -> Result<Vec<u8>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    match transport {
        Transport::Plain => read_from(stream, addr, request, bytes_max).await,
        Transport::Tls { config, server_name } => {
            let name = ServerName::try_from(server_name.clone())
                .map_err(|_| format!("{server_name:?} is not a host name or IP address for TLS"))?;
            let stream = sluice_tls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            read_from(stream, addr, request, bytes_max).await
        }
    }
}

async fn read_from<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: &str,
    request: &[u8],
    bytes_max: usize,
) -> Result<Vec<u8>, String> {
    stream.write_all(request).await.map_err(|e| format!("write to {addr}: {e}"))?;
    // TLS buffers records until flushed.
    stream.flush().await.map_err(|e| format!("write to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let mut limited = (&mut stream).take(bytes_max as u64 + 1);
    match limited.read_to_end(&mut raw).await {
        Ok(_) => {}
        // A TLS server that closes without close_notify (many do): the answer is still whole
        // if its own framing says so, which `parse_answer` then checks; a body that runs to
        // the end of the connection could be cut short unseen, so it is refused.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && framed(&raw) => {}
        Err(e) => return Err(format!("read from {addr}: {e}")),
    }
    if raw.len() > bytes_max {
        return Err(format!("answer from {addr} larger than {bytes_max} bytes"));
    }
    Ok(raw)
}

/// Whether the answer's head (complete) gives its body a length: `Content-Length` or chunked.
fn framed(raw: &[u8]) -> bool {
    let Some(head_end) = find(raw, b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    head.split("\r\n").any(|line| line.starts_with("content-length:") || line.starts_with("transfer-encoding:"))
}

/// Parses a complete HTTP/1.x answer: the status line, the headers, and a body with a
/// `Content-Length`, chunked, or running to the end.
pub fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("incomplete HTTP answer (no end of headers)")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "HTTP headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| format!("bad HTTP status line {status_line:?}"))?;
    let (mut chunked, mut length) = (false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| format!("bad Content-Length {value:?}"))?);
        }
    }
    let rest = &raw[head_end + 4..];
    let body = match (chunked, length) {
        (true, _) => dechunk(rest)?,
        (false, Some(n)) => {
            rest.get(..n).ok_or_else(|| format!("body cut short: {} of {n} bytes", rest.len()))?.to_vec()
        }
        (false, None) => rest.to_vec(),
    };
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or("chunk size line cut short")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "chunk size is not text")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("chunk cut short")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size.saturating_add(2)..).ok_or("chunk cut short")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bodies_by_length_chunks_or_end_of_connection() {
        let sized = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!(sized, Answer { status: 200, body: b"{}".to_vec() });
        let chunked =
            parse_answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.body, b"abcde");
        let to_end = parse_answer(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnope").unwrap();
        assert_eq!((to_end.status, to_end.body.as_slice()), (404, &b"nope"[..]));
        let empty = parse_answer(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(empty.is_success() && empty.body.is_empty());
    }

    #[test]
    fn only_a_framed_answer_may_end_without_close_notify() {
        assert!(framed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
        assert!(framed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"));
        assert!(!framed(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n{\"ttl\":"), "a body to the end could be cut short");
        assert!(!framed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"), "headers cut short");
    }

    #[test]
    fn malformed_answers_are_errors() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
        ] {
            assert!(parse_answer(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    proptest! {
        #[test]
        fn never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256), head in "HTTP/1.1 [0-9]{3} OK\r\n(Content-Length: [0-9]{1,3}\r\n|Transfer-Encoding: chunked\r\n)?\r\n") {
            let _ = parse_answer(&raw);
            let mut framed = head.into_bytes();
            framed.extend_from_slice(&raw);
            let _ = parse_answer(&framed);
        }
    }

    #[tokio::test]
    async fn exchange_reads_one_answer_and_bounds_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            for answer in [&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..], &[b'x'; 4096][..]] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 64];
                let _ = stream.read(&mut request).await.unwrap();
                stream.write_all(answer).await.unwrap();
            }
        });
        let request = b"GET / HTTP/1.0\r\n\r\n";
        let answer = exchange(&addr, request, Duration::from_secs(5), 1024).await.unwrap();
        assert_eq!(answer.body, b"hello");
        let too_big = exchange(&addr, request, Duration::from_secs(5), 1024).await.unwrap_err();
        assert!(too_big.contains("larger than 1024"), "{too_big}");
        server.await.unwrap();
    }
}
