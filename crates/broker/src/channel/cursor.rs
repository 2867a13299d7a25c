//! One NSQ channel: a durable cursor over every partition of its topic's log (in a cluster,
//! over the partitions this node leads: `serving`).

mod serving;

use super::checkpoint::{self, Checkpoint, CursorState, PendingState, CHECKPOINT_VERSION};
use super::id::MessageId;
use super::records::{self, StoredMessage};
use super::{
    due_after, now_ms, CLIENTS_PER_CHANNEL_MAX, READY_BYTES_MAX, READY_TARGET, READ_BYTES_MAX, WINDOW_OFFSETS_MAX,
};
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::topic::Topic;
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// A message handed to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: MessageId,
    pub timestamp_ns: i64,
    pub attempts: u16,
    pub body: Bytes,
    /// The record's headers (NSQ clients ignore them).
    pub headers: records::Headers,
}

/// Why FIN, REQ or TOUCH failed; the texts are nsqd's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOpError {
    NotInFlight,
    NotOwner,
}

impl std::fmt::Display for ChannelOpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelOpError::NotInFlight => "ID not in flight",
            ChannelOpError::NotOwner => "client does not own message",
        })
    }
}

/// One subscribed client as stats show it; shared by its connection and its channel.
#[derive(Debug, Default)]
pub struct ClientInfo {
    pub id: u64,
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub remote_address: String,
    pub connect_ts: i64,
    pub deflate: bool,
    pub snappy: bool,
    pub sample_rate: i32,
    /// nsqd's `/stats` TLS figures (`TLS1.3`, the cipher suite); empty on a plain connection.
    pub tls_version: String,
    pub tls_cipher_suite: String,
    /// nsqd's `/stats` AUTH figures: the identity the auth source named; empty without AUTH.
    pub auth_identity: Option<(String, String)>,
    /// The client's RDY count.
    pub ready_count: AtomicI64,
    pub in_flight_count: AtomicI64,
    pub message_count: AtomicU64,
    pub finish_count: AtomicU64,
    pub requeue_count: AtomicU64,
}

/// A channel's figures for `/stats`.
#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    pub depth: i64,
    pub in_flight_count: usize,
    pub deferred_count: usize,
    pub message_count: u64,
    pub requeue_count: u64,
    pub timeout_count: u64,
    /// Messages finished (FIN) on this channel since the process started.
    pub finish_count: u64,
    pub paused: bool,
    pub clients: Vec<Arc<ClientInfo>>,
}

/// Per partition: what is read, what is finished.
#[derive(Debug, Clone)]
struct Cursor {
    /// Next offset to read from the log.
    next: i64,
    /// Every offset below is finished.
    floor: i64,
    /// Finished offsets at or above `floor` (at most `WINDOW_OFFSETS_MAX`).
    finished: BTreeSet<i64>,
}

impl Cursor {
    fn at(offset: i64) -> Cursor {
        Cursor { next: offset, floor: offset, finished: BTreeSet::new() }
    }

    fn finish(&mut self, offset: i64) {
        if offset < self.floor {
            return;
        }
        self.finished.insert(offset);
        while self.finished.remove(&self.floor) {
            self.floor += 1;
        }
    }

    fn is_finished(&self, offset: i64) -> bool {
        offset < self.floor || self.finished.contains(&offset)
    }

    /// Adds what `other` knows finished (of the same partition); reading resumes at the
    /// new floor.
    fn merge_finished(&mut self, other: &Cursor) {
        if other.floor > self.floor {
            self.floor = other.floor;
            self.finished = self.finished.split_off(&other.floor);
        }
        for offset in other.finished.iter().copied() {
            self.finish(offset);
        }
        while self.finished.remove(&self.floor) {
            self.floor += 1;
        }
        self.next = self.floor;
    }
}

#[derive(Debug, Clone)]
struct Pending {
    id: MessageId,
    timestamp_ms: i64,
    body: Bytes,
    attempts: u16,
    defer_until_ms: Option<i64>,
    headers: records::Headers,
}

#[derive(Debug)]
struct InFlight {
    msg: Pending,
    client: u64,
    deadline: Instant,
    delivered_at: Instant,
}

/// Attempts and deferral remembered from a checkpoint until the message is read again.
#[derive(Debug, Clone, Copy)]
struct Restored {
    attempts: u16,
    defer_until_ms: Option<i64>,
}

/// Stale entries (finished or touched messages) the deadline heap may hold beyond twice
/// the in-flight count before it is rebuilt from the in-flight set: keeps it bounded by
/// in-flight under a TOUCH loop or a fast FIN consumer, at amortised O(1) per entry.
pub(super) const DEADLINE_STALE_MAX: usize = 1024;

#[derive(Debug, Default)]
struct State {
    cursors: BTreeMap<i32, Cursor>,
    /// Read and due, waiting for a client with RDY.
    ready: VecDeque<Pending>,
    /// Body bytes in `ready` (bounded by `READY_BYTES_MAX` for read-ahead).
    ready_bytes: usize,
    /// Bumped when the cursors are reset (`empty`): a read made outside the lock before
    /// that is dropped instead of queued.
    epoch: u64,
    in_flight: HashMap<MessageId, InFlight>,
    /// In-flight deadlines; stale entries (finished or touched) are skipped when popped,
    /// and the heap is rebuilt when they pile up (`DEADLINE_STALE_MAX`).
    deadlines: BinaryHeap<Reverse<(Instant, MessageId)>>,
    /// REQ-with-delay and DPUB messages not yet due.
    deferred: HashMap<MessageId, Pending>,
    due: BinaryHeap<Reverse<(i64, MessageId)>>,
    restored: HashMap<MessageId, Restored>,
    /// In a cluster: what this node saw finished on partitions it stopped serving (a
    /// leadership lost while it runs). FINs are facts; if it leads such a partition again, they
    /// are merged into the replicated state, so FINs not yet replicated when it lost the
    /// leadership (the last state interval) are not delivered again.
    left: BTreeMap<i32, Cursor>,
}

impl State {
    fn push_ready(&mut self, msg: Pending) {
        self.ready_bytes += msg.body.len();
        self.ready.push_back(msg);
    }

    fn push_ready_front(&mut self, msg: Pending) {
        self.ready_bytes += msg.body.len();
        self.ready.push_front(msg);
    }

    fn pop_ready(&mut self) -> Option<Pending> {
        let msg = self.ready.pop_front()?;
        self.ready_bytes -= msg.body.len();
        Some(msg)
    }

    fn push_deadline(&mut self, deadline: Instant, id: MessageId) {
        self.deadlines.push(Reverse((deadline, id)));
        if self.deadlines.len() > 2 * self.in_flight.len() + DEADLINE_STALE_MAX {
            self.deadlines = self.in_flight.iter().map(|(id, f)| Reverse((f.deadline, *id))).collect();
        }
    }

    /// Gives back the capacity of the collections that are empty now. Each keeps the
    /// capacity of its busiest moment otherwise (a `HashMap`, `VecDeque` or `BinaryHeap`
    /// never shrinks by itself): with nothing in flight every deadline entry is stale, and
    /// with nothing deferred every timer entry is. Cheap when there is nothing to give back.
    fn release_idle_capacity(&mut self) {
        if self.in_flight.is_empty() {
            self.deadlines.clear();
        }
        if self.deferred.is_empty() {
            self.due.clear();
        }
        shrink_if_empty(&mut self.in_flight, HashMap::len, HashMap::capacity, HashMap::shrink_to);
        shrink_if_empty(&mut self.deadlines, BinaryHeap::len, BinaryHeap::capacity, BinaryHeap::shrink_to);
        shrink_if_empty(&mut self.deferred, HashMap::len, HashMap::capacity, HashMap::shrink_to);
        shrink_if_empty(&mut self.due, BinaryHeap::len, BinaryHeap::capacity, BinaryHeap::shrink_to);
        shrink_if_empty(&mut self.ready, VecDeque::len, VecDeque::capacity, VecDeque::shrink_to);
        shrink_if_empty(&mut self.restored, HashMap::len, HashMap::capacity, HashMap::shrink_to);
    }

    /// Read-ahead may add more: neither the count nor the byte bound is reached.
    fn wants_read_ahead(&self) -> bool {
        self.ready.len() < READY_TARGET && self.ready_bytes < READY_BYTES_MAX
    }
}

/// Capacity an empty collection of a channel keeps (`State::release_idle_capacity`): enough
/// for a trickle of messages without regrowing, small beside the thousands a busy channel holds.
pub(super) const IDLE_CAPACITY_KEPT: usize = 64;

fn shrink_if_empty<C>(c: &mut C, len: fn(&C) -> usize, capacity: fn(&C) -> usize, shrink_to: fn(&mut C, usize)) {
    if len(c) == 0 && capacity(c) > IDLE_CAPACITY_KEPT {
        shrink_to(c, IDLE_CAPACITY_KEPT);
    }
}

/// One read for the ready queue, made outside the channel's lock.
struct ReadAhead {
    partition: i32,
    from: i64,
    outcome: Result<records::Decoded, BrokerError>,
}

pub struct Channel {
    /// The NSQ topic name (may end in `#ephemeral`).
    pub topic: Arc<str>,
    pub name: Arc<str>,
    pub ephemeral: bool,
    log_topic: Arc<Topic>,
    /// Checkpoint file; `None` for ephemeral channels and topics.
    path: Option<PathBuf>,
    max_msg_timeout: Duration,
    state: Mutex<State>,
    /// Wakes clients waiting for a message (append, requeue, timeout, unpause).
    notify: Arc<Notify>,
    paused: AtomicBool,
    /// In a cluster: when `paused` was last set, and when the channel was last emptied
    /// (`serving.rs`: commands merged by time across nodes; 0 is never).
    paused_ms: AtomicI64,
    emptied_ms: AtomicI64,
    topic_paused: Arc<AtomicBool>,
    deleted: AtomicBool,
    /// State changed since the last checkpoint.
    dirty: AtomicBool,
    clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    message_count: AtomicU64,
    requeue_count: AtomicU64,
    timeout_count: AtomicU64,
    /// FINs, kept here because a client's own count leaves with the client (`/metrics`).
    finish_count: AtomicU64,
    /// Partitions whose appends already wake this channel.
    watched: Mutex<usize>,
    /// Dropped with the channel: ends its partition watchers.
    closed: watch::Sender<()>,
    /// Held while the checkpoint file is written or removed, so a delete never races a
    /// write that would bring the file back.
    checkpoint_io: Mutex<()>,
    /// Held by the one refill reading the log (outside `state`); others do not wait.
    refilling: Mutex<()>,
    /// When the channel was created (its incarnation in a cluster's replicated state).
    created_ms: i64,
    /// Created after the topic's first channel: a partition it starts on starts at the tail.
    from_tail: bool,
}

pub(super) struct ChannelSpec {
    pub topic: Arc<str>,
    pub name: Arc<str>,
    pub log_topic: Arc<Topic>,
    pub path: Option<PathBuf>,
    pub max_msg_timeout: Duration,
    pub topic_paused: Arc<AtomicBool>,
}

/// How a channel began: its incarnation and where it starts reading a partition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub created_ms: i64,
    pub from_tail: bool,
}

impl Channel {
    /// A new channel starting at each partition's log start (`from_tail == false`) or end.
    /// In a cluster a partition is read only once this node serves it (`serve_partition`).
    pub(super) fn create(spec: ChannelSpec, origin: Origin) -> Arc<Channel> {
        let mut state = State::default();
        for p in spec.log_topic.partitions().iter().filter(|p| !p.is_clustered()) {
            let at = if origin.from_tail { p.log_end_offset() } else { p.log_start_offset() };
            state.cursors.insert(p.index, Cursor::at(at));
        }
        let channel = Channel::new(spec, state, false, origin);
        channel.dirty.store(true, Ordering::Relaxed);
        channel
    }

    /// A channel restored from its checkpoint: everything unfinished is read again. A
    /// clustered partition's state comes from its replicated log instead (`serve_partition`).
    pub(super) fn restore(spec: ChannelSpec, checkpoint: Checkpoint) -> Arc<Channel> {
        let mut state = State::default();
        let partitions = spec.log_topic.partitions();
        let clustered = |index: i32| partitions.iter().any(|p| p.index == index && p.is_clustered());
        for (index, cursor) in checkpoint.partitions {
            if clustered(index) {
                continue;
            }
            // A floor past the log end means the topic was deleted and re-created behind the
            // channel's back (Kafka DeleteTopics): start the new log from its beginning.
            let log_end = partitions.iter().find(|p| p.index == index).map_or(0, |p| p.log_end_offset());
            if cursor.floor > log_end {
                tracing::warn!(topic = %spec.topic, channel = %spec.name, partition = index,
                    floor = cursor.floor, log_end, "channel checkpoint is past the log end; restarting at log start");
                continue;
            }
            let mut restored = Cursor::at(cursor.floor);
            for offset in cursor.finished {
                restored.finish(offset);
            }
            restored.next = restored.floor;
            state.cursors.insert(index, restored);
        }
        for p in checkpoint.pending.into_iter().filter(|p| !clustered(p.partition)) {
            let restored = Restored { attempts: p.attempts, defer_until_ms: p.defer_until_ms };
            state.restored.insert(MessageId::new(p.partition, p.offset), restored);
        }
        let origin = Origin { created_ms: checkpoint.created_ms, from_tail: checkpoint.from_tail };
        Channel::new(spec, state, checkpoint.paused, origin)
    }

    fn new(spec: ChannelSpec, state: State, paused: bool, origin: Origin) -> Arc<Channel> {
        let channel = Arc::new(Channel {
            ephemeral: super::is_ephemeral(&spec.name) || super::is_ephemeral(&spec.topic),
            topic: spec.topic,
            name: spec.name,
            log_topic: spec.log_topic,
            path: spec.path,
            max_msg_timeout: spec.max_msg_timeout,
            state: Mutex::new(state),
            notify: Arc::new(Notify::new()),
            paused: AtomicBool::new(paused),
            paused_ms: AtomicI64::new(0),
            emptied_ms: AtomicI64::new(0),
            topic_paused: spec.topic_paused,
            deleted: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            clients: Mutex::new(HashMap::new()),
            message_count: AtomicU64::new(0),
            requeue_count: AtomicU64::new(0),
            timeout_count: AtomicU64::new(0),
            finish_count: AtomicU64::new(0),
            watched: Mutex::new(0),
            closed: watch::channel(()).0,
            checkpoint_io: Mutex::new(()),
            refilling: Mutex::new(()),
            created_ms: origin.created_ms,
            from_tail: origin.from_tail,
        });
        channel.watch_partitions();
        channel
    }

    /// Wakes this channel's clients on every append to a partition not yet watched.
    fn watch_partitions(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let Ok(mut watched) = self.watched.lock() else { return };
        let partitions = self.log_topic.partitions();
        for p in partitions.iter().skip(*watched) {
            let mut appended = p.subscribe();
            let mut closed = self.closed.subscribe();
            let notify = Arc::clone(&self.notify);
            handle.spawn(async move {
                loop {
                    tokio::select! {
                        changed = appended.changed() => if changed.is_err() { break },
                        _ = closed.changed() => break,
                    }
                    notify.notify_waiters();
                }
            });
        }
        *watched = partitions.len().max(*watched);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for at-least-once.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed) || self.topic_paused.load(Ordering::Relaxed)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    pub fn log_topic(&self) -> &Arc<Topic> {
        &self.log_topic
    }

    /// Registers a subscribed client; false when the channel already has too many.
    pub fn add_client(&self, client: Arc<ClientInfo>) -> bool {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= CLIENTS_PER_CHANNEL_MAX {
            return false;
        }
        clients.insert(client.id, client);
        true
    }

    /// A client left: its in-flight messages go back to the ready queue at once (nsqd lets
    /// them time out; requeueing now only delivers sooner). Returns the clients left.
    pub fn remove_client(&self, client: u64) -> usize {
        let left = {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            clients.remove(&client);
            clients.len()
        };
        let mut st = self.lock();
        let ids: Vec<MessageId> = st.in_flight.iter().filter(|(_, f)| f.client == client).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(flight) = st.in_flight.remove(&id) {
                st.push_ready_front(flight.msg);
            }
        }
        drop(st);
        self.notify.notify_waiters();
        left
    }

    pub fn client_count(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Waits for the next message this client may receive (its in-flight count below its
    /// RDY count). `None` when the channel is deleted. Reading ahead from the log runs on
    /// the blocking pool, never on the async runtime.
    pub async fn next(self: &Arc<Self>, client: &ClientInfo, msg_timeout: Duration) -> Option<Delivery> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_deleted() {
                return None;
            }
            if client.in_flight_count.load(Ordering::Relaxed) < client.ready_count.load(Ordering::Relaxed) {
                if let Some(delivery) = self.pop_ready(client, msg_timeout) {
                    return Some(delivery);
                }
                if !self.is_paused() && self.needs_refill() {
                    let me = Arc::clone(self);
                    if tokio::task::spawn_blocking(move || me.refill()).await.unwrap_or(false) {
                        continue;
                    }
                }
            }
            notified.await;
        }
    }

    /// Wakes every waiting client (RDY or pause changes).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Takes the next ready message, reading ahead from the log first if none is ready.
    /// Blocking (it may read the log): for callers off the async runtime.
    pub fn try_pop(&self, client: &ClientInfo, msg_timeout: Duration) -> Option<Delivery> {
        if self.is_paused() || self.is_deleted() {
            return None;
        }
        if self.lock().ready.is_empty() {
            self.refill();
        }
        self.pop_ready(client, msg_timeout)
    }

    /// Takes the next ready message, if any, and puts it in flight for `client`. Never
    /// reads the log.
    pub fn pop_ready(&self, client: &ClientInfo, msg_timeout: Duration) -> Option<Delivery> {
        if self.is_paused() || self.is_deleted() {
            return None;
        }
        let mut st = self.lock();
        let mut msg = st.pop_ready()?;
        msg.attempts = msg.attempts.saturating_add(1);
        let now = Instant::now();
        let deadline = now + msg_timeout.min(self.max_msg_timeout);
        let delivery = Delivery {
            id: msg.id,
            timestamp_ns: msg.timestamp_ms.saturating_mul(1_000_000),
            attempts: msg.attempts,
            body: msg.body.clone(),
            headers: msg.headers.clone(),
        };
        let id = msg.id;
        st.in_flight.insert(id, InFlight { msg, client: client.id, deadline, delivered_at: now });
        st.push_deadline(deadline, id);
        drop(st);
        self.dirty.store(true, Ordering::Relaxed);
        client.in_flight_count.fetch_add(1, Ordering::Relaxed);
        client.message_count.fetch_add(1, Ordering::Relaxed);
        // Every delivery is served traffic, redeliveries included (as Kafka re-fetches are).
        if let Some(partition) = self.log_topic.partition(delivery.id.partition) {
            partition.traffic.count_out(1, delivery.body.len() as u64);
        }
        Some(delivery)
    }

    /// Nothing is ready but some partition has unread messages within the window.
    fn needs_refill(&self) -> bool {
        let st = self.lock();
        if !st.ready.is_empty() {
            return false;
        }
        let partitions = self.log_topic.partitions();
        partitions.iter().any(|p| !p.is_clustered() && !st.cursors.contains_key(&p.index))
            || partitions.iter().any(|p| {
                st.cursors
                    .get(&p.index)
                    .is_some_and(|c| c.next < p.log_end_offset() && c.next - c.floor < WINDOW_OFFSETS_MAX)
            })
    }

    /// Reads ahead from the log into the ready queue, round-robin over partitions, up to
    /// the count and byte bounds. The reads and decompression run outside the state lock;
    /// a read is queued only if its cursor did not move meanwhile. Blocking. True when the
    /// ready queue or a cursor changed (waiting clients are woken).
    pub(super) fn refill(&self) -> bool {
        let Ok(_only) = self.refilling.try_lock() else { return false };
        let partitions = self.log_topic.partitions();
        let added_partitions = {
            let mut st = self.lock();
            let before = st.cursors.len();
            for p in partitions.iter().filter(|p| !p.is_clustered()) {
                st.cursors.entry(p.index).or_insert_with(|| Cursor::at(p.log_start_offset()));
            }
            st.cursors.len() > before
        };
        if added_partitions {
            self.watch_partitions();
        }
        let mut changed = false;
        // Each round reads every partition once and moves a cursor or stops: bounded.
        for _ in 0..READY_TARGET {
            let (epoch, wanted) = self.plan_reads(&partitions);
            if wanted.is_empty() {
                break;
            }
            let reads: Vec<ReadAhead> = wanted.into_iter().map(read_ahead).collect();
            if !self.apply_reads(epoch, reads) {
                break;
            }
            changed = true;
        }
        if changed {
            self.dirty.store(true, Ordering::Relaxed);
            self.notify.notify_waiters();
        }
        changed
    }

    /// The partitions to read next and from where, unless the ready queue is full.
    fn plan_reads(&self, partitions: &[Arc<Partition>]) -> (u64, Vec<(Arc<Partition>, i64)>) {
        let st = self.lock();
        if !st.wants_read_ahead() {
            return (st.epoch, Vec::new());
        }
        let wanted = partitions
            .iter()
            .filter_map(|p| {
                let cursor = st.cursors.get(&p.index)?;
                let from = cursor.next;
                (from < p.log_end_offset() && from - cursor.floor < WINDOW_OFFSETS_MAX).then(|| (Arc::clone(p), from))
            })
            .collect();
        (st.epoch, wanted)
    }

    /// Queues reads whose cursor is still where the read started. True when any moved.
    fn apply_reads(&self, epoch: u64, reads: Vec<ReadAhead>) -> bool {
        let mut st = self.lock();
        if st.epoch != epoch {
            return false;
        }
        let mut progress = false;
        for read in reads {
            if st.cursors.get(&read.partition).map(|c| c.next) != Some(read.from) {
                continue;
            }
            match read.outcome {
                Ok(decoded) => progress |= self.accept(&mut st, read.partition, read.from, decoded),
                Err(BrokerError::OffsetOutOfRange { log_start, .. }) if read.from < log_start => {
                    // Retention removed what this channel had not read: skip to the start.
                    tracing::warn!(topic = %self.topic, channel = %self.name, partition = read.partition,
                        from = read.from, log_start, "unread messages removed by retention");
                    if let Some(c) = st.cursors.get_mut(&read.partition) {
                        *c = Cursor::at(log_start);
                    }
                    progress = true;
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = read.partition, error = %e, "channel read failed")
                }
            }
        }
        progress
    }

    /// Queues what a read returned; offsets that carry no message (control records, gaps)
    /// count as finished so the floor can pass them. True when the cursor moved.
    fn accept(&self, st: &mut State, partition: i32, from: i64, decoded: records::Decoded) -> bool {
        let now = now_ms();
        let mut expected = from;
        let mut skipped = Vec::new();
        let mut queued = 0u64;
        // Where the cursor ends: the read's end, or the first message left for a later
        // refill because the ready queue reached its byte bound.
        let mut next = decoded.next_offset;
        for m in decoded.messages {
            let full = st.ready_bytes.saturating_add(m.body.len()) > READY_BYTES_MAX;
            if full && !st.ready.is_empty() {
                next = m.offset;
                break;
            }
            skipped.extend(expected..m.offset);
            expected = m.offset + 1;
            let id = MessageId::new(partition, m.offset);
            if st.cursors.get(&partition).is_some_and(|c| c.is_finished(m.offset)) {
                continue;
            }
            let restored = st.restored.remove(&id);
            let pending = to_pending(id, m, restored);
            queued += 1;
            match pending.defer_until_ms {
                Some(due) if due > now => {
                    st.due.push(Reverse((due, id)));
                    st.deferred.insert(id, pending);
                }
                _ => st.push_ready(pending),
            }
        }
        skipped.extend(expected..next);
        self.message_count.fetch_add(queued, Ordering::Relaxed);
        let Some(cursor) = st.cursors.get_mut(&partition) else { return false };
        for offset in skipped {
            cursor.finish(offset);
        }
        let moved = next > cursor.next;
        cursor.next = cursor.next.max(next);
        moved
    }

    fn take_in_flight(&self, st: &mut State, id: MessageId, client: &ClientInfo) -> Result<InFlight, ChannelOpError> {
        match st.in_flight.get(&id) {
            None => return Err(ChannelOpError::NotInFlight),
            Some(f) if f.client != client.id => return Err(ChannelOpError::NotOwner),
            Some(_) => {}
        }
        let flight = st.in_flight.remove(&id).ok_or(ChannelOpError::NotInFlight)?;
        client.in_flight_count.fetch_sub(1, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
        Ok(flight)
    }

    pub fn fin(&self, id: MessageId, client: &ClientInfo) -> Result<(), ChannelOpError> {
        let mut st = self.lock();
        self.take_in_flight(&mut st, id, client)?;
        if let Some(cursor) = st.cursors.get_mut(&id.partition) {
            cursor.finish(id.offset);
        }
        client.finish_count.fetch_add(1, Ordering::Relaxed);
        self.finish_count.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sends an in-flight message back, now or after `delay` (already clamped by the caller).
    pub fn req(&self, id: MessageId, client: &ClientInfo, delay: Duration) -> Result<(), ChannelOpError> {
        let mut st = self.lock();
        let mut msg = self.take_in_flight(&mut st, id, client)?.msg;
        self.requeue_count.fetch_add(1, Ordering::Relaxed);
        client.requeue_count.fetch_add(1, Ordering::Relaxed);
        if delay.is_zero() {
            msg.defer_until_ms = None;
            st.push_ready(msg);
            drop(st);
            self.notify.notify_waiters();
        } else {
            let due = due_after(delay);
            msg.defer_until_ms = Some(due);
            st.due.push(Reverse((due, id)));
            st.deferred.insert(id, msg);
        }
        Ok(())
    }

    /// Resets a message's deadline to now + `msg_timeout`, but never past its first delivery
    /// plus the max message timeout (as nsqd).
    pub fn touch(&self, id: MessageId, client: &ClientInfo, msg_timeout: Duration) -> Result<(), ChannelOpError> {
        let mut st = self.lock();
        let flight = match st.in_flight.get_mut(&id) {
            None => return Err(ChannelOpError::NotInFlight),
            Some(f) if f.client != client.id => return Err(ChannelOpError::NotOwner),
            Some(f) => f,
        };
        let deadline = (Instant::now() + msg_timeout).min(flight.delivered_at + self.max_msg_timeout);
        flight.deadline = deadline;
        st.push_deadline(deadline, id);
        Ok(())
    }

    /// Expires in-flight deadlines and releases due deferred messages. True if any moved.
    pub(super) fn sweep(&self, now: Instant) -> bool {
        let now_wall = now_ms();
        let mut timed_out = Vec::new();
        let mut st = self.lock();
        let mut moved = false;
        while let Some(Reverse((deadline, id))) = st.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            st.deadlines.pop();
            if st.in_flight.get(&id).is_some_and(|f| f.deadline == deadline) {
                if let Some(flight) = st.in_flight.remove(&id) {
                    timed_out.push(flight.client);
                    st.push_ready(flight.msg);
                    moved = true;
                }
            }
        }
        while let Some(Reverse((due, id))) = st.due.peek().copied() {
            if due > now_wall {
                break;
            }
            st.due.pop();
            if let Some(mut msg) = st.deferred.remove(&id) {
                msg.defer_until_ms = None;
                st.push_ready(msg);
                moved = true;
            }
        }
        st.release_idle_capacity();
        drop(st);
        if !timed_out.is_empty() {
            self.timeout_count.fetch_add(timed_out.len() as u64, Ordering::Relaxed);
            let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            for client in timed_out {
                if let Some(info) = clients.get(&client) {
                    info.in_flight_count.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        if moved {
            self.dirty.store(true, Ordering::Relaxed);
            self.notify.notify_waiters();
        }
        moved
    }

    /// Every offset below this is finished on `partition` (`None`: not yet read at all).
    pub fn floor(&self, partition: i32) -> Option<i64> {
        self.lock().cursors.get(&partition).map(|c| c.floor)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused_ms.store(serving::command_time(&self.paused_ms), Ordering::Relaxed);
        self.paused.store(paused, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Drops every queued, in-flight and deferred message and moves to the log end (nsqd's
    /// channel empty). Clients' in-flight counts reset.
    pub fn empty(&self) {
        self.emptied_ms.store(serving::command_time(&self.emptied_ms), Ordering::Relaxed);
        let mut st = self.lock();
        // In a cluster only the partitions served here move: emptying is per node, and
        // nsqadmin empties a channel on every producer lookupd names (every leader).
        let restart = State {
            cursors: self
                .log_topic
                .partitions()
                .iter()
                .filter(|p| !p.is_clustered() || st.cursors.contains_key(&p.index))
                .map(|p| (p.index, Cursor::at(p.log_end_offset())))
                .collect(),
            epoch: st.epoch + 1,
            ..State::default()
        };
        *st = restart;
        drop(st);
        for client in self.clients.lock().unwrap_or_else(|p| p.into_inner()).values() {
            client.in_flight_count.store(0, Ordering::Relaxed);
        }
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// A count that moves with every read-ahead, FIN, REQ and timeout (the sweeper's idle detection).
    pub(super) fn activity(&self) -> u64 {
        [&self.message_count, &self.finish_count, &self.requeue_count, &self.timeout_count]
            .iter()
            .fold(0u64, |n, c| n.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Entries in the deadline heap, live and stale (for tests of its bound and `/metrics`).
    pub fn deadline_entries(&self) -> usize {
        self.lock().deadlines.len()
    }

    /// Body bytes waiting in the ready queue.
    pub fn ready_bytes(&self) -> usize {
        self.lock().ready_bytes
    }

    pub fn stats(&self) -> ChannelStats {
        let st = self.lock();
        let unread: i64 = self
            .log_topic
            .partitions()
            .iter()
            .map(|p| {
                let end = p.log_end_offset();
                // Depth counts messages: not the channel-state control batches (a cluster's).
                st.cursors
                    .get(&p.index)
                    .map_or(0, |c| ((end - c.next).max(0) - p.channel_states().control_offsets_in(c.next, end)).max(0))
            })
            .sum();
        let clients = self.clients.lock().map(|c| c.values().cloned().collect()).unwrap_or_default();
        ChannelStats {
            depth: unread + st.ready.len() as i64,
            in_flight_count: st.in_flight.len(),
            deferred_count: st.deferred.len(),
            message_count: self.message_count.load(Ordering::Relaxed),
            requeue_count: self.requeue_count.load(Ordering::Relaxed),
            timeout_count: self.timeout_count.load(Ordering::Relaxed),
            finish_count: self.finish_count.load(Ordering::Relaxed),
            paused: self.paused.load(Ordering::Relaxed),
            clients,
        }
    }

    /// The checkpoint to write if state changed since the last one (clears the flag).
    pub(super) fn take_checkpoint(&self, force: bool) -> Option<Checkpoint> {
        if self.path.is_none() || self.is_deleted() || !(self.dirty.swap(false, Ordering::Relaxed) || force) {
            return None;
        }
        let st = self.lock();
        let partitions = st
            .cursors
            .iter()
            .map(|(i, c)| (*i, CursorState { floor: c.floor, finished: c.finished.iter().copied().collect() }))
            .collect();
        let mut pending: Vec<PendingState> = Vec::new();
        let mut remember = |m: &Pending| {
            if m.attempts > 0 || m.defer_until_ms.is_some() {
                pending.push(PendingState {
                    partition: m.id.partition,
                    offset: m.id.offset,
                    attempts: m.attempts,
                    defer_until_ms: m.defer_until_ms,
                });
            }
        };
        st.ready.iter().for_each(&mut remember);
        st.in_flight.values().for_each(|f| remember(&f.msg));
        st.deferred.values().for_each(&mut remember);
        for (id, r) in &st.restored {
            pending.push(PendingState {
                partition: id.partition,
                offset: id.offset,
                attempts: r.attempts,
                defer_until_ms: r.defer_until_ms,
            });
        }
        Some(Checkpoint {
            version: CHECKPOINT_VERSION,
            created_ms: self.created_ms,
            from_tail: self.from_tail,
            paused: self.paused.load(Ordering::Relaxed),
            partitions,
            pending,
        })
    }

    /// Writes the checkpoint file (blocking: call off the async runtime), unless the
    /// channel was deleted meanwhile. The one place a checkpoint is written.
    pub(super) fn write_checkpoint(&self, checkpoint: &Checkpoint) {
        let Some(path) = &self.path else { return };
        let _io = self.checkpoint_io.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_deleted() {
            return;
        }
        if let Err(e) = checkpoint::write(path, checkpoint) {
            tracing::error!(path = %path.display(), error = %e, "channel checkpoint failed");
        }
    }

    /// Removes the checkpoint file of a deleted channel, after any write in progress.
    pub(super) fn remove_checkpoint(&self) {
        let Some(path) = &self.path else { return };
        let _io = self.checkpoint_io.lock().unwrap_or_else(|p| p.into_inner());
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot remove channel checkpoint"),
        }
    }
}

/// Reads and decodes one partition from `from` (blocking; no channel lock held).
fn read_ahead((partition, from): (Arc<Partition>, i64)) -> ReadAhead {
    let outcome = partition.read(from, READ_BYTES_MAX).map(|read| records::decode(&read.bytes, from));
    ReadAhead { partition: partition.index, from, outcome }
}

fn to_pending(id: MessageId, m: StoredMessage, restored: Option<Restored>) -> Pending {
    let attempts = restored.map_or(0, |r| r.attempts);
    let defer_until_ms = match (m.defer_until_ms, restored.and_then(|r| r.defer_until_ms)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Pending { id, timestamp_ms: m.timestamp_ms, body: m.body, attempts, defer_until_ms, headers: m.headers }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(offset: i64) -> Pending {
        Pending {
            id: MessageId::new(0, offset),
            timestamp_ms: 0,
            body: Bytes::from_static(b"body"),
            attempts: 1,
            defer_until_ms: None,
            headers: None,
        }
    }

    /// A node leading a partition again merges what it saw finished into the replicated
    /// state: the union of both, reading resumes at the merged floor.
    #[test]
    fn merging_own_fins_keeps_the_union_of_finished_offsets() {
        let mut replicated = Cursor::at(10);
        replicated.finish(12);
        let mut own = Cursor::at(8);
        for offset in [8, 9, 10, 11, 14] {
            own.finish(offset);
        }
        assert_eq!(own.floor, 12);
        replicated.merge_finished(&own);
        assert_eq!((replicated.floor, replicated.next), (13, 13), "10..=12 finished by one or the other");
        assert_eq!(replicated.finished.iter().copied().collect::<Vec<_>>(), vec![14]);

        // Knowledge older than the replicated floor changes nothing.
        let mut ahead = Cursor::at(20);
        ahead.merge_finished(&Cursor::at(5));
        assert_eq!((ahead.floor, ahead.next, ahead.finished.len()), (20, 20, 0));
    }

    /// A channel that was busy and is now empty gives back its collections' peak capacity;
    /// one that still holds messages keeps them and their deadlines.
    #[test]
    fn empty_collections_give_back_their_peak_capacity() {
        let mut st = State::default();
        let now = Instant::now();
        for offset in 0..5_000 {
            let msg = pending(offset);
            st.in_flight.insert(msg.id, InFlight { msg: msg.clone(), client: 1, deadline: now, delivered_at: now });
            st.deadlines.push(Reverse((now, msg.id)));
            st.due.push(Reverse((0, msg.id)));
            st.deferred.insert(msg.id, msg.clone());
            st.restored.insert(msg.id, Restored { attempts: 1, defer_until_ms: None });
            st.push_ready(msg);
        }
        // Drain everything but one in-flight message, as FINs and deliveries would.
        st.in_flight.retain(|id, _| id.offset == 0);
        while st.pop_ready().is_some() {}
        st.deferred.clear();
        st.restored.clear();

        st.release_idle_capacity();
        let kept = 2 * IDLE_CAPACITY_KEPT;
        assert!(st.ready.capacity() <= kept, "ready {}", st.ready.capacity());
        assert!(st.deferred.capacity() <= kept, "deferred {}", st.deferred.capacity());
        assert!(st.restored.capacity() <= kept, "restored {}", st.restored.capacity());
        assert!(st.due.is_empty() && st.due.capacity() <= kept, "due {}", st.due.capacity());
        // Still in flight: the map and its deadlines stay (stale ones go by `push_deadline`).
        assert_eq!(st.in_flight.len(), 1);
        assert_eq!(st.deadlines.len(), 5_000);

        // The last FIN: nothing in flight, so every deadline entry is stale.
        st.in_flight.clear();
        st.release_idle_capacity();
        assert!(st.in_flight.capacity() <= kept, "in_flight {}", st.in_flight.capacity());
        assert!(st.deadlines.is_empty() && st.deadlines.capacity() <= kept, "deadlines {}", st.deadlines.capacity());
    }
}
