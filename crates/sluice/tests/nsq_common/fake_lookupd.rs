//! A small nsqlookupd of the tests' own (no nsqlookupd package exists for CI): its TCP
//! protocol V1 as `nsqlookupd/lookup_protocol_v1.go` answers it (magic, IDENTIFY with the
//! required fields, REGISTER/UNREGISTER with lookupd's name checks, PING; an `E_*` answer
//! then a closed connection on a fatal error; a closed connection's registrations dropped),
//! and `GET /lookup?topic=` over HTTP from those registrations, so real NSQ clients can find
//! producers through it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What one connected nsqd told this lookupd.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub info: serde_json::Value,
    pub topics: BTreeSet<String>,
    pub channels: BTreeSet<(String, String)>,
    pub pings: u32,
}

#[derive(Default)]
struct State {
    /// Open connections by number, with what each registered.
    peers: BTreeMap<u64, Peer>,
    streams: BTreeMap<u64, TcpStream>,
    identified: u64,
    next: u64,
}

pub struct FakeLookupd {
    pub tcp_port: u16,
    pub http_port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeLookupd {
    pub fn start() -> FakeLookupd {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind fake lookupd tcp");
        let http = TcpListener::bind("127.0.0.1:0").expect("bind fake lookupd http");
        let (tcp_port, http_port) = (port(&tcp), port(&http));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || accept_loop(tcp, &st, move |stream| serve_tcp(stream, &s)));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || accept_loop(http, &st, move |stream| serve_http(stream, &s)));
        FakeLookupd { tcp_port, http_port, state, stop }
    }

    pub fn tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tcp_port)
    }

    pub fn http_addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    /// The connected peers, as registered now.
    pub fn peers(&self) -> Vec<Peer> {
        lock(&self.state).peers.values().cloned().collect()
    }

    /// How many IDENTIFYs this lookupd has accepted since it started.
    pub fn identified(&self) -> u64 {
        lock(&self.state).identified
    }

    /// Closes every connection, as a restarted lookupd would.
    pub fn drop_connections(&self) {
        let mut state = lock(&self.state);
        for stream in state.streams.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        state.streams.clear();
        state.peers.clear();
    }
}

impl Drop for FakeLookupd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.drop_connections();
    }
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("local addr").port()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Accepts until stopped (polling, so the thread ends with the test's lookupd).
fn accept_loop(listener: TcpListener, stop: &AtomicBool, serve: impl Fn(TcpStream) + Send + Clone + 'static) {
    listener.set_nonblocking(true).expect("nonblocking");
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let serve = serve.clone();
                std::thread::spawn(move || serve(stream));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// lookupd's valid topic and channel names (`protocol.IsValidTopicName`).
fn valid_name(name: &str) -> bool {
    let base = name.strip_suffix("#ephemeral").unwrap_or(name);
    !base.is_empty()
        && name.len() <= 64
        && base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn answer(stream: &mut TcpStream, text: &[u8]) -> bool {
    let mut frame = (text.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(text);
    stream.write_all(&frame).is_ok()
}

fn serve_tcp(stream: TcpStream, state: &Arc<Mutex<State>>) {
    let id = {
        let mut s = lock(state);
        s.next += 1;
        let id = s.next;
        if let Ok(clone) = stream.try_clone() {
            s.streams.insert(id, clone);
        }
        id
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut magic = [0u8; 4];
    if reader.read_exact(&mut magic).is_ok() && &magic == b"  V1" {
        while let Some(fatal) = command(&mut reader, &mut writer, id, state) {
            if fatal {
                break;
            }
        }
    }
    // A closed connection's registrations go, as lookupd's IOLoop removes them.
    let mut s = lock(state);
    s.peers.remove(&id);
    s.streams.remove(&id);
}

/// Runs one command; Some(true) when the connection must close, None at end of input.
fn command(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream, id: u64, state: &Mutex<State>) -> Option<bool> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let params: Vec<&str> = line.trim().split(' ').collect();
    let identified = lock(state).peers.contains_key(&id);
    let fatal = |w: &mut TcpStream, e: &str| {
        answer(w, e.as_bytes());
        Some(true)
    };
    match params[0] {
        "PING" => {
            if let Some(peer) = lock(state).peers.get_mut(&id) {
                peer.pings += 1;
            }
            Some(!answer(writer, b"OK"))
        }
        "IDENTIFY" if identified => fatal(writer, "E_INVALID cannot IDENTIFY again"),
        "IDENTIFY" => {
            let mut size = [0u8; 4];
            reader.read_exact(&mut size).ok()?;
            let mut body = vec![0u8; u32::from_be_bytes(size).min(1 << 20) as usize];
            reader.read_exact(&mut body).ok()?;
            let Ok(info) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return fatal(writer, "E_BAD_BODY IDENTIFY failed to decode JSON body");
            };
            let present = |k: &str| info.get(k).is_some_and(|v| v != "" && v != 0 && !v.is_null());
            if !["broadcast_address", "tcp_port", "http_port", "version"].iter().all(|k| present(k)) {
                return fatal(writer, "E_BAD_BODY IDENTIFY missing fields");
            }
            {
                let mut s = lock(state);
                s.identified += 1;
                s.peers.insert(id, Peer { info, ..Peer::default() });
            }
            let own = serde_json::json!({
                "tcp_port": 4160, "http_port": 4161, "version": "1.3.0",
                "broadcast_address": "127.0.0.1", "hostname": "fake-lookupd"
            });
            Some(!answer(writer, own.to_string().as_bytes()))
        }
        verb @ ("REGISTER" | "UNREGISTER") => {
            if !identified {
                return fatal(writer, "E_INVALID client must IDENTIFY");
            }
            let Some(topic) = params.get(1).map(|t| t.to_string()) else {
                return fatal(writer, &format!("E_INVALID {verb} insufficient number of params"));
            };
            let channel = params.get(2).map(|c| c.to_string());
            if !valid_name(&topic) {
                return fatal(writer, &format!("E_BAD_TOPIC {verb} topic name '{topic}' is not valid"));
            }
            if channel.as_deref().is_some_and(|c| !valid_name(c)) {
                return fatal(writer, &format!("E_BAD_CHANNEL {verb} channel name is not valid"));
            }
            let mut s = lock(state);
            let peer = s.peers.get_mut(&id)?;
            match (verb, channel) {
                ("REGISTER", Some(channel)) => {
                    peer.channels.insert((topic.clone(), channel));
                    peer.topics.insert(topic);
                }
                ("REGISTER", None) => {
                    peer.topics.insert(topic);
                }
                (_, Some(channel)) => {
                    peer.channels.remove(&(topic, channel));
                }
                (_, None) => {
                    peer.channels.retain(|(t, _)| *t != topic);
                    peer.topics.remove(&topic);
                }
            }
            drop(s);
            Some(!answer(writer, b"OK"))
        }
        other => fatal(writer, &format!("E_INVALID invalid command {other}")),
    }
}

/// `GET /lookup?topic=T`: the producers that registered T, lookupd's JSON shape.
fn serve_http(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let topic = path.strip_prefix("/lookup?topic=").map(|t| t.split('&').next().unwrap_or(t).to_string());
    let (status, body) = match topic {
        Some(topic) => {
            let s = lock(state);
            let registered: Vec<&Peer> = s.peers.values().filter(|p| p.topics.contains(&topic)).collect();
            if registered.is_empty() {
                ("404 Not Found", serde_json::json!({ "message": "TOPIC_NOT_FOUND" }))
            } else {
                let channels: BTreeSet<&String> = registered
                    .iter()
                    .flat_map(|p| p.channels.iter().filter(|(t, _)| *t == topic).map(|(_, c)| c))
                    .collect();
                let producers: Vec<&serde_json::Value> = registered.iter().map(|p| &p.info).collect();
                ("200 OK", serde_json::json!({ "channels": channels, "producers": producers }))
            }
        }
        None => ("404 Not Found", serde_json::json!({ "message": "NOT_FOUND" })),
    };
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
