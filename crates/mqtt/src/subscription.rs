//! A connection's subscriptions: its topic filters, and one tail per log topic they cover
//! that reads that topic's partitions from their end at subscribe time (the log reading the
//! NSQ channels use: `Partition::read` and `read_v2_records`, woken by the partition's
//! end-offset watch) and hands matching records to the connection.

use crate::codec::{QoS, Reason};
use crate::mapping::TopicMap;
use crate::publish::log_topic;
use crate::shared::{self, Membership};
use crate::topics::{matches, valid_filter};
use crate::{is_own_header, CLIENT_ID_HEADER, EXPIRY_HEADER, QOS_HEADER, RETAIN_HEADER, TOPIC_HEADER};
use bytes::Bytes;
use sluice_broker::channel::{Channel, Channels, ClientInfo, MessageId, READ_BYTES_MAX};
use sluice_broker::{Broker, BrokerError, Partition, Topic};
use sluice_records::convert::{read_v2_records, StoredRecord};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Records handed to the connection and not yet taken, per connection: the tails wait
/// (and stop reading) while it is full.
pub(crate) const DELIVERY_QUEUE: usize = 256;

/// The queue of deliveries to one connection, from its tails, share groups and retained
/// messages. They go boxed: a channel allocates its first block of 32 slots with it, so 32
/// `Delivery`s inline cost every connection about 4 KiB, idle or not; 32 boxes cost 256 B.
pub(crate) type DeliverySender = mpsc::Sender<Box<Delivery>>;
pub(crate) type DeliveryReceiver = mpsc::Receiver<Box<Delivery>>;

/// A record on its way to a subscriber.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub user_properties: Vec<(String, String)>,
    /// Set on retained messages sent to a new subscription.
    pub retain: bool,
    /// Set on a resumed session's records that may have reached the client before.
    pub dup: bool,
    /// Where the record sits in its partition's progress; done once delivered (QoS 0) or
    /// acknowledged (QoS 1). None for retained messages.
    pub ack: Option<Ack>,
    /// v5: seconds left of the message's expiry interval.
    pub message_expiry: Option<u32>,
    /// v5: identifiers of the matching subscriptions that have one.
    pub subscription_ids: Vec<usize>,
}

/// One partition's reading progress for a subscriber: what the tail has read, and the
/// records handed on whose delivery is not complete.
#[derive(Debug)]
pub(crate) struct Progress {
    /// The partition read (for a session's record of its unacknowledged deliveries).
    log_topic: Arc<str>,
    partition: i32,
    read_end: i64,
    outstanding: BTreeSet<i64>,
    /// One past the highest offset written to the client: a resumed session marks records
    /// below it DUP (they may have reached the client before).
    sent_end: i64,
}

impl Progress {
    /// Every record below it was delivered and acknowledged, or needed neither.
    fn floor(&self) -> i64 {
        self.outstanding.first().copied().unwrap_or(self.read_end)
    }
}

/// A delivery's place in its partition's progress, or in a share group's channel.
pub(crate) enum Ack {
    Tail {
        progress: Arc<Mutex<Progress>>,
        offset: i64,
    },
    /// In flight on the channel of a shared subscription, for this member.
    Shared {
        channel: Arc<Channel>,
        id: MessageId,
        member: Arc<ClientInfo>,
    },
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ack::Tail { offset, .. } => write!(f, "Ack::Tail({offset})"),
            Ack::Shared { id, .. } => write!(f, "Ack::Shared({}/{})", id.partition, id.offset),
        }
    }
}

impl Ack {
    pub fn shared(channel: Arc<Channel>, id: MessageId, member: Arc<ClientInfo>) -> Ack {
        Ack::Shared { channel, id, member }
    }

    /// A record of a partition tail, taken back into that partition's progress (a resumed
    /// session's unacknowledged delivery): the floor stays below it until it is done.
    pub fn outstanding(progress: Arc<Mutex<Progress>>, offset: i64) -> Ack {
        progress.lock().unwrap_or_else(|p| p.into_inner()).outstanding.insert(offset);
        Ack::Tail { progress, offset }
    }

    /// The log topic, partition and offset of a tail's record (none for a shared one: its
    /// channel takes it back when the connection ends).
    pub fn position(&self) -> Option<(String, i32, i64)> {
        match self {
            Ack::Tail { progress, offset } => {
                let progress = progress.lock().unwrap_or_else(|p| p.into_inner());
                Some((progress.log_topic.to_string(), progress.partition, *offset))
            }
            Ack::Shared { .. } => None,
        }
    }

    /// The delivery was handed to the client's writer.
    pub fn sent(&self) {
        if let Ack::Tail { progress, offset } = self {
            let mut progress = progress.lock().unwrap_or_else(|p| p.into_inner());
            progress.sent_end = progress.sent_end.max(offset + 1);
        }
    }

    /// The delivery is complete: the floor may pass it (a shared one is finished on its
    /// channel; if the channel took it back meanwhile, another member has it and the FIN
    /// is refused, which is fine).
    pub fn done(self) {
        match self {
            Ack::Tail { progress, offset } => {
                progress.lock().unwrap_or_else(|p| p.into_inner()).outstanding.remove(&offset);
            }
            Ack::Shared { channel, id, member } => {
                if channel.fin(id, &member).is_ok() {
                    shared::window_freed(&channel, &member);
                }
            }
        }
    }
}

/// Where a new tail starts when no resumed position says.
#[derive(Clone, Copy)]
enum Start {
    /// A new subscription: what is appended from now on.
    LogEnd,
    /// A topic or partition created after the subscription: all of it.
    LogStart,
}

/// One partition's tail.
struct TailHandle {
    partition: i32,
    progress: Arc<Mutex<Progress>>,
    task: JoinHandle<()>,
}

/// What a SUBSCRIBE asks for one filter besides the filter itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    pub qos: QoS,
    /// The v5 subscription identifier given with it.
    pub id: Option<usize>,
    /// v5 No Local: the client's own publishes are not sent to it on this filter.
    pub no_local: bool,
    /// v5 Retain As Published: deliveries keep the RETAIN flag they were published with.
    pub retain_as_published: bool,
}

impl Options {
    pub fn qos(qos: QoS, id: Option<usize>) -> Options {
        Options { qos, id, no_local: false, retain_as_published: false }
    }
}

/// One topic filter with the QoS granted to it.
#[derive(Debug, Clone)]
struct Filter {
    text: String,
    granted: QoS,
    /// The v5 subscription identifier given with it.
    id: Option<usize>,
    no_local: bool,
    retain_as_published: bool,
    /// The log topics it reads (its first level's, mapping rules'), or `None` for a wildcard
    /// first level (every topic).
    log_topics: Option<Vec<String>>,
}

pub(crate) struct Subscriptions {
    broker: Arc<Broker>,
    filters: Arc<RwLock<Vec<Filter>>>,
    /// Per log topic, its partitions' tails.
    tails: HashMap<String, Vec<TailHandle>>,
    /// Where a resumed session's tails start, per (log topic, partition), and below which
    /// offset they mark deliveries DUP; others start at the log end.
    resume: HashMap<(String, i32), (i64, i64)>,
    deliveries: DeliverySender,
    subscriptions_max: usize,
    /// Shared subscriptions by their whole `$share/…` filter, and the channel client this
    /// connection is in each of their groups.
    shared: HashMap<String, Membership>,
    channels: Arc<Channels>,
    /// The channel client standing for this connection in its share groups: made at its
    /// first shared subscription, as most connections never have one.
    member: Option<Arc<ClientInfo>>,
    /// What that channel client is made of: the connection's id in the broker's client
    /// registry, its address, and its window (RDY, set at CONNECT).
    member_of: (u64, SocketAddr, usize),
    /// The session outlives the connection: its share groups' channels stay when it leaves.
    pub keep_shared_channels: bool,
    /// The connection's client id (set at CONNECT): No Local filters skip its publishes.
    client_id: Arc<str>,
    mapping: TopicMap,
    /// `sluice_mqtt_subscriptions`, moved by this connection's filters.
    gauge: sluice_broker::metrics::IntGauge,
}

impl Subscriptions {
    pub fn new(
        broker: Arc<Broker>,
        channels: Arc<Channels>,
        (connection_id, remote): (u64, SocketAddr),
        deliveries: DeliverySender,
        subscriptions_max: usize,
        mapping: TopicMap,
        gauge: sluice_broker::metrics::IntGauge,
    ) -> Subscriptions {
        Subscriptions {
            broker,
            filters: Arc::default(),
            tails: HashMap::new(),
            resume: HashMap::new(),
            deliveries,
            subscriptions_max,
            shared: HashMap::new(),
            channels,
            member: None,
            member_of: (connection_id, remote, 0),
            keep_shared_channels: false,
            client_id: Arc::from(""),
            mapping,
            gauge,
        }
    }

    /// The client id and delivery window of the connection (set at CONNECT, before any
    /// subscription).
    pub fn set_client(&mut self, client_id: &str, window: usize) {
        self.member_of.2 = window;
        self.client_id = Arc::from(client_id);
    }

    /// The channel client this connection is in share groups, made the first time.
    fn member(&mut self) -> Arc<ClientInfo> {
        let (id, remote, window) = self.member_of;
        let client_id = &self.client_id;
        Arc::clone(self.member.get_or_insert_with(|| shared::member_info(id, client_id, remote.to_string(), window)))
    }

    /// Joins (or re-grants) a shared subscription.
    async fn subscribe_shared(
        &mut self,
        text: &str,
        share: shared::ShareFilter<'_>,
        qos: QoS,
        id: Option<usize>,
    ) -> Result<(QoS, bool), Reason> {
        if let Some(existing) = self.shared.get_mut(text) {
            // A new QoS or identifier applies to deliveries taken from now on.
            if existing.granted == qos && existing.id == id {
                return Ok((qos, false));
            }
            if let Some(old) = self.shared.remove(text) {
                let member = self.member();
                old.leave(&self.channels, &member, true);
                self.gauge.dec();
            }
        } else if self.filters.read().unwrap_or_else(|p| p.into_inner()).len() + self.shared.len()
            >= self.subscriptions_max
        {
            return Err(Reason::QuotaExceeded);
        }
        let member = self.member();
        let membership =
            Membership::join(&self.channels, &self.mapping, &share, qos, id, &member, self.deliveries.clone()).await?;
        let is_new = self.shared.insert(text.to_string(), membership).is_none();
        if is_new {
            self.gauge.inc();
        }
        Ok((qos, is_new))
    }

    /// Adds (or replaces) a filter; answers the QoS granted (the one asked) and whether the
    /// filter is new, or why it was refused.
    pub async fn subscribe(&mut self, filter: &str, options: Options) -> Result<(QoS, bool), Reason> {
        let Options { qos, id, no_local, retain_as_published } = options;
        if let Some(share) = shared::parse(filter) {
            return self.subscribe_shared(filter, share?, qos, id).await;
        }
        if !valid_filter(filter) {
            return Err(Reason::TopicFilterInvalid);
        }
        let granted = qos;
        let target = self.mapping.filter_log_topics(filter);
        {
            let mut filters = self.filters.write().unwrap_or_else(|p| p.into_inner());
            let count = filters.len();
            match filters.iter_mut().find(|f| f.text == filter) {
                Some(existing) => {
                    existing.granted = granted;
                    existing.id = id;
                    existing.no_local = no_local;
                    existing.retain_as_published = retain_as_published;
                    return Ok((granted, false));
                }
                None if count + self.shared.len() >= self.subscriptions_max => return Err(Reason::QuotaExceeded),
                None => {
                    filters.push(Filter {
                        text: filter.to_string(),
                        granted,
                        id,
                        no_local,
                        retain_as_published,
                        log_topics: target.clone(),
                    });
                    self.gauge.inc();
                }
            }
        }
        let topics = match target {
            Some(names) => {
                let mut topics = Vec::with_capacity(names.len());
                for name in names {
                    match log_topic(&self.broker, &name).await {
                        Ok(topic) => topics.push(topic),
                        Err(e) => {
                            tracing::warn!(filter, topic = name, error = %e, "mqtt subscription's topic unavailable");
                            self.remove(filter);
                            return Err(Reason::UnspecifiedError);
                        }
                    }
                }
                topics
            }
            // Internal topics (`__…`, retained messages) are not MQTT topics.
            None => self.broker.topics().into_iter().filter(|t| !t.name.starts_with("__")).collect(),
        };
        for topic in topics {
            self.start_tails(&topic, Start::LogEnd);
        }
        Ok((granted, true))
    }

    /// Starts a tail on each partition of `topic` that has none: at a resumed session's
    /// stored position, else at `start`.
    fn start_tails(&mut self, topic: &Topic, start: Start) {
        let running = self.tails.entry(topic.name.to_string()).or_default();
        for partition in topic.partitions() {
            if running.iter().any(|t| t.partition == partition.index) {
                continue;
            }
            let resumed = self.resume.get(&(topic.name.to_string(), partition.index)).copied();
            let (offset, sent_end) = resumed.unwrap_or_else(|| {
                let offset = match start {
                    Start::LogEnd => partition.log_end_offset(),
                    Start::LogStart => partition.log_start_offset(),
                };
                (offset, offset)
            });
            let progress = Arc::new(Mutex::new(Progress {
                log_topic: Arc::clone(&topic.name),
                partition: partition.index,
                read_end: offset,
                outstanding: BTreeSet::new(),
                sent_end,
            }));
            let index = partition.index;
            let tail = Tail {
                partition,
                log_topic: topic.name.to_string(),
                client_id: Arc::clone(&self.client_id),
                filters: Arc::clone(&self.filters),
                out: self.deliveries.clone(),
                progress: Arc::clone(&progress),
                dup_below: sent_end,
            };
            running.push(TailHandle { partition: index, progress, task: tokio::spawn(tail.run(offset)) });
        }
    }

    /// Topics or partitions were created: filters that read them get tails on the new ones,
    /// from their log start (all of it was appended after the filter subscribed).
    pub fn refresh(&mut self) {
        let (wildcard, named): (bool, BTreeSet<String>) = {
            let filters = self.filters.read().unwrap_or_else(|p| p.into_inner());
            let named = filters.iter().filter_map(|f| f.log_topics.clone()).flatten().collect();
            (filters.iter().any(|f| f.log_topics.is_none()), named)
        };
        let topics = self.broker.topics().into_iter().filter(|t| match wildcard {
            true => !t.name.starts_with("__"),
            false => named.contains(&*t.name),
        });
        for topic in topics.collect::<Vec<_>>() {
            self.start_tails(&topic, Start::LogStart);
        }
    }

    /// Tails created from now on start at these offsets (a resumed session's floors).
    pub fn resume_from(&mut self, floors: impl IntoIterator<Item = ((String, i32), (i64, i64))>) {
        self.resume.extend(floors);
    }

    /// The filters and their options, for a session's checkpoint.
    pub fn filters(&self) -> Vec<(String, Options)> {
        let filters = self.filters.read().unwrap_or_else(|p| p.into_inner());
        let shared = self.shared.iter().map(|(text, m)| (text.clone(), Options::qos(m.granted, m.id)));
        let options = |f: &Filter| Options {
            qos: f.granted,
            id: f.id,
            no_local: f.no_local,
            retain_as_published: f.retain_as_published,
        };
        filters.iter().map(|f| (f.text.clone(), options(f))).chain(shared).collect()
    }

    /// The progress of a partition a filter reads, if one does.
    pub fn progress_of(&self, log_topic: &str, partition: i32) -> Option<Arc<Mutex<Progress>>> {
        let tails = self.tails.get(log_topic)?;
        tails.iter().find(|t| t.partition == partition).map(|t| Arc::clone(&t.progress))
    }

    /// The v5 subscription identifiers of the (unshared) filters matching `topic`.
    pub fn ids_matching(&self, topic: &str) -> Vec<usize> {
        let filters = self.filters.read().unwrap_or_else(|p| p.into_inner());
        filters.iter().filter(|f| matches(&f.text, topic)).filter_map(|f| f.id).collect()
    }

    /// Each partition's floor and sent end, for a session's checkpoint.
    pub fn floors(&self) -> Vec<(String, i32, i64, i64)> {
        let mut floors: Vec<(String, i32, i64, i64)> = self
            .tails
            .iter()
            .flat_map(|(topic, tails)| {
                tails.iter().map(move |t| {
                    let progress = t.progress.lock().unwrap_or_else(|p| p.into_inner());
                    (topic.clone(), t.partition, progress.floor(), progress.sent_end)
                })
            })
            .collect();
        // Partitions of a resumed session no filter reads yet keep their floors.
        for ((topic, partition), (floor, sent_end)) in &self.resume {
            if !self.tails.contains_key(topic) {
                floors.push((topic.clone(), *partition, *floor, *sent_end));
            }
        }
        floors
    }

    /// Queues retained messages for delivery behind the window like any other (from a task:
    /// there may be more of them than the queue holds).
    pub fn send_retained(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let out = self.deliveries.clone();
        tokio::spawn(async move {
            for delivery in deliveries {
                if out.send(Box::new(delivery)).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Removes a filter; whether it existed. Tails no filter needs any more stop.
    pub fn unsubscribe(&mut self, filter: &str) -> bool {
        if let Some(membership) = self.shared.remove(filter) {
            let member = self.member();
            membership.leave(&self.channels, &member, false);
            self.gauge.dec();
            return true;
        }
        let existed = self.remove(filter);
        let filters = self.filters.read().unwrap_or_else(|p| p.into_inner());
        let any_wildcard = filters.iter().any(|f| f.log_topics.is_none());
        if !any_wildcard {
            self.tails.retain(|name, tails| {
                let needed = filters.iter().any(|f| f.log_topics.as_ref().is_some_and(|ts| ts.contains(name)));
                if !needed {
                    tails.iter().for_each(|t| t.task.abort());
                }
                needed
            });
        }
        existed
    }

    fn remove(&self, filter: &str) -> bool {
        let mut filters = self.filters.write().unwrap_or_else(|p| p.into_inner());
        let before = filters.len();
        filters.retain(|f| f.text != filter);
        self.gauge.sub((before - filters.len()) as i64);
        filters.len() != before
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.tails.values().flatten().for_each(|t| t.task.abort());
        let held = self.filters.read().map_or(0, |f| f.len()) + self.shared.len();
        self.gauge.sub(held as i64);
        let Some(member) = &self.member else { return };
        // Taken no more (RDY 0) before the channels take back what this member holds.
        shared::set_window(member, 0);
        for (_, membership) in self.shared.drain() {
            membership.leave(&self.channels, member, self.keep_shared_channels);
        }
    }
}

/// Reads one partition from an offset on and hands the records some filter matches to the
/// connection.
struct Tail {
    partition: Arc<Partition>,
    log_topic: String,
    filters: Arc<RwLock<Vec<Filter>>>,
    out: DeliverySender,
    progress: Arc<Mutex<Progress>>,
    /// Records below this offset were written to the client before a resume: sent DUP.
    dup_below: i64,
    /// The subscriber's client id: No Local filters skip records it published.
    client_id: Arc<str>,
}

impl Tail {
    /// Reads on from `offset` until the connection is gone. What a read needs (the read
    /// itself, the records being handed on) is boxed for its duration: the task waiting for
    /// the next append, as an idle subscriber's does, keeps only the waiting state.
    async fn run(self, mut offset: i64) {
        let mut appended = self.partition.subscribe();
        loop {
            let before = offset;
            offset = match Box::pin(self.read_and_send(offset)).await {
                Some(offset) => offset,
                None => return,
            };
            if offset == before {
                // Nothing new (or nothing readable): wait for the next append.
                if appended.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// One read from `offset`, its matching records handed to the connection: the offset to
    /// read on from, or none once the connection is gone.
    async fn read_and_send(&self, mut offset: i64) -> Option<i64> {
        let partition = Arc::clone(&self.partition);
        let read = tokio::task::spawn_blocking(move || partition.read(offset, READ_BYTES_MAX)).await;
        let bytes = match read {
            Ok(Ok(read)) => read.bytes,
            Ok(Err(BrokerError::OffsetOutOfRange { log_start, log_end, .. })) => {
                // Retention went past what this subscriber had not read yet, or a resumed
                // session's floor lies past a log that was deleted and created again.
                offset = if offset < log_start { log_start } else { log_end };
                self.progress.lock().unwrap_or_else(|p| p.into_inner()).read_end = offset;
                return Some(offset);
            }
            Ok(Err(e)) => {
                tracing::warn!(topic = %self.log_topic, offset, error = %e, "mqtt subscription cannot read");
                Vec::new()
            }
            Err(_) => return None,
        };
        for batch in read_v2_records(&bytes, offset) {
            let Ok(batch) = batch else { break };
            offset = offset.max(batch.last_offset.saturating_add(1));
            let Ok(records) = batch.records else {
                tracing::warn!(topic = %self.log_topic, base_offset = batch.base_offset, "skipping unreadable batch");
                continue;
            };
            for record in records {
                let offset = record.offset;
                if let Some(mut delivery) = self.matching(record) {
                    delivery.dup = offset < self.dup_below && delivery.qos != QoS::AtMostOnce;
                    self.progress.lock().unwrap_or_else(|p| p.into_inner()).outstanding.insert(offset);
                    delivery.ack = Some(Ack::Tail { progress: Arc::clone(&self.progress), offset });
                    if self.out.send(Box::new(delivery)).await.is_err() {
                        return None;
                    }
                }
            }
            self.progress.lock().unwrap_or_else(|p| p.into_inner()).read_end = offset;
        }
        Some(offset)
    }

    /// The delivery for `record` if a filter matches it, at the highest QoS granted among the
    /// matching filters, capped by the QoS it was published with. A No Local filter does not
    /// match the subscriber's own publishes; the RETAIN flag is kept when a matching filter
    /// asked for Retain As Published.
    fn matching(&self, record: StoredRecord) -> Option<Delivery> {
        let topic = header_text(&record, TOPIC_HEADER).unwrap_or_else(|| self.log_topic.clone());
        let own = header_text(&record, CLIENT_ID_HEADER).is_some_and(|id| *id == *self.client_id);
        let (granted, ids, keep_retain) = {
            let filters = self.filters.read().unwrap_or_else(|p| p.into_inner());
            let matching: Vec<&Filter> = filters
                .iter()
                .filter(|f| f.log_topics.as_ref().is_none_or(|ts| ts.contains(&self.log_topic)))
                .filter(|f| !(own && f.no_local) && matches(&f.text, &topic))
                .collect();
            let granted = matching.iter().map(|f| f.granted).max()?;
            let keep_retain = matching.iter().any(|f| f.retain_as_published);
            (granted, matching.iter().filter_map(|f| f.id).collect(), keep_retain)
        };
        let retained = keep_retain && header_text(&record, RETAIN_HEADER).is_some_and(|v| v == "1");
        let mut delivery = record_delivery(topic, record.value.unwrap_or_default(), &record.headers, granted, ids)?;
        delivery.retain = retained;
        Some(delivery)
    }
}

/// The delivery of a record under `topic` to filters granted `granted` (with identifiers
/// `subscription_ids`): at that QoS capped by the one it was published with, its other
/// headers as v5 user properties, and what is left of its expiry interval; `None` once it
/// has expired (§3.3.2.3.3: not delivered any more).
pub(crate) fn record_delivery(
    topic: String,
    payload: Bytes,
    headers: &[(String, Option<Bytes>)],
    granted: QoS,
    subscription_ids: Vec<usize>,
) -> Option<Delivery> {
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref());
    let message_expiry = match header(EXPIRY_HEADER).and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok()) {
        Some(expires_at) => {
            let left_ms = expires_at.saturating_sub(crate::publish::now_ms());
            if left_ms <= 0 {
                return None;
            }
            // Rounded up: a message with 300 ms left still says 1 s, never 0.
            Some(u32::try_from((left_ms + 999) / 1000).unwrap_or(u32::MAX))
        }
        None => None,
    };
    // Records from Kafka producers and NSQ publishers are durable: QoS 1 for MQTT.
    let published = match header(QOS_HEADER) {
        Some(b"0") => QoS::AtMostOnce,
        Some(b"2") => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    };
    let user_properties = headers
        .iter()
        .filter(|(k, _)| !is_own_header(k))
        // MQTT property values are UTF-8; Kafka header values may be any bytes.
        .map(|(k, v)| (k.clone(), v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()))
        .collect();
    Some(Delivery {
        topic,
        payload,
        qos: granted.min(published),
        user_properties,
        retain: false,
        dup: false,
        ack: None,
        message_expiry,
        subscription_ids,
    })
}

pub(crate) fn header_text(record: &StoredRecord, key: &str) -> Option<String> {
    let (_, value) = record.headers.iter().find(|(k, _)| k == key)?;
    std::str::from_utf8(value.as_ref()?).ok().map(str::to_string)
}
