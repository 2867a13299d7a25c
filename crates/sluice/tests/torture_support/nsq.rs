//! NSQ workers over raw protocol-V2 sockets that survive the broker being killed: a publisher
//! recording each `PUB` answered `OK`, and a channel consumer that FINs everything it gets and
//! counts a FIN as confirmed only once the broker has answered a later command on the same
//! connection (commands are processed in order; FIN itself has no reply).

use super::Stop;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const FRAME_RESPONSE: i32 = 0;
const FRAME_ERROR: i32 = 1;
const FRAME_MESSAGE: i32 = 2;
/// A message id no broker hands out (partition 65535): FIN of it fails with E_FIN_FAILED, and
/// that error reply marks every FIN sent before it as processed.
const BARRIER_ID: &str = "ffffffffffffffff";
/// Longest frame accepted from the broker (messages here are tiny).
const FRAME_BYTES_MAX: usize = 1 << 20;
/// How long a reply may take before the connection is given up on.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of the consumer's socket, so it checks the stop flag and sends barriers.
const POLL: Duration = Duration::from_millis(100);
/// One message in this many is left unfinished on its first delivery, so redelivery of
/// unfinished messages (after a crash or the message timeout) is exercised on purpose.
const WITHHOLD_EVERY: u64 = 50;
/// Upper bound on messages published in a run.
pub const SENT_MAX: u64 = 2_000_000;

struct Conn {
    stream: TcpStream,
}

impl Conn {
    fn connect(port: u16) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_nodelay(true)?;
        stream.write_all(b"  V2")?;
        Ok(Conn { stream })
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        self.stream.write_all(format!("{line}\n").as_bytes())
    }

    fn with_body(&mut self, line: &str, body: &[u8]) -> io::Result<()> {
        let mut out = format!("{line}\n").into_bytes();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
        self.stream.write_all(&out)
    }

    /// The next frame other than a heartbeat (answered with NOP).
    fn frame(&mut self) -> io::Result<(i32, Vec<u8>)> {
        loop {
            let mut head = [0u8; 8];
            self.stream.read_exact(&mut head)?;
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let kind = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            if !(4..=FRAME_BYTES_MAX).contains(&size) {
                return Err(io::Error::other(format!("bad frame size {size}")));
            }
            let mut data = vec![0u8; size - 4];
            self.stream.read_exact(&mut data)?;
            if kind == FRAME_RESPONSE && data == b"_heartbeat_" {
                self.line("NOP")?;
                continue;
            }
            return Ok((kind, data));
        }
    }

    /// Waits up to `POLL` for a frame to start, then reads it whole (a timeout in the middle
    /// of a frame would lose its head and desynchronise the stream).
    fn poll_frame(&mut self) -> io::Result<Option<(i32, Vec<u8>)>> {
        self.stream.set_read_timeout(Some(POLL))?;
        let started = self.stream.peek(&mut [0u8; 1]);
        self.stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        match started {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => self.frame().map(Some),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn expect_ok(&mut self) -> io::Result<()> {
        match self.frame()? {
            (FRAME_RESPONSE, data) if data == b"OK" => Ok(()),
            (kind, data) => Err(io::Error::other(format!("frame {kind}: {}", String::from_utf8_lossy(&data)))),
        }
    }
}

/// Connects, retrying while the broker restarts; `None` once `stop` is set.
fn connect(port: u16, stop: &Stop) -> Option<Conn> {
    while !stop.is_set() {
        if let Ok(conn) = Conn::connect(port) {
            return Some(conn);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// What the publisher learned.
#[derive(Default)]
pub struct Published {
    pub acked: BTreeSet<u64>,
    pub failed: u64,
}

/// Publishes `<tag>-<n>` one `PUB` at a time until `stop`.
pub fn publish(port: u16, topic: String, tag: &'static str, stop: Stop) -> Published {
    let mut out = Published::default();
    let mut next = 0u64;
    while let Some(mut conn) = connect(port, &stop) {
        while !stop.is_set() && next < SENT_MAX {
            let id = next;
            next += 1;
            let sent = conn.with_body(&format!("PUB {topic}"), super::kafka::value(tag, id).as_bytes());
            match sent.and_then(|()| conn.expect_ok()) {
                Ok(()) => {
                    out.acked.insert(id);
                }
                Err(_) => {
                    out.failed += 1;
                    break;
                }
            }
        }
        if stop.is_set() || next >= SENT_MAX {
            break;
        }
    }
    out
}

/// What the channel consumer saw.
#[derive(Default)]
pub struct Consumed {
    /// Body → deliveries (more than one: redelivered after a crash or timeout).
    pub deliveries: BTreeMap<String, u32>,
    /// Bodies whose FIN the broker is known to have processed.
    pub confirmed: BTreeSet<String>,
    /// Bodies whose FIN was sent on a connection that died before confirming it: the broker
    /// may have processed it (then it never comes again) or not (then it must come again).
    pub in_doubt: BTreeSet<String>,
    /// Bodies deliberately left unfinished on their first delivery: each must come again.
    pub withheld: BTreeSet<String>,
    /// Deliveries with `attempts > 1` as the broker counted them.
    pub redelivered_attempts: u64,
}

/// Consumes `topic`/`channel`, FINishing every message, until `stop`; before returning it
/// waits for the confirmation of the FINs already sent (unless the broker is gone).
pub fn consume(port: u16, topic: String, channel: String, stop: Stop, out: std::sync::Arc<std::sync::Mutex<Consumed>>) {
    while let Some(mut conn) = connect(port, &stop) {
        let mut unconfirmed = Vec::new();
        let _ = session(&mut conn, &topic, &channel, &stop, &out, &mut unconfirmed);
        out.lock().expect("consumed").in_doubt.extend(unconfirmed);
        if stop.is_set() {
            break;
        }
    }
}

/// One connection's life: SUB, RDY, then messages and barriers until an error or `stop`.
fn session(
    conn: &mut Conn,
    topic: &str,
    channel: &str,
    stop: &Stop,
    out: &std::sync::Mutex<Consumed>,
    unconfirmed: &mut Vec<String>,
) -> io::Result<()> {
    conn.line(&format!("SUB {topic} {channel}"))?;
    conn.expect_ok()?;
    conn.line("RDY 100")?;
    // `unconfirmed`: FINs sent and not yet confirmed; `barriers`: how many of them each
    // barrier in flight covers.
    let mut barriers: Vec<usize> = Vec::new();
    let mut last_barrier = Instant::now();
    let mut stopping_since: Option<Instant> = None;
    loop {
        if stop.is_set() {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if barriers.is_empty() && (unconfirmed.is_empty() || since.elapsed() > REPLY_TIMEOUT) {
                return Ok(());
            }
        }
        let due = last_barrier.elapsed() >= POLL || stop.is_set();
        if due && barriers.last().copied().unwrap_or(0) < unconfirmed.len() {
            conn.line(&format!("FIN {BARRIER_ID}"))?;
            barriers.push(unconfirmed.len());
            last_barrier = Instant::now();
        }
        let Some((kind, data)) = conn.poll_frame()? else { continue };
        match kind {
            FRAME_MESSAGE if data.len() >= 26 => {
                let attempts = u16::from_be_bytes([data[8], data[9]]);
                let id = String::from_utf8_lossy(&data[10..26]).to_string();
                let body = String::from_utf8_lossy(&data[26..]).to_string();
                let mut seen = out.lock().expect("consumed");
                *seen.deliveries.entry(body.clone()).or_insert(0) += 1;
                if attempts > 1 {
                    seen.redelivered_attempts += 1;
                }
                if withhold(&body) && seen.withheld.insert(body.clone()) {
                    continue;
                }
                drop(seen);
                conn.line(&format!("FIN {id}"))?;
                unconfirmed.push(body);
            }
            FRAME_ERROR if String::from_utf8_lossy(&data).contains(BARRIER_ID) => {
                let covered = barriers.remove(0);
                let done: Vec<String> = unconfirmed.drain(..covered).collect();
                for b in barriers.iter_mut() {
                    *b -= covered;
                }
                out.lock().expect("consumed").confirmed.extend(done);
            }
            _ => return Err(io::Error::other(format!("frame {kind}: {}", String::from_utf8_lossy(&data)))),
        }
    }
}

/// After a clean restart: publishes `sentinel`, then reads the channel until it arrives.
/// Returns every other body delivered before it (each was finished before the restart, so
/// none should come).
pub fn deliveries_before_sentinel(port: u16, topic: &str, channel: &str, sentinel: &str) -> io::Result<Vec<String>> {
    let mut publisher = Conn::connect(port)?;
    publisher.with_body(&format!("PUB {topic}"), sentinel.as_bytes())?;
    publisher.expect_ok()?;
    let mut conn = Conn::connect(port)?;
    conn.line(&format!("SUB {topic} {channel}"))?;
    conn.expect_ok()?;
    conn.line("RDY 100")?;
    let mut others = Vec::new();
    loop {
        let (kind, data) = conn.frame()?;
        if kind != FRAME_MESSAGE || data.len() < 26 {
            return Err(io::Error::other(format!("frame {kind}: {}", String::from_utf8_lossy(&data))));
        }
        conn.line(&format!("FIN {}", String::from_utf8_lossy(&data[10..26])))?;
        let body = String::from_utf8_lossy(&data[26..]).to_string();
        if body == sentinel {
            return Ok(others);
        }
        others.push(body);
    }
}

/// Whether `body` (`<tag>-<n>`) is one of those left unfinished on first delivery.
fn withhold(body: &str) -> bool {
    body.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n % WITHHOLD_EVERY == 7)
}
