//! One partition: its log, its idempotent-producer state, and a signal that wakes
//! waiting readers (long-poll fetch, NSQ dispatch) when its visible end moves.
//!
//! Visibility is its own watermark: under the `always` flush policy readers see only
//! records below the durable watermark (fsynced), so no consumer reads a record that a
//! power loss could take back; under `interval` and `os` they see everything written.

use crate::error::{BrokerError, BrokerResult, LogError};
use crate::health::StorageHealth;
use crate::producer_state::{ProducerState, SequenceCheck};
use crate::replication::{Proposal, Proposer, Replica, Role};
use sluice_log::batch::{self, BatchHeader};
use sluice_log::{
    AppendError, Durable, FirstBatch, FlushPolicy, LogConfig, PartitionLog, ReadError, ReadResult, TimestampHit,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{oneshot, watch};

/// Segments scanned on open to rebuild idempotent producer state: the newest two cover
/// every producer that wrote recently enough to still be retrying.
const PRODUCER_STATE_SEGMENTS: usize = 2;

/// How long an append must last before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written to the log (page cache): Kafka acks=0/1.
    Written,
    /// Also fsynced when the topic's flush policy is `always`: Kafka acks=all.
    Committed,
}

/// Offsets an append was given (or, for a retried idempotent batch, had been given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
}

pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    /// Bumped when leadership changes; fixed at 0 until clustering exists.
    pub leader_epoch: i32,
    /// Shared with the flusher that runs on a blocking thread.
    log: Arc<PartitionLog>,
    /// Serialises sequence check + append so a retry can't race its original.
    producers: Mutex<ProducerState>,
    /// The visible end (`log_end_offset`), published whenever it moves: after an append
    /// (`interval`, `os`) or a flusher round (`always`).
    end_offset: Arc<watch::Sender<i64>>,
    /// Messages and bytes in (counted here) and out (counted by the listeners that serve them).
    pub traffic: Traffic,
    /// Told of every failed and successful write, so the broker knows when storage fails.
    health: Arc<StorageHealth>,
    /// Set once when the partition joins its Raft group (cluster mode): appends then go
    /// through the proposer and the visible end is the committed offset.
    replication: OnceLock<Replication>,
    /// Whether `replication` is set, shared with the durable-watermark listener so a
    /// replicated partition never shows what is fsynced here but not yet committed.
    replicated: Arc<AtomicBool>,
    /// Replicated: the offset after the last committed and applied record (Kafka's high
    /// watermark).
    committed_end: AtomicI64,
    /// Part of a cluster: without its Raft group (not started yet, or this node is not a
    /// replica) the partition takes no append, so nothing is ever written here unreplicated.
    clustered: AtomicBool,
    /// Replicated: the latest NSQ channel state per channel applied from this partition's log.
    channel_states: crate::channel::ChannelStates,
}

/// A partition's replication: its group, and the task that feeds proposals to it in order.
struct Replication {
    replica: Arc<dyn Replica>,
    proposer: Proposer,
}

/// What `submit` did with a produce: appended here (single node), or handed to replication.
pub enum Submitted {
    Written(AppendOutcome),
    Replicating {
        /// The outcome once the leader's log holds the batches (acks=1); closed unanswered if
        /// they never get there.
        written: oneshot::Receiver<AppendOutcome>,
        /// The outcome once committed by a majority (acks=all), or the failure.
        committed: oneshot::Receiver<BrokerResult<AppendOutcome>>,
    },
}

/// Cumulative traffic through one partition since the process started (Prometheus
/// counters; the admin API and console derive rates from them).
#[derive(Debug, Default)]
pub struct Traffic {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Traffic {
    /// Records served to a consumer (Kafka fetch, NSQ delivery).
    pub fn count_out(&self, messages: u64, bytes: u64) {
        self.messages_out.fetch_add(messages, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count_in(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Partition {
    pub fn open(dir: &Path, topic: Arc<str>, index: i32, config: LogConfig) -> BrokerResult<Partition> {
        Partition::open_reporting(dir, topic, index, config, Arc::default())
    }

    /// `open`, reporting write failures and successes to the broker's `health`.
    pub fn open_reporting(
        dir: &Path,
        topic: Arc<str>,
        index: i32,
        config: LogConfig,
        health: Arc<StorageHealth>,
    ) -> BrokerResult<Partition> {
        let log = PartitionLog::open(dir, config).map_err(|e| log_error(&topic, index, e))?;
        // The log names only the segment file; operators search by topic and partition
        // (`sluice_log_recovery_truncated_bytes_total` counts the same bytes).
        let recovered = log.recovery_report();
        if recovered.truncated_bytes > 0 {
            tracing::warn!(topic = %topic, partition = index, dropped_bytes = recovered.truncated_bytes,
                log_end_offset = log.log_end_offset(), "recovery truncated a torn or corrupt log tail");
        }
        let mut producers = ProducerState::new(crate::producer_state::ProducerLimits::default());
        let headers = log.recent_batch_headers(PRODUCER_STATE_SEGMENTS).map_err(|e| log_error(&topic, index, e))?;
        for header in &headers {
            producers.restore(header);
        }
        let end_offset = Arc::new(watch::channel(log.log_end_offset()).0);
        let visible = Arc::clone(&end_offset);
        let replicated = Arc::new(AtomicBool::new(false));
        let follows_commit = Arc::clone(&replicated);
        // Under `os`/`interval` the visible end is the written end, past any durable offset,
        // so this only ever moves it under `always`.
        log.on_durable(move |durable| {
            if follows_commit.load(Ordering::Acquire) {
                return;
            }
            visible.send_if_modified(|end| {
                let moved = durable.offset > *end;
                *end = (*end).max(durable.offset);
                moved
            });
        });
        Ok(Partition {
            topic,
            index,
            leader_epoch: 0,
            log: Arc::new(log),
            producers: Mutex::new(producers),
            end_offset,
            traffic: Traffic::default(),
            health,
            replication: OnceLock::new(),
            replicated,
            committed_end: AtomicI64::new(0),
            clustered: AtomicBool::new(false),
            channel_states: crate::channel::ChannelStates::default(),
        })
    }

    /// Appends one or more v2 batches and waits for the durability asked for.
    pub async fn append(self: &Arc<Self>, records: Vec<u8>, durability: Durability) -> BrokerResult<AppendOutcome> {
        self.submit(records)?.wait(self, durability).await
    }

    /// Starts an append: written at once on a single node, proposed to the partition's Raft
    /// group when replicated (refused at once when this node does not lead it).
    pub fn submit(&self, mut records: Vec<u8>) -> BrokerResult<Submitted> {
        let Some(replication) = self.replication.get() else {
            if self.clustered.load(Ordering::Acquire) {
                return Err(BrokerError::NotLeader { leader: None });
            }
            return self.append_written(&mut records).map(Submitted::Written);
        };
        let role = replication.replica.role();
        if !role.is_leader {
            return Err(BrokerError::NotLeader { leader: role.leader });
        }
        let headers = self.stamp_batches(&mut records)?;
        if headers.iter().any(|h| h.is_transactional()) {
            return Err(BrokerError::TransactionsUnsupported);
        }
        let (written, written_rx) = oneshot::channel();
        let (reply, committed) = oneshot::channel();
        replication.proposer.submit(Proposal { batches: records, headers, written, reply })?;
        Ok(Submitted::Replicating { written: written_rx, committed })
    }

    /// Joins the partition to its Raft group: from now on appends are proposed through
    /// `replica` and readers see only what is committed. Call once, inside the runtime.
    pub fn attach_replica(self: &Arc<Self>, replica: Arc<dyn Replica>) -> BrokerResult<()> {
        let proposer = Proposer::start(Arc::downgrade(self), Arc::clone(&replica));
        self.committed_end.store(self.log.log_start_offset(), Ordering::Release);
        self.replication
            .set(Replication { replica, proposer })
            .map_err(|_| BrokerError::Storage(format!("{}-{} is already replicated", self.topic, self.index)))?;
        self.replicated.store(true, Ordering::Release);
        let start = self.log.log_start_offset();
        self.end_offset.send_replace(start);
        Ok(())
    }

    /// Marks the partition as part of a cluster: from now on it appends only through its Raft
    /// group (`attach_replica`), refusing appends until then.
    pub fn mark_clustered(&self) {
        self.clustered.store(true, Ordering::Release);
    }

    /// Whether the partition is part of a cluster (`mark_clustered`).
    pub fn is_clustered(&self) -> bool {
        self.clustered.load(Ordering::Acquire)
    }

    /// The partition's replication, when it is part of a cluster.
    pub fn replica(&self) -> Option<&Arc<dyn Replica>> {
        self.replication.get().map(|r| &r.replica)
    }

    /// This node's view of the partition's leadership: always the leader on a single node.
    pub fn role(&self, node_id: i32) -> Role {
        match self.replica() {
            Some(replica) => replica.role(),
            None if self.clustered.load(Ordering::Acquire) => Role { leader: None, epoch: 0, is_leader: false },
            None => Role { leader: Some(node_id), epoch: self.leader_epoch, is_leader: true },
        }
    }

    /// Refuses a read or offset lookup on a node that does not lead the partition, as
    /// Kafka does (`NOT_LEADER_OR_FOLLOWER`): followers serve no clients yet.
    pub fn check_leader(&self) -> BrokerResult<()> {
        match self.role(-1) {
            role if !role.is_leader => Err(BrokerError::NotLeader { leader: role.leader }),
            _ => Ok(()),
        }
    }

    /// Checks a request's `current_leader_epoch` (KIP-320; -1: the client does not say)
    /// against this node's view of the partition's leader epoch.
    pub fn check_leader_epoch(&self, requested: i32) -> BrokerResult<()> {
        let current = self.role(-1).epoch;
        match requested {
            r if r < 0 || r == current => Ok(()),
            r if r < current => Err(BrokerError::FencedLeaderEpoch { requested: r, current }),
            r => Err(BrokerError::UnknownLeaderEpoch { requested: r, current }),
        }
    }

    /// Replicated: forgets the producer state read back from the local log on open, before the
    /// partition's Raft group starts applying. That log may end in a suffix that was never
    /// committed and that the group will truncate; a batch remembered from it would answer a
    /// retry as a duplicate at offsets that end up holding other records. The group re-applies
    /// every committed entry (`on_applied`), which rebuilds the state from what is committed.
    pub fn forget_restored_producers(&self) -> BrokerResult<()> {
        let mut producers =
            self.producers.lock().map_err(|_| BrokerError::Storage("producer state lock poisoned".into()))?;
        *producers = ProducerState::new(crate::producer_state::ProducerLimits::default());
        Ok(())
    }

    /// Replicated: batches committed and applied on this replica. Their producers' state is
    /// recorded (so the next leader answers retries with the original offsets), and NSQ
    /// channel-state batches applied (so the next leader serves its channels from them).
    /// `first_offset` is the offset of the first record.
    pub fn on_applied(&self, batches: &[u8], first_offset: i64) {
        let Ok(mut producers) = self.producers.lock() else { return };
        let mut at = 0;
        let mut offset = first_offset;
        while let Some(rest) = batches.get(at..).filter(|r| !r.is_empty()) {
            let Ok(header) = BatchHeader::parse(rest) else { break };
            producers.record(&header);
            if header.is_control() {
                self.channel_states.apply(&rest[..header.total_len().min(rest.len())], offset);
            }
            offset += i64::from(header.last_offset_delta) + 1;
            at += header.total_len().max(batch::BATCH_HEADER_LEN);
        }
    }

    /// Replicated: the latest NSQ channel states this replica applied.
    pub fn channel_states(&self) -> &crate::channel::ChannelStates {
        &self.channel_states
    }

    /// Replicated: the committed end moved (or, after a snapshot, was reset); readers wake.
    pub fn set_committed(&self, next_offset: i64) {
        self.committed_end.store(next_offset, Ordering::Release);
        self.end_offset.send_if_modified(|end| std::mem::replace(end, next_offset) != next_offset);
    }

    /// Checks an idempotent batch against the producer state of what is committed.
    pub(crate) fn check_sequence(&self, header: &BatchHeader) -> BrokerResult<SequenceCheck> {
        let producers =
            self.producers.lock().map_err(|_| BrokerError::Storage("producer state lock poisoned".into()))?;
        producers.check(header)
    }

    /// The outcome of a written or committed proposal, counted as traffic in.
    pub(crate) fn outcome(&self, (first, last): (i64, i64)) -> AppendOutcome {
        self.traffic.count_in((last - first + 1).max(0) as u64, 0);
        AppendOutcome { base_offset: first, last_offset: last, log_start_offset: self.log.log_start_offset() }
    }

    /// The shared log, for the partition's Raft storage.
    pub fn log_handle(&self) -> Arc<PartitionLog> {
        Arc::clone(&self.log)
    }

    /// Waits until an appended range is as durable as the topic's flush policy promises
    /// for acks=all: fsynced under `always` (sharing fsyncs with concurrent appends),
    /// at once otherwise.
    pub async fn wait_committed(&self, outcome: AppendOutcome) -> BrokerResult<()> {
        if self.log.config().flush != FlushPolicy::Always {
            return Ok(());
        }
        self.wait_durable(outcome.last_offset + 1).await
    }

    /// Waits, without blocking a runtime thread, until every record below `offset` is
    /// fsynced, whatever the flush policy. Fails once the log is poisoned.
    pub async fn wait_durable(&self, offset: i64) -> BrokerResult<()> {
        self.log.wait_durable(offset).await.map_err(|e| {
            self.health.write_failed(&format!("{}-{}: {e}", self.topic, self.index));
            self.log_error(e)
        })
    }

    /// Offset below which every record is fsynced (the commit point).
    pub fn durable_offset(&self) -> i64 {
        self.log.durable_offset()
    }

    /// A receiver of the durable watermark; `changed()` resolves when it moves or poisons.
    pub fn subscribe_durable(&self) -> watch::Receiver<Durable> {
        self.log.durable_watch()
    }

    /// Appends one or more v2 batches to the log (page cache) and wakes readers. The
    /// caller decides whether to `wait_committed` before acknowledging. Single node only:
    /// a replicated partition appends through `submit`.
    pub fn append_written(&self, records: &mut [u8]) -> BrokerResult<AppendOutcome> {
        if self.replicated.load(Ordering::Acquire) {
            return Err(BrokerError::ReplicationFailed("a replicated partition appends through its Raft group".into()));
        }
        let headers = self.stamp_batches(records)?;
        let mut producers =
            self.producers.lock().map_err(|_| BrokerError::Storage("producer state lock poisoned".into()))?;
        if let [header] = headers.as_slice() {
            if header.is_transactional() {
                return Err(BrokerError::TransactionsUnsupported);
            }
            if let SequenceCheck::Duplicate { first_offset, last_offset } = producers.check(header)? {
                return Ok(AppendOutcome {
                    base_offset: first_offset,
                    last_offset,
                    log_start_offset: self.log.log_start_offset(),
                });
            }
        } else if headers.iter().any(|h| h.producer_id >= 0 && h.base_sequence >= 0) {
            return Err(BrokerError::CorruptMessage("an idempotent produce must carry exactly one batch".into()));
        }
        let info = match self.log.append(records) {
            Ok(info) => info,
            Err(e) => return Err(self.append_failed(e)),
        };
        self.health.write_succeeded();
        let mut offset = info.first_offset;
        for header in &headers {
            let mut stored = *header;
            stored.base_offset = offset;
            producers.record(&stored);
            offset = stored.last_offset() + 1;
        }
        drop(producers);
        let follows_durable = self.follows_durable();
        if info.rolled || follows_durable {
            // The flusher syncs off every lock: a sealed segment, and under `always` every
            // append (readers wait for it), whether or not the producer waits.
            self.log.start_sync(info.last_offset + 1);
        }
        self.traffic.count_in((info.last_offset - info.first_offset + 1) as u64, records.len() as u64);
        if !follows_durable {
            // Concurrent appends publish in any order; the end only moves forward.
            let end = info.last_offset + 1;
            self.end_offset.send_if_modified(|e| std::mem::replace(e, (*e).max(end)) < end);
        }
        Ok(AppendOutcome {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_start_offset: info.log_start_offset,
        })
    }

    /// Maps a failed append; storage failures (not bad input) are reported to `health`.
    fn append_failed(&self, e: AppendError) -> BrokerError {
        if matches!(e, AppendError::Io(_) | AppendError::Poisoned) {
            self.health.write_failed(&format!("{}-{}: {e}", self.topic, self.index));
        }
        self.append_error(e)
    }

    fn log_error(&self, e: impl Into<LogError>) -> BrokerError {
        log_error(&self.topic, self.index, e)
    }

    fn append_error(&self, e: AppendError) -> BrokerError {
        match e {
            AppendError::Corrupt { at, reason } => BrokerError::CorruptMessage(format!("at byte {at}: {reason}")),
            AppendError::TooLarge { size, max } => BrokerError::MessageTooLarge { size, max },
            AppendError::Empty => BrokerError::CorruptMessage("no record batch".into()),
            other => self.log_error(other),
        }
    }

    fn read_error(&self, e: ReadError) -> BrokerError {
        match e {
            ReadError::OffsetOutOfRange { offset, log_start, log_end } => {
                BrokerError::OffsetOutOfRange { offset, log_start, log_end }
            }
            other => self.log_error(other),
        }
    }

    /// Reads each batch header and writes the leader epoch (outside the CRC). The log
    /// validates lengths and CRCs again before it writes anything.
    fn stamp_batches(&self, records: &mut [u8]) -> BrokerResult<Vec<BatchHeader>> {
        let mut headers = Vec::new();
        let mut at = 0;
        while at < records.len() {
            let header = BatchHeader::parse(&records[at..]).map_err(|e| BrokerError::CorruptMessage(e.to_string()))?;
            if header.magic != 2 {
                return Err(BrokerError::CorruptMessage(format!("unsupported magic {}", header.magic)));
            }
            let len = header.total_len();
            if len < batch::BATCH_HEADER_LEN || at + len > records.len() {
                return Err(BrokerError::CorruptMessage("batch length does not match the records size".into()));
            }
            // The log store accepts compacted batches (a leader's log, sent to a follower), so
            // a producer's batch is held to Kafka's exact count here, before it is proposed.
            batch::check_record_count(&header).map_err(|e| BrokerError::CorruptMessage(e.to_string()))?;
            batch::set_leader_epoch(&mut records[at..], self.leader_epoch);
            headers.push(header);
            at += len;
        }
        if headers.is_empty() {
            return Err(BrokerError::CorruptMessage("no record batch".into()));
        }
        Ok(headers)
    }

    /// Whole batches from the one holding `offset`, up to the visible end; the result's
    /// `log_end_offset` is the visible end (the high watermark).
    pub fn read(&self, offset: i64, max_bytes: usize) -> BrokerResult<ReadResult> {
        self.read_limited(offset, max_bytes, FirstBatch::Whole)
    }

    /// `read`, with the choice of whether the first batch may go past `max_bytes`
    /// (`FirstBatch::WithinLimit` for a Fetch's partitions after the first with data).
    pub fn read_limited(&self, offset: i64, max_bytes: usize, first_batch: FirstBatch) -> BrokerResult<ReadResult> {
        let visible = self.log_end_offset();
        let mut read = match offset >= visible {
            // Written but not yet visible: as at the end, nothing to serve yet.
            true if offset <= self.log.log_end_offset() && offset >= self.log.log_start_offset() => {
                ReadResult { bytes: Vec::new(), log_start_offset: self.log.log_start_offset(), log_end_offset: visible }
            }
            _ => self.log.read_limited(offset, max_bytes, first_batch).map_err(|e| self.read_error(e))?,
        };
        read.bytes.truncate(visible_len(&read.bytes, visible));
        read.log_end_offset = read.log_end_offset.min(visible);
        Ok(read)
    }

    /// Whether readers follow the durable watermark rather than the written end.
    fn follows_durable(&self) -> bool {
        self.log.config().flush == FlushPolicy::Always
    }

    pub fn find_by_timestamp(&self, timestamp_ms: i64) -> BrokerResult<Option<TimestampHit>> {
        self.log.find_by_timestamp(timestamp_ms).map_err(|e| self.read_error(e))
    }

    /// The first batch holding the log's largest timestamp, when it is visible (ListOffsets
    /// MAX_TIMESTAMP, KIP-734; Kafka too answers nothing past the high watermark).
    pub fn find_max_timestamp(&self) -> BrokerResult<Option<TimestampHit>> {
        let Some(max_timestamp) = self.log.max_timestamp() else { return Ok(None) };
        let visible = self.log_end_offset();
        Ok(self.find_by_timestamp(max_timestamp)?.filter(|hit| hit.header.base_offset < visible))
    }

    /// A receiver of the log end offset; `changed()` resolves after the next append.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// The visible end, Kafka's high watermark: the durable offset under `always`, the
    /// written end otherwise. Consumers of both protocols, lag and ListOffsets use it.
    pub fn log_end_offset(&self) -> i64 {
        if self.replicated.load(Ordering::Acquire) {
            return self.committed_end.load(Ordering::Acquire);
        }
        let written = self.log.log_end_offset();
        match self.follows_durable() {
            true => self.log.durable_offset().min(written),
            false => written,
        }
    }

    /// The next offset the log will assign, visible or not.
    pub fn written_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }
}

fn log_error(topic: &str, index: i32, e: impl Into<LogError>) -> BrokerError {
    BrokerError::Log { partition: format!("{topic}-{index}"), source: e.into() }
}

/// Bytes of the whole batches in `bytes` that lie below `visible`. The durable watermark
/// always falls between two appends, so no batch straddles it.
fn visible_len(bytes: &[u8], visible: i64) -> usize {
    let mut at = 0;
    while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
        match BatchHeader::parse(rest) {
            Ok(header) if header.base_offset < visible => at += header.total_len(),
            _ => break,
        }
    }
    at.min(bytes.len())
}

impl Submitted {
    /// Waits for the durability asked for: on a single node, the fsync under `always` for
    /// acks=all; replicated, the leader's own write for acks=1 (Kafka's: lost if the leader
    /// fails before a majority has it) and the commit by a majority for acks=all.
    pub async fn wait(self, partition: &Partition, durability: Durability) -> BrokerResult<AppendOutcome> {
        let stopped = |_| BrokerError::ReplicationFailed("the partition's proposer stopped".into());
        match self {
            Submitted::Written(outcome) => {
                if durability == Durability::Committed {
                    partition.wait_committed(outcome).await?;
                }
                Ok(outcome)
            }
            Submitted::Replicating { written, committed } => match durability {
                Durability::Written => tokio::select! {
                    biased;
                    Ok(outcome) = written => Ok(outcome),
                    result = committed => result.map_err(stopped)?,
                },
                Durability::Committed => committed.await.map_err(stopped)?,
            },
        }
    }
}
