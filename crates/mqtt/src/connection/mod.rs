//! One task per client: reads packets (bounded by the packet limit), answers them through an
//! ordered reply queue drained by a writer task, delivers subscribed records, and closes the
//! connection on keepalive expiry, a protocol violation or a malformed packet, with the
//! v5 reason code (CONNACK before the CONNECT is accepted, DISCONNECT after).

use crate::codec::{
    decode_packet, encode_connack, encode_disconnect, encode_pingresp, encode_publish, encode_simple, encode_sub_acks,
    fixed_header, kind, peek_protocol_level, ConnAck, Connect, DecodeError, OutgoingPublish, Packet, Publish, QoS,
    Reason, Subscribe, Version, Will,
};
mod persistence;
mod reading;
mod resend;
mod will;
mod writer;

use crate::publish::Refusal;
use crate::retained::Retained;
use crate::session::{SessionGuard, Sessions};
use crate::session_store::{SessionStore, CHECKPOINT_INTERVAL};
use crate::subscription::{Ack, Delivery, DeliveryReceiver, Options, Subscriptions, DELIVERY_QUEUE};
use crate::MqttConfig;
use bytes::BytesMut;
use persistence::Persistent;
use sluice_broker::channel::Channels;
use sluice_broker::clients::ClientGuard;
use sluice_broker::metrics::RequestMetrics;
use sluice_broker::Broker;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use will::publish_will;
use writer::{write_replies, Outcome, Reply};

/// v5 DISCONNECT reason 0x04: the client leaves and asks for its will to be published.
const DISCONNECT_WITH_WILL: u8 = 0x04;
/// Replies queued beyond the publishes waiting for durability (SUBACKs, PINGRESPs, deliveries).
const REPLY_QUEUE_EXTRA: usize = 64;
/// Topic aliases a v5 client may set (CONNACK's Topic Alias Maximum): each holds one topic
/// name, so this bounds their memory per connection.
pub(crate) const TOPIC_ALIAS_MAX: u16 = 64;

/// A delivery waiting for the client's acknowledgement.
struct InFlight {
    /// Its place in the log (none for a retained message, or once PUBREC took it for QoS 2).
    ack: Option<Ack>,
    qos: QoS,
    /// When it was written, among the connection's deliveries.
    sent: u64,
}

/// Why the read loop ended.
enum Ending {
    /// The client closed, sent DISCONNECT, or the writer stopped: nothing more to send.
    Quiet,
    /// Close with this reason (v5 DISCONNECT, or CONNACK if not yet connected).
    Reason(Reason, String),
}

/// What every connection of the listener shares.
pub(crate) struct Shared {
    pub broker: Arc<Broker>,
    /// NSQ's channels: shared subscriptions are channels of their log topic.
    pub channels: Arc<Channels>,
    pub config: Arc<MqttConfig>,
    pub sessions: Arc<Sessions>,
    pub retained: Arc<Retained>,
    pub store: Arc<SessionStore>,
    /// Latency per packet type (`sluice_request_duration_seconds{protocol="mqtt"}`).
    pub requests: Arc<RequestMetrics>,
    pub gauges: crate::counts::MqttGauges,
}

/// The `request` label of each packet type a client sends, by its type number.
pub(crate) const PACKET_NAMES: [(usize, &str); 11] = [
    (kind::CONNECT as usize, "CONNECT"),
    (kind::PUBLISH as usize, "PUBLISH"),
    (kind::PUBACK as usize, "PUBACK"),
    (kind::PUBREC as usize, "PUBREC"),
    (kind::PUBREL as usize, "PUBREL"),
    (kind::PUBCOMP as usize, "PUBCOMP"),
    (kind::SUBSCRIBE as usize, "SUBSCRIBE"),
    (kind::UNSUBSCRIBE as usize, "UNSUBSCRIBE"),
    (kind::PINGREQ as usize, "PINGREQ"),
    (kind::DISCONNECT as usize, "DISCONNECT"),
    (kind::AUTH as usize, "AUTH"),
];

pub(crate) struct Conn {
    broker: Arc<Broker>,
    config: Arc<MqttConfig>,
    sessions: Arc<Sessions>,
    retained: Arc<Retained>,
    store: Arc<SessionStore>,
    requests: Arc<RequestMetrics>,
    /// When the packet being handled was read: a QoS 1/2 PUBLISH is timed to its durability.
    packet_started: std::time::Instant,
    remote: SocketAddr,
    client: ClientGuard,
    version: Version,
    /// Set once a CONNECT was accepted.
    session: Option<SessionGuard>,
    /// The will published when the connection ends other than by a normal DISCONNECT (boxed:
    /// few clients set one, and inline it would size every connection's task).
    will: Option<Box<Will>>,
    /// 1.5 × the client's keepalive; none when it asked for 0.
    keep_alive: Option<Duration>,
    replies: mpsc::Sender<Reply>,
    /// QoS 2 packet ids whose PUBLISH was taken and whose PUBREL has not come yet: a resent
    /// PUBLISH with one of them is answered again, not appended again.
    qos2_received: HashSet<u16>,
    /// QoS 1 publishes not yet acknowledged plus QoS 2 ones not yet released: a v5 client
    /// past the Receive Maximum CONNACK announced is disconnected (0x93).
    unacknowledged: Arc<AtomicUsize>,
    /// QoS 1 and 2 deliveries waiting for the client's PUBACK (PUBCOMP), with their place in
    /// the log (taken at PUBREC for QoS 2).
    inflight: HashMap<u16, InFlight>,
    /// Counts deliveries written, for the order of `inflight` (a session resends in it).
    sent_count: u64,
    /// A resumed session's PUBRELs and unacknowledged PUBLISHes, sent right after CONNACK.
    resends: Vec<Vec<u8>>,
    /// QoS 2 deliveries the client acknowledged with PUBREC, waiting for its PUBCOMP.
    released: HashSet<u16>,
    inflight_max: usize,
    next_packet_id: u16,
    /// The largest packet the client accepts (v5 Maximum Packet Size).
    client_packet_bytes_max: usize,
    subscriptions: Subscriptions,
    /// Set for a session that outlives its connection (3.1.1 clean session 0, v5 session
    /// expiry above 0): its client id and expiry.
    persistent: Option<Persistent>,
    /// Whether a stored session was resumed (a v5 one with expiry 0 is removed at the end).
    resumed: bool,
    /// The client id in use (assigned or the client's), once connected.
    client_id: String,
    /// v5 topic aliases the client set in its PUBLISHes (1 to `TOPIC_ALIAS_MAX`).
    topic_aliases: HashMap<u16, String>,
    /// `sluice_mqtt_sessions`: up at CONNECT, down when the connection ends.
    sessions_gauge: sluice_broker::metrics::IntGauge,
}

impl Conn {
    /// Serves one client until it leaves, breaks the protocol or the broker stops. The
    /// transport is the caller's: a TCP socket's halves, or a WebSocket bridged to bytes.
    pub async fn serve<R, W>(
        (mut reader, writer): (R, W),
        shared: &Shared,
        remote: SocketAddr,
        client: ClientGuard,
        stop: watch::Receiver<bool>,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (broker, config) = (Arc::clone(&shared.broker), Arc::clone(&shared.config));
        let (sessions, retained) = (Arc::clone(&shared.sessions), Arc::clone(&shared.retained));
        let (store, requests) = (Arc::clone(&shared.store), Arc::clone(&shared.requests));
        let (replies, queued) = mpsc::channel(usize::from(config.receive_maximum) + REPLY_QUEUE_EXTRA);
        let writer = tokio::spawn(write_replies(writer, queued, config.write_timeout));
        let (deliveries, delivered) = mpsc::channel(DELIVERY_QUEUE);
        let mut conn = Conn {
            subscriptions: Subscriptions::new(
                Arc::clone(&broker),
                Arc::clone(&shared.channels),
                (client.client().id, remote),
                deliveries,
                config.subscriptions_max,
                config.mapping.clone(),
                shared.gauges.subscriptions.clone(),
            ),
            inflight_max: usize::from(config.inflight_max),
            broker,
            sessions,
            retained,
            store,
            requests,
            packet_started: std::time::Instant::now(),
            remote,
            client,
            version: Version::V311,
            session: None,
            will: None,
            keep_alive: None,
            replies,
            qos2_received: HashSet::new(),
            unacknowledged: Arc::default(),
            inflight: HashMap::new(),
            sent_count: 0,
            resends: Vec::new(),
            released: HashSet::new(),
            persistent: None,
            resumed: false,
            client_id: String::new(),
            topic_aliases: HashMap::new(),
            sessions_gauge: shared.gauges.sessions.clone(),
            next_packet_id: 1,
            client_packet_bytes_max: usize::MAX,
            config,
        };
        let ending = conn.read_loop(&mut reader, delivered, stop).await;
        let connected = conn.session.is_some();
        if let Ending::Reason(reason, message) = ending {
            tracing::debug!(remote = %conn.remote, reason = reason.code(), message, "closing mqtt connection");
            if conn.session.is_some() && conn.version == Version::V5 {
                let _ = conn.replies.send(Reply::Now(Outcome::SendThenClose(encode_disconnect(reason)))).await;
            }
        }
        conn.end_session().await;
        if let Some(will) = conn.will.take() {
            publish_will(&conn.broker, &conn.retained, &conn.config, *will, conn.client_id.clone(), conn.remote);
        }
        let write_timeout = conn.config.write_timeout;
        drop(conn);
        if connected {
            shared.gauges.sessions.dec();
        }
        // The writer sends what is queued (acknowledgements of durable publishes included).
        let _ = tokio::time::timeout(write_timeout, writer).await;
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        mut delivered: DeliveryReceiver,
        mut stop: watch::Receiver<bool>,
    ) -> Ending {
        // Empty, and holding no memory, between packets (`reading.rs`).
        let mut buf = BytesMut::new();
        let mut deadline = Instant::now() + self.config.connect_timeout;
        let mut taken_over: Option<Arc<tokio::sync::Notify>> = None;
        let mut checkpoints = tokio::time::interval(CHECKPOINT_INTERVAL);
        // Topics and partitions created later are read by the filters that cover them.
        let mut topology = self.broker.subscribe_topology();
        loop {
            loop {
                let frame = match fixed_header(&buf, self.config.packet_bytes_max) {
                    // The first packet must be CONNECT (§3.1): anything else closes at once,
                    // without waiting for a body it announces.
                    Ok(Some(header)) if self.session.is_none() && header.kind() != kind::CONNECT => {
                        return Ending::Quiet;
                    }
                    Ok(Some(header)) if buf.len() >= header.frame_len() => buf.split_to(header.frame_len()).freeze(),
                    Ok(_) => break,
                    Err(e) => return self.refuse(&buf, e).await,
                };
                self.client.client().count_request();
                let packet = match decode_packet(frame.clone(), self.version) {
                    Ok(packet) => packet,
                    Err(e) => return self.refuse(&frame, e).await,
                };
                self.packet_started = std::time::Instant::now();
                let kind = usize::from(frame[0] >> 4);
                let timed_later = matches!(&packet, Packet::Publish(p) if p.qos != QoS::AtMostOnce);
                let ending = self.handle(packet).await;
                if !timed_later {
                    self.requests.observe(kind, self.packet_started.elapsed());
                }
                if let Some(ending) = ending {
                    return ending;
                }
                if taken_over.is_none() {
                    taken_over = self.session.as_ref().map(|s| Arc::clone(&s.taken_over));
                }
                deadline = match self.keep_alive {
                    Some(keep_alive) => Instant::now() + keep_alive,
                    None if self.session.is_some() => Instant::now() + Duration::from_secs(365 * 24 * 3600),
                    None => deadline,
                };
            }
            if buf.is_empty() {
                // Every packet was taken: an idle connection keeps no buffer.
                buf = BytesMut::new();
            }
            let can_deliver = self.session.is_some() && self.inflight.len() < self.inflight_max;
            tokio::select! {
                read = reading::read_some(reader, &mut buf) => match read {
                    Ok(0) | Err(_) => return Ending::Quiet,
                    Ok(_) => {}
                },
                Some(delivery) = delivered.recv(), if can_deliver => self.deliver(*delivery).await,
                _ = tokio::time::sleep_until(deadline) => {
                    let what = if self.session.is_some() { "keepalive expired" } else { "no CONNECT in time" };
                    return Ending::Reason(Reason::KeepAliveTimeout, what.into());
                }
                _ = stop.changed() => return Ending::Reason(Reason::ServerShuttingDown, "broker stopping".into()),
                _ = taken_over_signal(&taken_over) => {
                    return Ending::Reason(Reason::SessionTakenOver, "client id connected again".into());
                }
                _ = self.replies.closed() => return Ending::Quiet,
                _ = checkpoints.tick(), if self.persistent.is_some() => {
                    self.checkpoint(0).await;
                }
                Ok(()) = topology.changed() => self.subscriptions.refresh(),
            }
        }
    }

    /// A packet that cannot be taken: a CONNECT is answered with a refusing CONNACK (in the
    /// version it asked for, when readable), anything later with DISCONNECT.
    async fn refuse(&mut self, frame: &[u8], error: DecodeError) -> Ending {
        tracing::debug!(remote = %self.remote, error = %error, "bad mqtt packet");
        if self.session.is_some() {
            return Ending::Reason(error.reason, error.message);
        }
        let is_connect = frame.first().is_some_and(|b| b >> 4 == kind::CONNECT);
        let version = match peek_protocol_level(frame) {
            Some(5) => Some(Version::V5),
            // 3.1.1 can only say "unacceptable protocol version" or "identifier rejected";
            // for anything else the spec says close without a CONNACK.
            Some(_)
                if matches!(error.reason, Reason::UnsupportedProtocolVersion | Reason::ClientIdentifierNotValid) =>
            {
                Some(Version::V311)
            }
            _ => None,
        };
        if let (true, Some(version)) = (is_connect, version) {
            let ack = ConnAck { reason: Some(error.reason), ..ConnAck::default() };
            let _ = self.replies.send(Reply::Now(Outcome::SendThenClose(encode_connack(version, &ack)))).await;
        }
        Ending::Quiet
    }

    /// One flat match from packet to handler; `Some` ends the connection.
    async fn handle(&mut self, packet: Packet) -> Option<Ending> {
        if self.session.is_none() && !matches!(packet, Packet::Connect(_)) {
            return Some(Ending::Quiet);
        }
        match packet {
            // Boxed, as SUBSCRIBE's: their futures are the largest, and inline they would size
            // every connection's task, idle or not, for packets each client sends rarely.
            Packet::Connect(connect) => return Box::pin(self.connect(*connect)).await,
            Packet::Publish(publish) => return self.publish(publish).await,
            Packet::PubAck { packet_id } if !self.released.contains(&packet_id) => {
                if let Some(InFlight { ack: Some(ack), .. }) = self.inflight.remove(&packet_id) {
                    ack.done();
                }
            }
            Packet::PubAck { .. } => {}
            // QoS 2 delivery: PUBREC completes the delivery (the client holds the message now)
            // and is answered with PUBREL; the id stays taken until PUBCOMP.
            Packet::PubRec { packet_id } => {
                let reason = match self.inflight.get_mut(&packet_id) {
                    Some(entry) if self.released.insert(packet_id) => {
                        if let Some(ack) = entry.ack.take() {
                            ack.done();
                        }
                        Reason::Success
                    }
                    Some(_) => Reason::Success,
                    None => Reason::PacketIdentifierNotFound,
                };
                self.reply(encode_simple(kind::PUBREL, self.version, packet_id, reason)).await
            }
            Packet::PubComp { packet_id } => {
                if self.released.remove(&packet_id) {
                    self.inflight.remove(&packet_id);
                }
            }
            Packet::PubRel { packet_id } => {
                let reason = match self.qos2_received.remove(&packet_id) {
                    true => {
                        self.unacknowledged.fetch_sub(1, Ordering::Relaxed);
                        Reason::Success
                    }
                    false => Reason::PacketIdentifierNotFound,
                };
                self.reply(encode_simple(kind::PUBCOMP, self.version, packet_id, reason)).await;
            }
            Packet::Subscribe(subscribe) => return Box::pin(self.subscribe(subscribe)).await,
            Packet::Unsubscribe { packet_id, filters } => {
                let codes: Vec<u8> = filters
                    .iter()
                    .map(|f| match self.subscriptions.unsubscribe(f) {
                        true => Reason::Success.code(),
                        false => Reason::NoSubscriptionExisted.code(),
                    })
                    .collect();
                self.checkpoint(0).await;
                self.reply(encode_sub_acks(kind::UNSUBACK, self.version, packet_id, &codes)).await;
            }
            Packet::PingReq => self.reply(encode_pingresp()).await,
            Packet::Disconnect { reason, .. } => {
                // v5 0x04 "disconnect with will message" keeps the will; any other drops it.
                if reason != DISCONNECT_WITH_WILL {
                    self.will = None;
                }
                return Some(Ending::Quiet);
            }
            Packet::Auth => {
                return Some(Ending::Reason(Reason::ProtocolError, "AUTH without an authentication method".into()))
            }
        }
        None
    }

    async fn connect(&mut self, connect: Connect) -> Option<Ending> {
        if self.session.is_some() {
            return Some(Ending::Reason(Reason::ProtocolError, "second CONNECT".into()));
        }
        self.version = connect.version;
        let refuse = |reason: Reason| {
            let ack = ConnAck { reason: Some(reason), ..ConnAck::default() };
            Reply::Now(Outcome::SendThenClose(encode_connack(connect.version, &ack)))
        };
        if connect.properties.authentication_method.is_some() {
            let _ = self.replies.send(refuse(Reason::BadAuthenticationMethod)).await;
            return Some(Ending::Quiet);
        }
        let mut assigned_client_id = None;
        let client_id = match connect.client_id.is_empty() {
            // 3.1.1 §3.1.3.1: an empty id needs a clean session.
            true if connect.version == Version::V311 && !connect.clean_start => {
                let _ = self.replies.send(refuse(Reason::ClientIdentifierNotValid)).await;
                return Some(Ending::Quiet);
            }
            true => assigned_client_id.insert(self.sessions.assign_id()).clone(),
            false => connect.client_id.clone(),
        };
        if connect.keep_alive_secs > 0 {
            // §3.1.2.10 (3.1.1) / §3.1.2.10 (5.0): one and a half keepalive periods.
            self.keep_alive = Some(Duration::from_millis(u64::from(connect.keep_alive_secs) * 1500));
        }
        if let Some(n) = connect.properties.receive_maximum {
            self.inflight_max = self.inflight_max.min(usize::from(n));
        }
        if let Some(n) = connect.properties.maximum_packet_size {
            self.client_packet_bytes_max = n as usize;
        }
        self.subscriptions.set_client(&client_id, self.inflight_max);
        self.will = connect.will.clone().map(Box::new);
        self.client.client().set_client_id_once(&client_id);
        self.session = Some(self.sessions.register(&client_id));
        self.sessions_gauge.inc();
        tracing::debug!(remote = %self.remote, client_id, version = ?self.version, "mqtt client connected");
        let session_present = match self.start_session(&connect, &client_id).await {
            Ok(present) => present,
            Err(reason) => {
                self.will = None;
                let _ = self.replies.send(refuse(reason)).await;
                return Some(Ending::Quiet);
            }
        };
        let ack = ConnAck {
            session_present,
            reason: None,
            assigned_client_id,
            receive_maximum: self.config.receive_maximum,
            maximum_packet_size: self.config.packet_bytes_max as u32,
            topic_alias_maximum: TOPIC_ALIAS_MAX,
        };
        self.reply(encode_connack(self.version, &ack)).await;
        // §4.4: a resumed session's unacknowledged packets go first, before anything new.
        for bytes in std::mem::take(&mut self.resends) {
            self.reply(bytes).await;
        }
        None
    }

    async fn publish(&mut self, mut publish: Publish) -> Option<Ending> {
        if let Some(alias) = publish.properties.topic_alias {
            // §3.3.2.3.4: 1 to the Topic Alias Maximum CONNACK announced; a topic sets (or
            // replaces) the alias, an empty one uses it.
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                return Some(Ending::Reason(Reason::TopicAliasInvalid, format!("topic alias {alias}")));
            }
            if publish.topic.is_empty() {
                match self.topic_aliases.get(&alias) {
                    Some(topic) => publish.topic = topic.clone(),
                    None => return Some(Ending::Reason(Reason::ProtocolError, format!("topic alias {alias} not set"))),
                }
            } else {
                self.topic_aliases.insert(alias, publish.topic.clone());
            }
        }
        let packet_id = publish.packet_id.unwrap_or(0);
        if publish.qos == QoS::ExactlyOnce && self.qos2_received.contains(&packet_id) {
            // A resend of a PUBLISH already taken: answer again, append nothing.
            self.reply(encode_simple(kind::PUBREC, self.version, packet_id, Reason::Success)).await;
            return None;
        }
        if publish.qos != QoS::AtMostOnce {
            let unacknowledged = self.unacknowledged.fetch_add(1, Ordering::Relaxed);
            // 3.1.1 has no such limit: there the reply queue's bound only slows the client.
            if self.version == Version::V5 && unacknowledged >= usize::from(self.config.receive_maximum) {
                return Some(Ending::Reason(Reason::ReceiveMaximumExceeded, "past Receive Maximum".into()));
            }
        }
        let appended =
            crate::publish::append(&self.broker, &self.retained, &self.config.mapping, &publish, &self.client_id).await;
        let (ack_kind, version) = match publish.qos {
            QoS::AtMostOnce => {
                let remote = self.remote;
                match appended {
                    // Nobody waits for it, but a retained message is taken in once durable.
                    Ok(pending) if publish.retain => {
                        tokio::spawn(async move {
                            if let Err(e) = pending.wait().await {
                                tracing::warn!(%remote, error = %e, "mqtt QoS 0 retained publish failed");
                            }
                        });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(%remote, topic = publish.topic, error = %e, "mqtt QoS 0 publish dropped"),
                }
                return None;
            }
            QoS::AtLeastOnce => (kind::PUBACK, self.version),
            QoS::ExactlyOnce => {
                self.qos2_received.insert(packet_id);
                (kind::PUBREC, self.version)
            }
        };
        let (remote, topic) = (self.remote, publish.topic);
        let failed = move |e: Refusal| {
            tracing::warn!(%remote, topic, error = %e, "mqtt publish failed");
            match version {
                // A v5 client is told; a QoS 2 flow then ends, and its id must not be held.
                Version::V5 if ack_kind == kind::PUBACK => {
                    Outcome::Send(encode_simple(ack_kind, version, packet_id, e.reason()))
                }
                Version::V5 => Outcome::SendThenClose(encode_simple(ack_kind, version, packet_id, e.reason())),
                // 3.1.1 has no negative acknowledgement: the connection closes unanswered.
                Version::V311 => Outcome::Close,
            }
        };
        // A QoS 1 publish is acknowledged (for Receive Maximum) once its PUBACK is decided; a
        // QoS 2 one when its PUBREL comes.
        let unacknowledged = Arc::clone(&self.unacknowledged);
        let acknowledged = move || {
            if ack_kind == kind::PUBACK {
                unacknowledged.fetch_sub(1, Ordering::Relaxed);
            }
        };
        let reply = match appended {
            Err(e) => {
                acknowledged();
                Reply::Now(failed(e))
            }
            Ok(pending) => {
                let (requests, started) = (Arc::clone(&self.requests), self.packet_started);
                Reply::Later(tokio::spawn(async move {
                    let outcome = match pending.wait().await {
                        Ok(()) => Outcome::Send(encode_simple(ack_kind, version, packet_id, Reason::Success)),
                        Err(e) => failed(e),
                    };
                    acknowledged();
                    requests.observe(usize::from(kind::PUBLISH), started.elapsed());
                    outcome
                }))
            }
        };
        let _ = self.replies.send(reply).await;
        None
    }

    async fn subscribe(&mut self, subscribe: Subscribe) -> Option<Ending> {
        let mut codes = Vec::with_capacity(subscribe.requests.len());
        let mut retained = Vec::new();
        for request in &subscribe.requests {
            if request.no_local && crate::shared::parse(&request.filter).is_some() {
                // §3.8.3.1: No Local on a shared subscription is a Protocol Error.
                return Some(Ending::Reason(Reason::ProtocolError, "No Local on a shared subscription".into()));
            }
            let id = subscribe.properties.subscription_identifier;
            let options = Options {
                qos: request.qos,
                id,
                no_local: request.no_local,
                retain_as_published: request.retain_as_published,
            };
            let code = match self.subscriptions.subscribe(&request.filter, options).await {
                Ok((granted, is_new)) => {
                    // Retain Handling (v5): 0 always, 1 for a new subscription, 2 never.
                    if request.retain_handling == 0 || (request.retain_handling == 1 && is_new) {
                        let mut matching = self.retained.matching(&request.filter, granted);
                        matching.iter_mut().for_each(|d| d.subscription_ids.extend(id));
                        retained.extend(matching);
                    }
                    granted as u8
                }
                // 3.1.1 has one failure code.
                Err(_) if self.version == Version::V311 => 0x80,
                Err(reason) => reason.code(),
            };
            codes.push(code);
        }
        // A persistent session's subscriptions are on disk before the SUBACK says they exist.
        self.checkpoint(0).await;
        self.reply(encode_sub_acks(kind::SUBACK, self.version, subscribe.packet_id, &codes)).await;
        self.subscriptions.send_retained(retained);
        None
    }

    async fn deliver(&mut self, delivery: Delivery) {
        let packet_id = match delivery.qos {
            QoS::AtMostOnce => 0,
            _ => self.allocate_packet_id(),
        };
        let bytes = encode_publish(
            self.version,
            &OutgoingPublish {
                topic: &delivery.topic,
                qos: delivery.qos,
                dup: delivery.dup,
                retain: delivery.retain,
                packet_id,
                payload: &delivery.payload,
                user_properties: &delivery.user_properties,
                message_expiry: delivery.message_expiry,
                subscription_ids: &delivery.subscription_ids,
            },
        );
        if bytes.len() > self.client_packet_bytes_max {
            // §3.1.2.11.4 (5.0): a packet over the client's limit is dropped as if delivered.
            if delivery.qos != QoS::AtMostOnce {
                self.inflight.remove(&packet_id);
            }
            if let Some(ack) = delivery.ack {
                ack.done();
            }
            return;
        }
        if let Some(ack) = &delivery.ack {
            ack.sent();
        }
        match delivery.qos {
            // At most once: done once handed to the writer.
            QoS::AtMostOnce => {
                if let Some(ack) = delivery.ack {
                    ack.done();
                }
            }
            qos => {
                self.sent_count += 1;
                self.inflight.insert(packet_id, InFlight { ack: delivery.ack, qos, sent: self.sent_count });
            }
        }
        self.reply(bytes).await;
    }

    /// The next packet id not in flight (the window is far below 65,535, so one is free).
    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.inflight.entry(id) {
                slot.insert(InFlight { ack: None, qos: QoS::AtLeastOnce, sent: self.sent_count });
                return id;
            }
        }
    }

    async fn reply(&self, bytes: Vec<u8>) {
        let _ = self.replies.send(Reply::Now(Outcome::Send(bytes))).await;
    }
}

/// Resolves once the session was taken over; never without one.
async fn taken_over_signal(taken_over: &Option<Arc<tokio::sync::Notify>>) {
    match taken_over {
        Some(signal) => signal.notified().await,
        None => std::future::pending().await,
    }
}
