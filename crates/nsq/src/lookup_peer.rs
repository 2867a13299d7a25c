//! The nsqd side of nsqlookupd's TCP protocol (V1), as nsqd's `lookup_peer.go` speaks it:
//! the magic `"  V1"`, then one command per line (`IDENTIFY` with a size-prefixed JSON body,
//! `REGISTER topic [channel]`, `UNREGISTER topic [channel]`, `PING`), each answered with a
//! 4-byte big-endian size and that many bytes (`OK`, IDENTIFY's JSON, or an `E_*` error after
//! which lookupd closes the connection).
//!
//! The peer's answers are bounded (size, time) like every other input.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// nsqlookupd's protocol magic.
const MAGIC_V1: &[u8] = b"  V1";
/// Longest a connect, a command's write and its answer may take (nsqd gives reads and
/// writes one second each; a loaded test machine gets more).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a lookupd peer could not be spoken to.
#[derive(Debug)]
pub enum PeerError {
    Io(std::io::Error),
    TimedOut(&'static str),
    /// lookupd answered with one of its errors (`E_INVALID`, `E_BAD_TOPIC`, ...).
    Refused(String),
    /// An answer larger than the bound, or not what the command expects.
    BadAnswer(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Io(e) => write!(f, "{e}"),
            PeerError::TimedOut(what) => write!(f, "timed out {what}"),
            PeerError::Refused(answer) => write!(f, "lookupd refused: {answer}"),
            PeerError::BadAnswer(why) => write!(f, "bad answer: {why}"),
        }
    }
}

impl From<std::io::Error> for PeerError {
    fn from(e: std::io::Error) -> Self {
        PeerError::Io(e)
    }
}

/// What this node tells lookupd about itself in IDENTIFY (nsqd's fields; lookupd requires
/// the broadcast address, both ports and the version).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerInfo {
    pub broadcast_address: String,
    pub hostname: String,
    pub tcp_port: u16,
    pub http_port: u16,
    pub version: String,
}

/// One open connection to an nsqlookupd, identified.
pub struct LookupPeer {
    stream: TcpStream,
    answer_max: usize,
}

impl LookupPeer {
    /// Connects to `addr`, sends the magic and IDENTIFY; returns the peer and lookupd's own
    /// info (its JSON answer).
    pub async fn connect(addr: &str, info: &PeerInfo, answer_max: usize) -> Result<(LookupPeer, String), PeerError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::TimedOut("connecting"))??;
        stream.set_nodelay(true)?;
        let mut peer = LookupPeer { stream, answer_max };
        peer.write(MAGIC_V1).await?;
        let body = serde_json::to_vec(info).map_err(|e| PeerError::BadAnswer(e.to_string()))?;
        let mut command = Vec::with_capacity(body.len() + 16);
        command.extend_from_slice(b"IDENTIFY\n");
        command.extend_from_slice(&(body.len() as u32).to_be_bytes());
        command.extend_from_slice(&body);
        let answer = peer.command(&command).await?;
        if serde_json::from_str::<serde_json::Value>(&answer).is_err() {
            return Err(PeerError::BadAnswer(format!("IDENTIFY answered {answer:?}, not JSON")));
        }
        Ok((peer, answer))
    }

    /// `REGISTER topic [channel]`: this node produces `topic` (and has `channel`).
    pub async fn register(&mut self, topic: &str, channel: Option<&str>) -> Result<(), PeerError> {
        self.expect_ok(&line("REGISTER", topic, channel)).await
    }

    /// `UNREGISTER topic [channel]`: the channel, or the topic and all its channels, is gone.
    pub async fn unregister(&mut self, topic: &str, channel: Option<&str>) -> Result<(), PeerError> {
        self.expect_ok(&line("UNREGISTER", topic, channel)).await
    }

    /// `PING`: keeps this node's registrations fresh in lookupd (nsqd sends one every 15 s).
    pub async fn ping(&mut self) -> Result<(), PeerError> {
        self.expect_ok(b"PING\n").await
    }

    async fn expect_ok(&mut self, command: &[u8]) -> Result<(), PeerError> {
        match self.command(command).await?.as_str() {
            "OK" => Ok(()),
            other => Err(PeerError::BadAnswer(format!("expected OK, got {other:?}"))),
        }
    }

    /// Writes one command and reads its answer; an `E_*` answer is `Refused`.
    async fn command(&mut self, command: &[u8]) -> Result<String, PeerError> {
        self.write(command).await?;
        let mut size = [0u8; 4];
        self.read(&mut size).await?;
        let size = u32::from_be_bytes(size) as usize;
        if size > self.answer_max {
            return Err(PeerError::BadAnswer(format!("an answer of {size} bytes (at most {})", self.answer_max)));
        }
        let mut answer = vec![0u8; size];
        self.read(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if answer.starts_with("E_") {
            return Err(PeerError::Refused(answer));
        }
        Ok(answer)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| PeerError::TimedOut("writing"))?
            .map_err(PeerError::Io)
    }

    async fn read(&mut self, into: &mut [u8]) -> Result<(), PeerError> {
        tokio::time::timeout(IO_TIMEOUT, self.stream.read_exact(into))
            .await
            .map_err(|_| PeerError::TimedOut("waiting for an answer"))??;
        Ok(())
    }
}

fn line(verb: &str, topic: &str, channel: Option<&str>) -> Vec<u8> {
    match channel {
        Some(channel) => format!("{verb} {topic} {channel}\n").into_bytes(),
        None => format!("{verb} {topic}\n").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    fn info() -> PeerInfo {
        PeerInfo {
            broadcast_address: "127.0.0.1".into(),
            hostname: "h".into(),
            tcp_port: 4150,
            http_port: 4151,
            version: "1.3.0".into(),
        }
    }

    async fn answer(stream: &mut (impl AsyncWriteExt + Unpin), text: &[u8]) {
        stream.write_all(&(text.len() as u32).to_be_bytes()).await.unwrap();
        stream.write_all(text).await.unwrap();
    }

    /// Proves the bytes on the wire are lookupd's: magic, IDENTIFY with a sized JSON body
    /// carrying the required fields, then command lines; OK and E_* answers are told apart.
    #[tokio::test]
    async fn speaks_lookupd_v1_and_reports_its_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let mut magic = [0u8; 4];
            stream.read_exact(&mut magic).await.unwrap();
            assert_eq!(&magic, b"  V1");
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            assert_eq!(line, "IDENTIFY\n");
            let size = stream.read_u32().await.unwrap() as usize;
            let mut body = vec![0u8; size];
            stream.read_exact(&mut body).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["tcp_port"], 4150);
            assert_eq!(body["broadcast_address"], "127.0.0.1");
            answer(stream.get_mut(), br#"{"tcp_port":4160,"http_port":4161}"#).await;
            let mut seen = Vec::new();
            for reply in [&b"OK"[..], b"OK", b"E_BAD_TOPIC REGISTER topic name 'x!' is not valid"] {
                line.clear();
                stream.read_line(&mut line).await.unwrap();
                seen.push(line.clone());
                answer(stream.get_mut(), reply).await;
            }
            seen
        });
        let (mut peer, own) = LookupPeer::connect(&addr, &info(), 1 << 20).await.unwrap();
        assert!(own.contains("4161"));
        peer.register("t", Some("c")).await.unwrap();
        peer.ping().await.unwrap();
        assert!(matches!(peer.unregister("x!", None).await, Err(PeerError::Refused(_))));
        assert_eq!(server.await.unwrap(), vec!["REGISTER t c\n", "PING\n", "UNREGISTER x!\n"]);
    }

    /// Proves an answer above the bound is refused without reading it.
    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 64];
            let _ = stream.read(&mut head).await;
            stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        assert!(matches!(LookupPeer::connect(&addr, &info(), 1024).await, Err(PeerError::BadAnswer(_))));
    }
}
