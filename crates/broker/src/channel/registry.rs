//! The NSQ view of the broker: topics with their channels, publishing, and the one sweeper
//! task that expires deadlines and checkpoints channel state.

mod leadership;

use super::checkpoint;
use super::cursor::{Channel, ChannelSpec, Origin};
use super::idle_trim::{trim_allocator, IdleTrim};
use super::{
    due_after, is_ephemeral, now_ms, nsq_topic_name, records, storage_topic_name, CHANNELS_PER_TOPIC_MAX,
    CHECKPOINT_INTERVAL, SWEEP_INTERVAL,
};
use crate::error::{BrokerError, BrokerResult};
use crate::partition::Durability;
use crate::topic::Topic;
use crate::Broker;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Timeouts the channels enforce.
#[derive(Debug, Clone)]
pub struct ChannelsConfig {
    /// Longest a client may ask for with IDENTIFY `msg_timeout` or extend to with TOUCH.
    pub max_msg_timeout: Duration,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig { max_msg_timeout: Duration::from_secs(15 * 60) }
    }
}

/// One NSQ topic: a log topic plus its channels.
pub struct NsqTopic {
    pub name: Arc<str>,
    log_topic: Arc<Topic>,
    paused: Arc<AtomicBool>,
    /// In a cluster: when `paused` was last set (0: never), so the latest pause wins everywhere.
    paused_ms: std::sync::atomic::AtomicI64,
    channels: RwLock<BTreeMap<String, Arc<Channel>>>,
    /// Round-robin partition for the next PUB.
    next_partition: AtomicUsize,
    message_count: AtomicU64,
    message_bytes: AtomicU64,
}

/// A topic's figures for `/stats`.
#[derive(Debug, Clone, Default)]
pub struct TopicStats {
    pub depth: i64,
    pub message_count: u64,
    pub message_bytes: u64,
    pub paused: bool,
}

impl NsqTopic {
    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.channels.read().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    pub fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.channels.read().ok()?.get(name).cloned()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub fn log_topic(&self) -> &Arc<Topic> {
        &self.log_topic
    }

    pub fn stats(&self) -> TopicStats {
        // Messages not yet copied to any channel: everything when the topic has none.
        let depth = if self.channels().is_empty() {
            let partitions = self.log_topic.partitions();
            let depth = |p: &Arc<crate::partition::Partition>| {
                let (start, end) = (p.log_start_offset(), p.log_end_offset());
                end - start - p.channel_states().control_offsets_in(start, end)
            };
            partitions.iter().map(depth).sum()
        } else {
            0
        };
        let appended: i64 = self.log_topic.partitions().iter().map(|p| p.log_end_offset()).sum();
        TopicStats {
            depth,
            message_count: self.message_count.load(Ordering::Relaxed).max(appended.max(0) as u64),
            message_bytes: self.message_bytes.load(Ordering::Relaxed),
            paused: self.is_paused(),
        }
    }
}

pub struct Channels {
    broker: Arc<Broker>,
    /// `<data_dir>/channels`.
    dir: PathBuf,
    config: ChannelsConfig,
    topics: RwLock<HashMap<String, Arc<NsqTopic>>>,
    /// Checkpoints found damaged at start-up (their channels restarted from the log start).
    damaged_checkpoints: AtomicU64,
    /// In a cluster: channels deleted here lately, (topic, channel) → when; a tombstone until
    /// the replicated one is written, so no other partition's older state brings them back.
    recent_deletes: std::sync::Mutex<HashMap<(String, String), i64>>,
}

impl Channels {
    /// Loads every checkpointed channel whose topic still exists.
    pub fn open(broker: Arc<Broker>, config: ChannelsConfig) -> BrokerResult<Arc<Channels>> {
        let dir = broker.config().data_dir.join("channels");
        sluice_log::durable_dir::create_dir_all(&dir)
            .map_err(|e| BrokerError::Storage(format!("{}: {e}", dir.display())))?;
        // Ephemeral topics keep nothing across a restart (as nsqd): drop their logs.
        for topic in broker.topics() {
            if is_ephemeral(&nsq_topic_name(&topic.name)) {
                if let Err(e) = broker.delete_topic(&topic.name) {
                    tracing::warn!(topic = %topic.name, error = %e, "cannot drop ephemeral topic");
                }
            }
        }
        let channels = Arc::new(Channels {
            broker,
            dir: dir.clone(),
            config,
            topics: RwLock::new(HashMap::new()),
            damaged_checkpoints: AtomicU64::new(0),
            recent_deletes: std::sync::Mutex::new(HashMap::new()),
        });
        let entries = std::fs::read_dir(&dir).map_err(|e| BrokerError::Storage(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let Some(topic_name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let Some(topic) = channels.topic(&topic_name) else {
                tracing::warn!(topic = %topic_name, "channel state for a topic that no longer exists; ignored");
                continue;
            };
            if super::topic_pause::read(&entry.path()) {
                topic.paused.store(true, Ordering::Relaxed);
                tracing::info!(topic = %topic_name, "topic paused (as before the restart)");
            }
            let Ok(files) = std::fs::read_dir(entry.path()) else { continue };
            for file in files.flatten() {
                let path = file.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                if !super::is_valid_nsq_name(name) {
                    continue;
                }
                let spec = channels.spec(&topic, name);
                let channel = match checkpoint::read(&path) {
                    Ok(Some(cp)) => Channel::restore(spec, cp),
                    Ok(None) => continue,
                    Err(e) => {
                        // Redeliver everything rather than lose anything.
                        channels.damaged_checkpoints.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(path = %path.display(), error = %e, "damaged channel checkpoint; restarting channel from log start");
                        Channel::create(spec, Origin { created_ms: now_ms(), from_tail: false })
                    }
                };
                if let Ok(mut map) = topic.channels.write() {
                    map.insert(name.to_string(), channel);
                }
                tracing::info!(topic = %topic_name, channel = name, "channel loaded");
            }
        }
        let holder: std::sync::Weak<dyn crate::RetentionHolder> = Arc::downgrade(&channels) as _;
        channels.broker.add_retention_holder(holder);
        Ok(channels)
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    fn spec(&self, topic: &NsqTopic, channel: &str) -> ChannelSpec {
        let durable = !is_ephemeral(&topic.name) && !is_ephemeral(channel);
        ChannelSpec {
            topic: Arc::clone(&topic.name),
            name: Arc::from(channel),
            log_topic: Arc::clone(&topic.log_topic),
            path: durable.then(|| self.dir.join(&*topic.name).join(format!("{channel}.json"))),
            max_msg_timeout: self.config.max_msg_timeout,
            topic_paused: Arc::clone(&topic.paused),
        }
    }

    /// The NSQ topic over an existing log topic, or `None`.
    pub fn topic(&self, name: &str) -> Option<Arc<NsqTopic>> {
        if crate::group::offsets_partition::is_internal_topic(name) {
            return None;
        }
        let log_topic = self.broker.topic(&storage_topic_name(name))?;
        if let Some(t) = self.topics.read().ok()?.get(name) {
            if Arc::ptr_eq(&t.log_topic, &log_topic) {
                return Some(Arc::clone(t));
            }
        }
        let mut topics = self.topics.write().ok()?;
        // The log topic was (re)created behind our back (Kafka): start a fresh NSQ topic.
        let entry = topics.entry(name.to_string());
        let topic = entry
            .and_modify(|t| {
                if !Arc::ptr_eq(&t.log_topic, &log_topic) {
                    *t = Arc::new(new_topic(name, Arc::clone(&log_topic)));
                }
            })
            .or_insert_with(|| Arc::new(new_topic(name, Arc::clone(&log_topic))));
        Some(Arc::clone(topic))
    }

    /// The topic, created (one partition) if it does not exist: NSQ creates topics on use.
    pub fn topic_or_create(&self, name: &str) -> BrokerResult<Arc<NsqTopic>> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        if crate::group::offsets_partition::is_internal_topic(name) {
            return Err(BrokerError::InvalidTopic(format!("{name} is internal")));
        }
        match self.broker.create_topic_anywhere(&storage_topic_name(name), Some(1), BTreeMap::new()) {
            Ok(_) | Err(BrokerError::TopicAlreadyExists) => {}
            Err(e) => return Err(e),
        }
        self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// Every NSQ topic: all log topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<NsqTopic>> {
        self.broker.topics().iter().filter_map(|t| self.topic(&nsq_topic_name(&t.name))).collect()
    }

    /// The channel, created if needed. The first channel of a topic starts at the log start
    /// (it gets what was published before it existed); later ones start at the tail.
    pub fn channel_or_create(&self, topic: &str, channel: &str) -> BrokerResult<Arc<Channel>> {
        self.channel_or_create_from(topic, channel, None)
    }

    /// The channel, created if needed at the log end of every partition: for readers that
    /// want only what is published from now on (an MQTT shared subscription).
    pub fn channel_at_end_or_create(&self, topic: &str, channel: &str) -> BrokerResult<Arc<Channel>> {
        self.channel_or_create_from(topic, channel, Some(true))
    }

    /// `from_tail`: where a new channel starts; `None` is NSQ's rule (the first channel of a
    /// topic at the log start, later ones at the end).
    fn channel_or_create_from(
        &self,
        topic: &str,
        channel: &str,
        from_tail: Option<bool>,
    ) -> BrokerResult<Arc<Channel>> {
        let topic = self.topic_or_create(topic)?;
        let origin = from_tail.map(|from_tail| Origin { created_ms: now_ms(), from_tail });
        self.create_channel(&topic, channel, origin)
    }

    /// The channel, created here if needed (`origin`: where it starts; `None` is NSQ's rule);
    /// in a cluster its creation is then made known to every node (`replicate_command`).
    fn create_channel(&self, topic: &NsqTopic, channel: &str, origin: Option<Origin>) -> BrokerResult<Arc<Channel>> {
        let (created, new) = self.insert_channel(topic, channel, origin)?;
        if new {
            self.replicate_command(&created);
        }
        Ok(created)
    }

    /// The channel, created if needed: as another node created it (`origin`, from the state
    /// replicated in a cluster) or as a new one; and whether it is new.
    fn insert_channel(
        &self,
        topic: &NsqTopic,
        channel: &str,
        origin: Option<Origin>,
    ) -> BrokerResult<(Arc<Channel>, bool)> {
        if let Some(c) = topic.channel(channel) {
            return Ok((c, false));
        }
        let mut map = topic.channels.write().map_err(|_| BrokerError::Storage("channel lock poisoned".into()))?;
        if let Some(c) = map.get(channel) {
            return Ok((Arc::clone(c), false));
        }
        if map.len() >= CHANNELS_PER_TOPIC_MAX {
            return Err(BrokerError::InvalidConfig(format!("at most {CHANNELS_PER_TOPIC_MAX} channels per topic")));
        }
        let origin = origin.unwrap_or(Origin { created_ms: now_ms(), from_tail: !map.is_empty() });
        let created = Channel::create(self.spec(topic, channel), origin);
        map.insert(channel.to_string(), Arc::clone(&created));
        drop(map);
        // Written (and fsynced) with no lock held that other SUBs or the sweeper wait on.
        if let Some(cp) = created.take_checkpoint(true) {
            created.write_checkpoint(&cp);
        }
        tracing::info!(topic = %topic.name, channel, "channel created");
        Ok((created, true))
    }

    /// Appends NSQ messages as one batch to the next partition (round-robin) and waits until
    /// durable per the topic's flush policy. A compacted topic (`cleanup.policy` holding
    /// `compact`) refuses them: NSQ messages carry no key, and compaction keeps one record per
    /// key, so Kafka would refuse them too (`INVALID_RECORD`).
    pub async fn publish(&self, topic: &str, bodies: &[Bytes], defer: Option<Duration>) -> BrokerResult<()> {
        let topic = self.topic_or_create(topic)?;
        if topic.log_topic.config().compacts() {
            return Err(BrokerError::InvalidRecord(format!(
                "topic {} is compacted (cleanup.policy=compact) and NSQ messages have no key",
                topic.log_topic.name
            )));
        }
        let partitions = topic.log_topic.partitions();
        if partitions.is_empty() {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        let now = now_ms();
        let due = defer.map(due_after);
        let batch = records::encode(bodies, now, due)?;
        // NSQ publishes locally: in a cluster, to a partition this node leads (round-robin
        // among them); on a single node every partition qualifies.
        let start = topic.next_partition.fetch_add(1, Ordering::Relaxed);
        let node = self.broker.node_id();
        let led =
            (0..partitions.len()).map(|i| (start + i) % partitions.len()).find(|i| partitions[*i].role(node).is_leader);
        match (led, self.broker.cluster()) {
            (Some(index), _) => {
                partitions[index].append(batch, Durability::Committed).await?;
            }
            // Only a node that leads none of the topic's partitions forwards the publish.
            (None, Some(cluster)) => cluster.forward_publish(&topic.log_topic.name, batch).await?,
            (None, None) => return Err(BrokerError::NotLeader { leader: None }),
        }
        topic.message_count.fetch_add(bodies.len() as u64, Ordering::Relaxed);
        topic.message_bytes.fetch_add(bodies.iter().map(|b| b.len() as u64).sum(), Ordering::Relaxed);
        Ok(())
    }

    pub fn delete_channel(&self, topic: &str, channel: &str) -> BrokerResult<()> {
        let topic = self.topic(topic).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let removed = topic
            .channels
            .write()
            .map_err(|_| BrokerError::Storage("channel lock poisoned".into()))?
            .remove(channel)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        // Its clients see the channel deleted and are disconnected (as nsqd closes them).
        removed.mark_deleted();
        removed.remove_checkpoint();
        if self.broker.cluster().is_some() {
            let mut recent = self.recent_deletes.lock().unwrap_or_else(|p| p.into_inner());
            recent.insert((topic.name.to_string(), channel.to_string()), now_ms());
            drop(recent);
            self.replicate_delete(&topic, channel);
        }
        tracing::info!(topic = %topic.name, channel, "channel deleted");
        Ok(())
    }

    /// Deletes the log topic; the broker then calls `topic_deleted`, which drops the
    /// channels (a Kafka DeleteTopics takes the same path).
    pub fn delete_topic(&self, name: &str) -> BrokerResult<()> {
        self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.broker.delete_topic(&storage_topic_name(name))
    }

    /// The NSQ topic's log topic is gone: its channels are marked deleted, which
    /// disconnects their clients (they reconnect, as with nsqd), and their checkpoints are
    /// removed so a re-created topic's channels start fresh.
    fn forget_topic(&self, name: &str) {
        let removed = self.topics.write().ok().and_then(|mut topics| topics.remove(name));
        for channel in removed.iter().flat_map(|t| t.channels()) {
            channel.mark_deleted();
            channel.remove_checkpoint();
        }
        let dir = self.dir.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(topic = name, "channels of deleted topic removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(path = %dir.display(), error = %e, "cannot remove channel checkpoints"),
        }
    }

    pub fn pause_topic(&self, name: &str, paused: bool) -> BrokerResult<()> {
        let topic = self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        // Recorded before it takes effect, so an acknowledged pause holds after a restart.
        // Ephemeral topics do not outlive a restart, so they record nothing.
        if !is_ephemeral(name) {
            super::topic_pause::write(&self.dir.join(name), paused)
                .map_err(|e| BrokerError::Storage(format!("cannot record topic pause: {e}")))?;
        }
        let last = topic.paused_ms.load(Ordering::Relaxed);
        topic.paused_ms.store(now_ms().max(last + 1), Ordering::Relaxed);
        topic.paused.store(paused, Ordering::Relaxed);
        topic.channels().iter().for_each(|c| c.wake());
        self.replicate_topic_pause(&topic);
        Ok(())
    }

    /// Sluice topics hold no queue of their own (channels read the log), so emptying a topic
    /// empties every channel of it.
    pub fn empty_topic(&self, name: &str) -> BrokerResult<()> {
        let topic = self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        topic.channels().iter().for_each(|c| self.empty_channel(c));
        Ok(())
    }

    /// Pauses or unpauses a channel; in a cluster on every node (`replicate_command`).
    pub fn pause_channel(&self, channel: &Channel, paused: bool) {
        channel.set_paused(paused);
        self.replicate_command(channel);
    }

    /// Empties a channel; in a cluster on every partition's leader (`replicate_command`).
    pub fn empty_channel(&self, channel: &Channel) {
        channel.empty();
        self.replicate_command(channel);
    }

    pub fn existing_channel(&self, topic: &str, channel: &str) -> BrokerResult<Arc<Channel>> {
        self.topic(topic).and_then(|t| t.channel(channel)).ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// The lowest offset some durable channel of `topic` (a log topic name) still needs on
    /// `partition`: what retention should keep (up to its own cap) so no channel loses a
    /// message it has not finished. `None` when no durable channel reads the partition.
    /// Registered with the broker on open, so the maintenance task's retention keeps it.
    pub fn retention_floor(&self, log_topic: &str, partition: i32) -> Option<i64> {
        let topic = self.topic(&nsq_topic_name(log_topic))?;
        let local = topic.channels().iter().filter(|c| !c.ephemeral).filter_map(|c| c.floor(partition)).min();
        // In a cluster, also what the replicated state says the channels still need.
        let replicated = topic.log_topic.partition(partition).and_then(|p| p.channel_states().retention_floor());
        local.into_iter().chain(replicated).min()
    }
}

impl Channels {
    /// Checkpoints found damaged at start-up.
    pub fn damaged_checkpoints(&self) -> u64 {
        self.damaged_checkpoints.load(Ordering::Relaxed)
    }
}

impl crate::RetentionHolder for Channels {
    fn retention_floor(&self, topic: &str, partition: i32) -> Option<i64> {
        Channels::retention_floor(self, topic, partition)
    }

    fn topic_deleted(&self, topic: &str) {
        self.forget_topic(&nsq_topic_name(topic));
    }
}

impl Channels {
    /// A client left a channel; an ephemeral channel goes with its last client, and an
    /// ephemeral topic with its last channel.
    pub fn client_left(&self, channel: &Channel, client: u64) {
        let left = channel.remove_client(client);
        if left == 0 && channel.ephemeral && !channel.is_deleted() {
            let _ = self.delete_channel(&channel.topic, &channel.name);
            if is_ephemeral(&channel.topic) && self.topic(&channel.topic).is_some_and(|t| t.channels().is_empty()) {
                let _ = self.delete_topic(&channel.topic);
            }
        }
    }

    /// The sweeper: expires deadlines, releases deferred messages and checkpoints changed
    /// channels until `stop`, then checkpoints everything once more.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.broker.cluster().is_some() {
            tokio::spawn(leadership::run(Arc::clone(&self), stop.clone()));
        }
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_checkpoint = Instant::now();
        let mut idle_trim = IdleTrim::default();
        loop {
            tokio::select! {
                _ = sweep.tick() => {}
                _ = stop.changed() => break,
            }
            let now = Instant::now();
            let all: Vec<Arc<Channel>> = self.all_channels();
            for channel in &all {
                channel.sweep(now);
            }
            if idle_trim.observe(self.activity(&all), now) {
                tokio::task::spawn_blocking(trim_allocator);
            }
            if now.duration_since(last_checkpoint) >= CHECKPOINT_INTERVAL {
                last_checkpoint = now;
                let me = Arc::clone(&self);
                let _ = tokio::task::spawn_blocking(move || me.checkpoint(false)).await;
            }
        }
        let me = Arc::clone(&self);
        let _ = tokio::task::spawn_blocking(move || me.checkpoint(true)).await;
        tracing::info!("channel state checkpointed");
    }

    /// A count that moves with every publish, delivery, FIN and REQ (for `IdleTrim`).
    fn activity(&self, channels: &[Arc<Channel>]) -> u64 {
        let topics: Vec<Arc<NsqTopic>> = self.topics.read().map(|t| t.values().cloned().collect()).unwrap_or_default();
        let published = topics.iter().fold(0u64, |n, t| n.wrapping_add(t.message_count.load(Ordering::Relaxed)));
        channels.iter().fold(published, |n, c| n.wrapping_add(c.activity()))
    }

    fn all_channels(&self) -> Vec<Arc<Channel>> {
        let topics: Vec<Arc<NsqTopic>> = self.topics.read().map(|t| t.values().cloned().collect()).unwrap_or_default();
        topics.iter().flat_map(|t| t.channels()).collect()
    }

    /// Writes the checkpoint of every changed (or, with `force`, every) durable channel.
    pub fn checkpoint(&self, force: bool) {
        for channel in self.all_channels() {
            if let Some(cp) = channel.take_checkpoint(force) {
                channel.write_checkpoint(&cp);
            }
        }
    }
}

fn new_topic(name: &str, log_topic: Arc<Topic>) -> NsqTopic {
    NsqTopic {
        name: Arc::from(name),
        log_topic,
        paused: Arc::new(AtomicBool::new(false)),
        paused_ms: std::sync::atomic::AtomicI64::new(0),
        channels: RwLock::new(BTreeMap::new()),
        next_partition: AtomicUsize::new(0),
        message_count: AtomicU64::new(0),
        message_bytes: AtomicU64::new(0),
    }
}
