//! In a cluster: one task serves each NSQ channel on the partitions this node leads, from the
//! state replicated with each partition (`replicated_state`), and replicates that state while
//! it leads.
//!
//! - A partition this node starts leading (or leads in a new term) is served once a majority
//!   confirmed the leadership and the partition shows everything its log holds (as a new
//!   group coordinator loads `__consumer_offsets`): every state batch committed before is
//!   then applied here. One it stops leading is dropped at once.
//! - Every `STATE_WRITE_INTERVAL`, when any channel's state on a led partition changed, all
//!   its channels' states go as one control batch through the acks=all path. All at once, so
//!   reading that batch (which moves every cursor over its offsets) changes no state again.
//! - Channels exist cluster-wide: a channel in any partition's replicated state this node
//!   holds is created here; a tombstone deletes every incarnation created before it.

use super::{Channels, NsqTopic};
use crate::channel::cursor::{Channel, Origin};
use crate::channel::now_ms;
use crate::channel::replicated_state::{self, ChannelRecord, TOPIC_RECORD};
use crate::partition::{Durability, Partition};
use crate::topic::Topic;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often leadership is checked: a failover's new leader serves its channels within it
/// (after the confirmation round).
const CHECK_PERIOD: Duration = Duration::from_millis(100);
/// How often a changed state is replicated: what a leader's death may redeliver beyond the
/// messages in flight (FINs of the last interval).
const STATE_WRITE_INTERVAL: Duration = Duration::from_millis(300);
/// Longest a new leader waits for its confirmation and catch-up before trying again.
const LOAD_WAIT: Duration = Duration::from_secs(2);
/// Longest a state write waits for the majority commit (a leader cut off from it).
const WRITE_WAIT: Duration = Duration::from_secs(2);
/// How often a node serving no partition of a topic forwards again a channel's creation,
/// pause or empty that no partition's replicated state shows yet (the first forward was lost,
/// or this node led a partition when it was asked and lost it before writing the state).
const FORWARD_RETRY: Duration = Duration::from_secs(1);
/// How long a channel deleted here counts as a tombstone of its own: far longer than its
/// replicated tombstone takes to be written (a `STATE_WRITE_INTERVAL` and a commit).
const RECENT_DELETE_MS: i64 = 60_000;

/// One partition served here.
struct Served {
    /// The topic it belongs to: a topic deleted and re-created under the same name is another.
    log_topic: Arc<Topic>,
    /// The term it is served in.
    epoch: i32,
    /// Per channel: the record last replicated and the offsets of the batch that carried it.
    written: BTreeMap<String, (ChannelRecord, (i64, i64))>,
    last_write: Instant,
}

pub(super) async fn run(channels: Arc<Channels>, mut stop: watch::Receiver<bool>) {
    let mut served: HashMap<(String, i32), Served> = HashMap::new();
    // Per topic, the sum of its partitions' state versions last followed (and its local
    // channel count): unchanged, the replicated channel list needs no new look.
    let mut followed: HashMap<String, (u64, usize)> = HashMap::new();
    // Per channel, when its command was last forwarded by the catch-up below.
    let mut forwarded: HashMap<(String, String), Instant> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        for topic in channels.topics() {
            let partitions: Vec<Arc<Partition>> =
                topic.log_topic.partitions().iter().filter(|p| p.is_clustered()).cloned().collect();
            if partitions.is_empty() {
                continue;
            }
            let seen = (partitions.iter().map(|p| p.channel_states().version()).sum(), topic.channels().len());
            if followed.get(&*topic.name) != Some(&seen) || channels.has_recent_deletes() {
                channels.follow_replicated_channels(&topic, &partitions);
                followed.insert(topic.name.to_string(), seen);
            }
            if !served.keys().any(|(t, _)| *t == *topic.name) {
                channels.forward_unseen_commands(&topic, &partitions, &mut forwarded);
            }
            // A topic no channel reads (Kafka's) costs no leadership confirmation round; one
            // whose last channel went is still visited, to replicate its tombstones.
            if topic.channels().is_empty() && !served.keys().any(|(t, _)| *t == *topic.name) {
                continue;
            }
            for partition in &partitions {
                let key = (topic.name.to_string(), partition.index);
                follow_leadership(&channels, &topic, partition, &mut served, &key).await;
                if let Some(held) = served.get_mut(&key) {
                    if held.last_write.elapsed() >= STATE_WRITE_INTERVAL {
                        held.last_write = Instant::now();
                        write_states(&topic, partition, held).await;
                    }
                }
            }
        }
        let topics = channels.topics.read().map(|t| t.clone()).unwrap_or_default();
        served.retain(|(name, _), held| topics.get(name).is_some_and(|t| Arc::ptr_eq(&t.log_topic, &held.log_topic)));
        followed.retain(|name, _| topics.contains_key(name));
        forwarded.retain(|_, at| at.elapsed() < FORWARD_RETRY);
    }
}

/// Starts or stops serving `partition` as this node's leadership of it changed.
async fn follow_leadership(
    channels: &Channels,
    topic: &NsqTopic,
    partition: &Arc<Partition>,
    served: &mut HashMap<(String, i32), Served>,
    key: &(String, i32),
) {
    let role = partition.role(channels.broker.node_id());
    let leading = role.is_leader.then_some(role.epoch);
    let held = served.get(key).filter(|s| Arc::ptr_eq(&s.log_topic, &topic.log_topic)).map(|s| s.epoch);
    if held != leading {
        if held.is_some() {
            served.remove(key);
            topic.channels().iter().for_each(|c| c.stop_serving(partition.index));
            tracing::info!(topic = %topic.name, partition = partition.index, held = ?held, leading = ?leading,
                "channels no longer served here");
        }
        let Some(epoch) = leading else { return };
        if !caught_up(partition).await {
            tracing::warn!(topic = %topic.name, partition = partition.index, "leadership not confirmed; channels not served yet");
            return;
        }
        let states = partition.channel_states().snapshot();
        let all = topic.channels();
        for channel in &all {
            channel.serve_partition(partition, live_record(&states, channel));
        }
        tracing::info!(topic = %topic.name, partition = partition.index, epoch, channels = all.len(),
            states = states.len(), "channels served here from the replicated state");
        let written = states.into_iter().map(|(name, record)| (name, (record, (-1, -1)))).collect();
        let log_topic = Arc::clone(&topic.log_topic);
        served.insert(key.clone(), Served { log_topic, epoch, written, last_write: Instant::now() });
        return;
    }
    if held.is_some() {
        // Channels created since the partition was taken over start on it too.
        let states = partition.channel_states().snapshot();
        for channel in topic.channels().iter().filter(|c| !c.serves(partition.index)) {
            channel.serve_partition(partition, live_record(&states, channel));
        }
    }
}

/// A durable channel's replicated record, unless it is a tombstone (ephemeral channels keep
/// no state).
fn live_record<'a>(states: &'a BTreeMap<String, ChannelRecord>, channel: &Channel) -> Option<&'a ChannelRecord> {
    states.get(&*channel.name).filter(|r| !r.deleted && !channel.ephemeral)
}

/// Confirms the leadership with a majority, then waits until the partition shows everything
/// its log holds (so every state batch committed before this term has been applied here).
async fn caught_up(partition: &Partition) -> bool {
    let Some(replica) = partition.replica() else { return false };
    if !matches!(tokio::time::timeout(LOAD_WAIT, replica.confirm_leadership()).await, Ok(true)) {
        return false;
    }
    let target = partition.written_end_offset();
    let mut visible = partition.subscribe();
    let reached = tokio::time::timeout(LOAD_WAIT, visible.wait_for(|end| *end >= target)).await;
    matches!(reached, Ok(Ok(_)))
}

/// Replicates the states of every durable channel served on `partition` when any changed,
/// and a tombstone for each channel deleted here since: it covers every incarnation created
/// before now, on whichever node.
async fn write_states(topic: &NsqTopic, partition: &Arc<Partition>, held: &mut Served) {
    let durable: Vec<Arc<Channel>> = topic.channels().into_iter().filter(|c| !c.ephemeral).collect();
    let mut records: Vec<(String, ChannelRecord)> =
        durable.iter().filter_map(|c| Some((c.name.to_string(), c.partition_record(partition.index)?))).collect();
    if let Some(pause) = topic.pause_record(false) {
        records.push((TOPIC_RECORD.to_string(), pause));
    }
    let changed = records.iter().any(|(name, record)| match held.written.get(name) {
        None => true,
        Some((old, (first, last))) => old != record && (*first < 0 || old.past_own_batch(*first, *last) != *record),
    });
    for (name, (old, _)) in &held.written {
        if !old.deleted && !records.iter().any(|(n, _)| n == name) {
            let tombstone = ChannelRecord { created_ms: now_ms(), deleted: true, ..ChannelRecord::default() };
            tracing::info!(topic = %topic.name, partition = partition.index, channel = %name,
                "channel gone here: its tombstone is replicated");
            records.push((name.clone(), tombstone));
        }
    }
    let deleted = records.iter().any(|(_, r)| r.deleted);
    if !(changed || deleted) {
        return;
    }
    let batch = match replicated_state::encode(&records, now_ms()) {
        Ok(batch) => batch,
        Err(e) => return tracing::warn!(topic = %topic.name, error = %e, "cannot encode channel state"),
    };
    match tokio::time::timeout(WRITE_WAIT, partition.append(batch, Durability::Committed)).await {
        Ok(Ok(outcome)) => {
            let range = (outcome.base_offset, outcome.last_offset);
            for (name, record) in records {
                held.written.insert(name, (record, range));
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(topic = %topic.name, partition = partition.index, error = %e, "channel state not replicated")
        }
        Err(_) => {
            tracing::warn!(topic = %topic.name, partition = partition.index, "channel state not committed in time")
        }
    }
}

impl NsqTopic {
    /// The topic's pause as replicated (`command`: forwarded by a node leading none), once
    /// it was ever set in this process or learned from the cluster.
    fn pause_record(&self, command: bool) -> Option<ChannelRecord> {
        let paused_ms = self.paused_ms.load(Ordering::Relaxed);
        (paused_ms > 0).then(|| ChannelRecord {
            paused: self.is_paused(),
            paused_ms,
            command,
            ..ChannelRecord::default()
        })
    }
}

impl Channels {
    fn has_recent_deletes(&self) -> bool {
        !self.recent_deletes.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Creates here the channels the replicated states of `partitions` name, and deletes the
    /// local channels a tombstone there covers (an incarnation created no later than it).
    fn follow_replicated_channels(&self, topic: &NsqTopic, partitions: &[Arc<Partition>]) {
        let mut alive: BTreeMap<String, Origin> = BTreeMap::new();
        let mut deleted_up_to: BTreeMap<String, i64> = BTreeMap::new();
        // Per channel, the latest pause and empty any partition's record carries.
        let mut commands: BTreeMap<String, ChannelRecord> = BTreeMap::new();
        {
            let mut recent = self.recent_deletes.lock().unwrap_or_else(|p| p.into_inner());
            let now = now_ms();
            recent.retain(|_, at| now - *at < RECENT_DELETE_MS);
            for ((t, name), at) in recent.iter() {
                if *t == *topic.name {
                    deleted_up_to.insert(name.clone(), *at);
                }
            }
        }
        for partition in partitions {
            for (name, record) in partition.channel_states().snapshot() {
                if record.deleted {
                    let up_to = deleted_up_to.entry(name).or_insert(i64::MIN);
                    *up_to = (*up_to).max(record.created_ms);
                } else {
                    commands.entry(name.clone()).or_default().absorb_commands(&record);
                    let origin = Origin { created_ms: record.created_ms, from_tail: record.from_tail };
                    let entry = alive.entry(name).or_insert(origin);
                    if origin.created_ms > entry.created_ms {
                        *entry = origin;
                    }
                }
            }
        }
        for (name, up_to) in &deleted_up_to {
            // A channel made here after the delete (a consumer subscribing again) stays.
            if topic.channel(name).is_some_and(|c| c.origin().created_ms <= *up_to) {
                if let Err(e) = self.delete_channel(&topic.name, name) {
                    tracing::warn!(topic = %topic.name, channel = %name, error = %e, "cannot delete channel deleted elsewhere");
                }
            }
        }
        for (name, origin) in alive {
            let dead = deleted_up_to.get(&name).is_some_and(|up_to| origin.created_ms <= *up_to);
            if dead || topic.channel(&name).is_some() || !super::super::is_valid_nsq_name(&name) {
                continue;
            }
            match self.insert_channel(topic, &name, Some(origin)) {
                Ok(_) => {
                    tracing::info!(topic = %topic.name, channel = %name, "channel created elsewhere in the cluster")
                }
                Err(e) => tracing::warn!(topic = %topic.name, channel = %name, error = %e, "cannot create channel"),
            }
        }
        // Pauses and empties asked on any node take effect here (the latest of each).
        if let Some(pause) = commands.remove(TOPIC_RECORD) {
            self.apply_topic_pause(topic, pause.paused, pause.paused_ms);
        }
        for (name, command) in commands {
            if let Some(channel) = topic.channel(&name) {
                channel.apply_pause(command.paused, command.paused_ms);
                channel.apply_empty(command.emptied_ms);
            }
        }
    }
}

impl Channels {
    /// A channel deleted here: the leadership task writes its tombstone to the partitions this
    /// node leads; a node that leads none sends one to a partition leader (as an NSQ publish is
    /// forwarded), so every node learns of the delete.
    pub(super) fn replicate_delete(&self, topic: &NsqTopic, channel: &str) {
        let tombstone = ChannelRecord { created_ms: now_ms(), deleted: true, ..ChannelRecord::default() };
        self.forward_record(topic, channel, tombstone, "delete");
    }

    /// A channel created, paused or emptied here: the leadership task writes its state (with
    /// the new pause or empty) to the partitions this node leads; a node that leads none sends
    /// a command record (incarnation, pause, empty, no position) to a partition leader. Either
    /// way every replica of that partition applies it, and every node (each partition's
    /// leader among them) creates the channel and takes the pause or empty from there.
    pub(in crate::channel) fn replicate_command(&self, channel: &Channel) {
        if self.broker.cluster().is_none() || channel.ephemeral {
            return;
        }
        let Some(topic) = self.topic(&channel.topic) else { return };
        self.forward_record(&topic, &channel.name, channel.command_record(), "command");
    }

    /// A topic paused or unpaused here: as a channel's pause (`replicate_command`).
    pub(in crate::channel) fn replicate_topic_pause(&self, topic: &NsqTopic) {
        if let (Some(_), Some(pause)) = (self.broker.cluster(), topic.pause_record(true)) {
            self.forward_record(topic, TOPIC_RECORD, pause, "topic pause");
        }
    }

    /// A topic pause asked at `at_ms` on another node; an older one than the last applied
    /// here changes nothing. Recorded on disk as a local pause is.
    fn apply_topic_pause(&self, topic: &NsqTopic, paused: bool, at_ms: i64) {
        if at_ms <= topic.paused_ms.load(Ordering::Relaxed) {
            return;
        }
        topic.paused_ms.store(at_ms, Ordering::Relaxed);
        if !super::super::is_ephemeral(&topic.name) {
            if let Err(e) = super::super::topic_pause::write(&self.dir.join(&*topic.name), paused) {
                tracing::warn!(topic = %topic.name, error = %e, "cannot record topic pause");
            }
        }
        topic.paused.store(paused, Ordering::Relaxed);
        topic.channels().iter().for_each(|c| c.wake());
        tracing::info!(topic = %topic.name, paused, "topic pause taken from the cluster");
    }

    /// On a node serving no partition of `topic`: forwards again (at most every
    /// `FORWARD_RETRY`) each durable channel whose incarnation, pause or empty no partition's
    /// replicated state shows yet.
    fn forward_unseen_commands(
        &self,
        topic: &NsqTopic,
        partitions: &[Arc<Partition>],
        forwarded: &mut HashMap<(String, String), Instant>,
    ) {
        let channels: Vec<Arc<Channel>> = topic.channels().into_iter().filter(|c| !c.ephemeral).collect();
        if channels.is_empty() {
            return;
        }
        // Only the partitions replicated here show what the cluster recorded; with none (a
        // replication factor below the node count), this node cannot tell and does not retry.
        let states: Vec<BTreeMap<String, ChannelRecord>> =
            partitions.iter().filter(|p| p.replica().is_some()).map(|p| p.channel_states().snapshot()).collect();
        if states.is_empty() {
            return;
        }
        for channel in channels {
            let mine = channel.command_record();
            // Any live record of the name makes the channel known (another node's concurrent
            // creation of it counts too); its pause and empty must be at least ours.
            let seen = states
                .iter()
                .filter_map(|s| s.get(&*channel.name))
                .any(|r| !r.deleted && r.paused_ms >= mine.paused_ms && r.emptied_ms >= mine.emptied_ms);
            let key = (topic.name.to_string(), channel.name.to_string());
            if seen || forwarded.get(&key).is_some_and(|at| at.elapsed() < FORWARD_RETRY) {
                continue;
            }
            forwarded.insert(key, Instant::now());
            self.forward_record(topic, &channel.name, mine, "command (again)");
        }
    }

    /// Sends `record` for `channel` to a leader of one of the topic's partitions, unless this
    /// node leads one (its leadership task replicates the channel's state there).
    fn forward_record(&self, topic: &NsqTopic, channel: &str, record: ChannelRecord, what: &'static str) {
        let node = self.broker.node_id();
        if topic.log_topic.partitions().iter().any(|p| p.role(node).is_leader) {
            return;
        }
        let (Some(cluster), Ok(handle)) = (self.broker.cluster(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let batch = match replicated_state::encode(&[(channel.to_string(), record)], now_ms()) {
            Ok(batch) => batch,
            Err(e) => return tracing::warn!(topic = %topic.name, error = %e, what, "cannot encode a channel record"),
        };
        let (cluster, log_topic, channel) = (Arc::clone(cluster), topic.log_topic.name.clone(), channel.to_string());
        handle.spawn(async move {
            match cluster.forward_publish(&log_topic, batch).await {
                Ok(()) => {
                    tracing::info!(topic = %log_topic, channel, what, "channel change forwarded to a partition leader")
                }
                Err(e) => {
                    tracing::warn!(topic = %log_topic, channel, error = %e, what, "channel change not replicated")
                }
            }
        });
    }
}
