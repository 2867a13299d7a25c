//! One client connection: reads commands, runs them through the flat dispatch, pumps
//! messages up to the client's RDY count, sends heartbeats, and writes with a bound on both
//! buffered bytes and time blocked (a client that never reads is disconnected).

use crate::codec::{self, BodyLimits, FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE};
use crate::commands;
use crate::compress::{Deflater, Inflater};
use crate::error::NsqError;
use crate::tls_upgrade::NsqStream;
use crate::NsqConfig;
use bytes::BytesMut;
use sluice_broker::channel::{Channel, Channels, ClientInfo, Delivery};
use sluice_broker::clients::ClientGuard;
use sluice_broker::metrics::RequestMetrics;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Init,
    Subscribed,
    Closing,
}

/// What IDENTIFY negotiated.
#[derive(Debug, Clone)]
pub struct Identity {
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub heartbeat_interval: Option<Duration>,
    pub msg_timeout: Duration,
    pub output_buffer_size: usize,
    pub sample_rate: i32,
    pub deflate_level: Option<u32>,
    pub snappy: bool,
}

pub struct Subscription {
    pub channel: Arc<Channel>,
    pub client: Arc<ClientInfo>,
}

/// A stream compression to switch to once the IDENTIFY response is on the wire.
pub struct Upgrade {
    pub deflater: Deflater,
    pub inflater: Inflater,
}

pub struct Conn {
    pub id: u64,
    pub channels: Arc<Channels>,
    pub config: Arc<NsqConfig>,
    pub remote: SocketAddr,
    pub state: ConnState,
    pub identified: bool,
    pub identity: Identity,
    pub sub: Option<Subscription>,
    /// Plain frames waiting to be written (bounded by the output buffer size plus one batch
    /// of messages up to RDY; flushed before more is read).
    out: Vec<u8>,
    pub upgrade: Option<Upgrade>,
    deflater: Deflater,
    inflater: Inflater,
    rng: u64,
    /// This connection's entry in the broker's client registry (listed by the admin API).
    pub client: ClientGuard,
    /// Latency per verb, indexed by `commands::verb_index` (`sluice_request_duration_seconds`).
    requests: Arc<RequestMetrics>,
    /// The connection runs over TLS (nsqd's `--tls-required` checks it).
    pub tls: bool,
    /// IDENTIFY negotiated TLS: upgrade once its response is on the wire.
    pub tls_pending: bool,
    /// The TLS client certificate's subject common name, or empty (sent to the auth server).
    pub common_name: String,
    /// Negotiated TLS version and cipher suite (`/stats`), once upgraded.
    pub tls_details: Option<(String, String)>,
    /// What AUTH granted, with the secret to ask again once it expires.
    pub auth: Option<crate::auth::Session>,
}

impl Conn {
    pub fn new(
        channels: Arc<Channels>,
        config: Arc<NsqConfig>,
        remote: SocketAddr,
        client: ClientGuard,
        requests: Arc<RequestMetrics>,
    ) -> Conn {
        // One id space for every protocol: the admin API lists clients by it.
        let id = client.client().id;
        let identity = Identity {
            client_id: remote.ip().to_string(),
            hostname: remote.ip().to_string(),
            user_agent: String::new(),
            heartbeat_interval: Some(config.heartbeat_interval),
            msg_timeout: config.msg_timeout,
            output_buffer_size: config.output_buffer_size,
            sample_rate: 0,
            deflate_level: None,
            snappy: false,
        };
        Conn {
            id,
            channels,
            config,
            remote,
            state: ConnState::Init,
            identified: false,
            identity,
            sub: None,
            out: Vec::new(),
            upgrade: None,
            deflater: Deflater::Plain,
            inflater: Inflater::Plain,
            rng: id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            client,
            requests,
            tls: false,
            tls_pending: false,
            common_name: String::new(),
            tls_details: None,
            auth: None,
        }
    }

    pub fn respond(&mut self, data: &[u8]) {
        codec::put_frame(&mut self.out, FRAME_TYPE_RESPONSE, data);
    }

    fn limits(&self) -> BodyLimits {
        BodyLimits { msg: self.config.max_msg_size, body: self.config.max_body_size }
    }

    /// Decompressed bytes held at once: the largest complete command (line, size, body).
    /// Decoding stops there until commands are run, so a compression bomb can't grow memory.
    fn plain_limit(&self) -> usize {
        codec::LINE_LEN_MAX + 5 + self.config.max_msg_size.max(self.config.max_body_size) as usize
    }

    pub async fn run(mut self, socket: TcpStream, mut stop: watch::Receiver<bool>) {
        tracing::info!(client = self.id, remote = %self.remote, "nsq client connected");
        let mut stream = NsqStream::Plain(socket);
        let mut raw = BytesMut::with_capacity(READ_CHUNK);
        let mut plain = BytesMut::new();
        let mut last_read = Instant::now();
        let mut heartbeat_interval = self.identity.heartbeat_interval;
        let mut next_heartbeat = self.identity.heartbeat_interval.map(|hb| Instant::now() + hb);
        loop {
            if let Err(reason) = self.process(&mut raw, &mut plain, &mut stream).await {
                tracing::debug!(client = self.id, remote = %self.remote, reason, "nsq connection closing");
                break;
            }
            if self.flush(&mut stream).await.is_err() {
                break;
            }
            // IDENTIFY may have changed or disabled the heartbeat interval.
            if heartbeat_interval != self.identity.heartbeat_interval {
                heartbeat_interval = self.identity.heartbeat_interval;
                next_heartbeat = heartbeat_interval.map(|hb| Instant::now() + hb);
            }
            let read_deadline = self.identity.heartbeat_interval.map(|hb| last_read + hb * 2);
            let pump = self
                .sub
                .as_ref()
                .filter(|_| self.state == ConnState::Subscribed)
                .map(|s| (Arc::clone(&s.channel), Arc::clone(&s.client)));
            let msg_timeout = self.identity.msg_timeout;
            tokio::select! {
                _ = stop.changed() => break,
                read = stream.read_buf(&mut raw) => match read {
                    Ok(0) | Err(_) => break,
                    // `process` decodes it (through the negotiated compression) next turn.
                    Ok(_) => last_read = Instant::now(),
                },
                delivery = next_delivery(pump.clone(), msg_timeout) => match delivery {
                    Some(d) => self.send_messages(d),
                    None => break,
                },
                _ = sleep_until_opt(next_heartbeat) => {
                    self.respond(b"_heartbeat_");
                    next_heartbeat = self.identity.heartbeat_interval.map(|hb| Instant::now() + hb);
                }
                _ = sleep_until_opt(read_deadline) => {
                    tracing::debug!(client = self.id, "no data within two heartbeat intervals");
                    break;
                }
            }
        }
        let _ = self.flush(&mut stream).await;
        let (topic, channel) = self.sub.as_ref().map_or(("", ""), |s| (&*s.channel.topic, &*s.channel.name));
        // What it was sent and answered: a consumer that "got nothing" is traced to its RDY.
        let figures = self.sub.as_ref().map(|s| {
            let c = &s.client;
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            (
                c.ready_count.load(Ordering::Relaxed),
                load(&c.message_count),
                load(&c.finish_count),
                load(&c.requeue_count),
            )
        });
        let (rdy, sent, finished, requeued) = figures.unwrap_or_default();
        tracing::info!(client = self.id, remote = %self.remote, client_id = %self.identity.client_id, topic, channel,
            rdy, sent, finished, requeued, "nsq client disconnected");
        if let Some(sub) = self.sub.take() {
            self.channels.client_left(&sub.channel, sub.client.id);
        }
    }

    /// Runs every complete command in `plain`. `Err` closes the connection.
    async fn process(
        &mut self,
        raw: &mut BytesMut,
        plain: &mut BytesMut,
        stream: &mut NsqStream,
    ) -> Result<(), &'static str> {
        loop {
            let command = match codec::decode(plain, self.limits()) {
                Ok(Some(command)) => command,
                Ok(None) if raw.is_empty() || plain.len() >= self.plain_limit() => return Ok(()),
                Ok(None) => {
                    // Decode more of what was read: bounded, so compressed input is expanded
                    // one command's worth at a time.
                    let before = plain.len();
                    self.inflater.feed(raw, plain, self.plain_limit()).map_err(|e| {
                        tracing::debug!(client = self.id, error = e.0, "corrupt compressed stream");
                        "corrupt compressed stream"
                    })?;
                    if plain.len() == before {
                        return Ok(());
                    }
                    continue;
                }
                Err(codec::DecodeError::LineTooLong) => return Err("command line too long"),
            };
            let verb = commands::verb_index(command.verb());
            let started = std::time::Instant::now();
            let result = commands::exec(self, command).await;
            self.requests.observe(verb, started.elapsed());
            self.client.client().count_request();
            if let Err(e) = result {
                self.send_error(&e);
                if e.fatal {
                    let _ = self.flush(stream).await;
                    return Err("fatal client error");
                }
            }
            if self.tls_pending {
                self.upgrade_tls(raw, plain, stream).await?;
            }
            if let Some(upgrade) = self.upgrade.take() {
                // The IDENTIFY response goes out uncompressed; everything after is compressed,
                // including bytes the client already sent behind IDENTIFY.
                self.flush(stream).await.map_err(|_| "write failed")?;
                self.deflater = upgrade.deflater;
                self.inflater = upgrade.inflater;
                let mut rest = plain.split();
                rest.extend_from_slice(raw);
                *raw = rest;
                self.respond(b"OK");
            }
        }
    }

    fn send_error(&mut self, e: &NsqError) {
        codec::put_frame(&mut self.out, FRAME_TYPE_ERROR, e.text().as_bytes());
        if !e.fatal {
            tracing::debug!(client = self.id, error = %e.text(), "nsq client error");
        }
    }

    /// Writes the first delivery and whatever else is ready right away, up to the client's
    /// RDY count and output buffer size; the caller flushes.
    fn send_messages(&mut self, first: Delivery) {
        let Some(sub) = self.sub.as_ref() else { return };
        let (channel, client) = (Arc::clone(&sub.channel), Arc::clone(&sub.client));
        let mut next = Some(first);
        while let Some(d) = next.take() {
            if self.sampled_out() {
                let _ = channel.fin(d.id, &client);
            } else {
                codec::put_message(&mut self.out, d.timestamp_ns, d.attempts, &d.id.encode(), &d.body);
            }
            let has_room = client.in_flight_count.load(Ordering::Relaxed) < client.ready_count.load(Ordering::Relaxed);
            if has_room && self.out.len() < self.identity.output_buffer_size {
                // Only what is already read ahead: the log is read off the runtime, in `next`.
                next = channel.pop_ready(&client, self.identity.msg_timeout);
            }
        }
    }

    /// nsqd's `sample_rate`: deliver about that percentage of messages to this client.
    fn sampled_out(&mut self) -> bool {
        if self.identity.sample_rate <= 0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) as i32 >= self.identity.sample_rate
    }

    /// nsqd's `UpgradeTLS`: the IDENTIFY response goes out in plain text, the handshake runs
    /// over the same stream (fed first with whatever the client already sent behind
    /// IDENTIFY), and an `OK` over TLS ends the upgrade. A failed handshake closes this
    /// connection only.
    async fn upgrade_tls(
        &mut self,
        raw: &mut BytesMut,
        plain: &mut BytesMut,
        stream: &mut NsqStream,
    ) -> Result<(), &'static str> {
        self.tls_pending = false;
        let Some(tls) = self.config.tls.clone() else { return Err("TLS not configured") };
        self.flush(stream).await.map_err(|_| "write failed")?;
        // Before TLS the stream is never compressed, so what was read is still raw bytes.
        let mut early = plain.split();
        early.extend_from_slice(raw);
        raw.clear();
        if let Err(e) = stream.upgrade(&tls, early.freeze()).await {
            tracing::info!(client = self.id, remote = %self.remote, error = %e, "nsq TLS handshake failed");
            return Err("TLS handshake failed");
        }
        self.tls = true;
        self.tls_details = stream.tls_details();
        self.common_name = stream.peer_certificate().and_then(crate::auth::subject_common_name).unwrap_or_default();
        tracing::debug!(client = self.id, remote = %self.remote, common_name = %self.common_name, "nsq connection upgraded to TLS");
        self.respond(b"OK");
        Ok(())
    }

    async fn flush(&mut self, wr: &mut NsqStream) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut wire = Vec::with_capacity(self.out.len());
        self.deflater.encode(&self.out, &mut wire)?;
        self.out.clear();
        // The flush matters over TLS: rustls may still hold the last records when `write_all`
        // returns (the socket was full), and nothing else would send them.
        let write = async {
            wr.write_all(&wire).await?;
            wr.flush().await
        };
        match tokio::time::timeout(self.config.write_timeout, write).await {
            Ok(result) => result,
            Err(_) => {
                tracing::info!(client = self.id, remote = %self.remote, "nsq client not reading; disconnecting");
                Err(std::io::ErrorKind::TimedOut.into())
            }
        }
    }
}

async fn next_delivery(pump: Option<(Arc<Channel>, Arc<ClientInfo>)>, msg_timeout: Duration) -> Option<Delivery> {
    match pump {
        Some((channel, client)) => channel.next(&client, msg_timeout).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
