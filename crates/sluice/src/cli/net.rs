//! TCP connections for both clients, with errors an operator can act on, and the small
//! parsers flags share (durations, positions).

use anyhow::{anyhow, bail, Context as _};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long to wait for a TCP connection before calling the broker unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection to `addr` ("host:port"), failing with
/// "cannot reach broker at <addr>: <reason>" in plain words.
pub fn connect(addr: &str, io_timeout: Duration) -> anyhow::Result<TcpStream> {
    let unreachable = |reason: String| anyhow!("cannot reach broker at {addr}: {reason}");
    let targets = addr.to_socket_addrs().map_err(|e| unreachable(describe_io_error(&e)))?;
    let mut last = None;
    for target in targets {
        match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_read_timeout(Some(io_timeout)).context("set socket read timeout")?;
                stream.set_write_timeout(Some(io_timeout)).context("set socket write timeout")?;
                // Requests are whole frames written at once; do not hold them back.
                stream.set_nodelay(true).context("set TCP_NODELAY")?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(last.map(|e| describe_io_error(&e)).unwrap_or_else(|| "no address found".to_string())))
}

/// An I/O error as a short lowercase phrase, without the "(os error N)" suffix.
pub fn describe_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        io::ErrorKind::UnexpectedEof => "connection closed by the broker".to_string(),
        io::ErrorKind::BrokenPipe => "connection closed by the broker".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(cut) => text[..cut].to_lowercase(),
                None => text,
            }
        }
    }
}

/// Parses "30s", "500ms", "2m", "1h" or a plain number of milliseconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().with_context(|| format!("invalid duration {text:?} (use e.g. 10s, 500ms, 2m)"))?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => bail!("invalid duration {text:?} (use e.g. 10s, 500ms, 2m)"),
    };
    Ok(Duration::from_millis(ms))
}

/// Where to start reading or what to reset to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

/// Parses beginning|earliest, end|latest, offset:N, timestamp:MS.
pub fn parse_position(text: &str) -> anyhow::Result<Position> {
    let number = |n: &str, what: &str| -> anyhow::Result<i64> {
        let value: i64 = n.parse().with_context(|| format!("invalid {what} {n:?} in {text:?}"))?;
        if value < 0 {
            bail!("{what} in {text:?} must not be negative");
        }
        Ok(value)
    };
    match text {
        "beginning" | "earliest" => Ok(Position::Beginning),
        "end" | "latest" => Ok(Position::End),
        _ => match text.split_once(':') {
            Some(("offset", n)) => Ok(Position::Offset(number(n, "offset")?)),
            Some(("timestamp", n)) => Ok(Position::Timestamp(number(n, "timestamp")?)),
            _ => bail!("invalid position {text:?} (use beginning, end, offset:N or timestamp:MS)"),
        },
    }
}

/// Splits "key=value" (the value may itself hold '=').
pub fn parse_key_value(text: &str, what: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid {what} {text:?} (use KEY=VALUE)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_positions_parse() {
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("3 days").is_err());
        assert_eq!(parse_position("end").unwrap(), Position::End);
        assert_eq!(parse_position("offset:7").unwrap(), Position::Offset(7));
        assert_eq!(parse_position("timestamp:9").unwrap(), Position::Timestamp(9));
        assert!(parse_position("offset:-1").is_err());
        assert!(parse_position("middle").is_err());
        assert_eq!(parse_key_value("a=b=c", "header").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_key_value("=x", "header").is_err());
    }

    #[test]
    fn refused_connection_reads_plainly() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_io_error(&e), "connection refused");
    }
}
