//! NSQ channel state replicated with its partition (cluster only).
//!
//! The leader serving a channel on a partition appends that partition's channel states as a
//! control batch (RecordBatch v2 with the control attribute) to the partition's own log,
//! through the same Raft path as an acks=all produce. So the state is replicated, made durable,
//! truncated and caught up exactly as the partition's messages are. Every replica applies the
//! batches it commits (`Partition::on_applied`) to an in-memory map of the latest record per
//! channel (`ChannelStates`), which a new leader serves from.
//!
//! A record's key is Kafka's control-record key, exactly 4 bytes (`i16` version 0, `i16` type of
//! our own: librdkafka refuses a control key of any other size and ignores a type it does not
//! know, as sarama and Java do); its value is JSON: the channel name and its `ChannelRecord`.
//! Kafka clients skip control batches, and every reader of ours goes through
//! `read_v2_records`, which does too.

use crate::error::{BrokerError, BrokerResult};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::{Deserialize, Serialize};
use sluice_log::batch::BatchHeader;
use sluice_records::convert::new_record;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Kafka's control-record key version.
pub const CONTROL_KEY_VERSION: i16 = 0;
/// Our control-record type ("NS"); Kafka's own are 0–6 (markers, KRaft), and its clients ignore
/// types they do not know.
pub const CONTROL_TYPE_CHANNEL_STATE: i16 = 0x4E53;
/// The record name (never a valid channel name) that carries the topic's own pause, written
/// by leaders with their channels' states and forwarded as a command like theirs.
pub const TOPIC_RECORD: &str = "";
/// Largest channel-state batch decoded (bounded by the window: every offset finished or pending).
pub const STATE_BATCH_BYTES_MAX: usize = 64 << 20;

/// One channel's state on one partition, as replicated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelRecord {
    /// When the channel was created (milliseconds since the epoch): its incarnation, so a
    /// deletion (`deleted`) of an older incarnation never removes a re-created channel.
    pub created_ms: i64,
    /// A tombstone: the channel of this incarnation was deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// A channel created after the topic's first starts new partitions at their tail (nsqd).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_tail: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// When `paused` was last set (0: never): pauses asked on different nodes merge by time,
    /// the latest wins.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paused_ms: i64,
    /// When the channel was last emptied (0: never): a leader drops every message of the
    /// partition written before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub emptied_ms: i64,
    /// Sent by a node that leads none of the topic's partitions (`Channels::replicate_command`):
    /// the channel's incarnation, pause and empty, but no position; replicas merge it into the
    /// channel's latest record instead of replacing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub command: bool,
    /// Every offset below is finished.
    #[serde(default)]
    pub floor: i64,
    /// Finished offsets at or above `floor`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<i64>,
    /// Unfinished messages with attempts or a deferral: `[offset, attempts, defer_until_ms]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<(i64, u16, Option<i64>)>,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl ChannelRecord {
    /// Takes the later pause and empty of `other` (same channel, any writer): they are
    /// registers merged by time, so a command is never lost to a state written before it.
    pub fn absorb_commands(&mut self, other: &ChannelRecord) {
        if other.paused_ms > self.paused_ms {
            self.paused = other.paused;
            self.paused_ms = other.paused_ms;
        }
        self.emptied_ms = self.emptied_ms.max(other.emptied_ms);
    }

    /// The same state once `first..=last` (the batch that carried it) is finished too: what
    /// the channel's cursor shows after reading its own state batch, so that read alone never
    /// calls for another write.
    pub fn past_own_batch(&self, first: i64, last: i64) -> ChannelRecord {
        let mut finished: std::collections::BTreeSet<i64> = self.finished.iter().copied().collect();
        finished.extend((first.max(self.floor))..=last);
        let mut floor = self.floor;
        while finished.remove(&floor) {
            floor += 1;
        }
        ChannelRecord { floor, finished: finished.into_iter().collect(), ..self.clone() }
    }
}

/// The latest record per channel of one partition, as this replica applied them.
#[derive(Debug, Default)]
pub struct ChannelStates {
    /// Channel name → (offset of the record, the record).
    latest: Mutex<BTreeMap<String, (i64, ChannelRecord)>>,
    /// Bumped by every batch applied: readers skip work when it has not moved.
    version: AtomicU64,
    /// The offsets of the latest control batches applied, first → last (at most
    /// `CONTROL_RANGES_MAX`), so `/stats` depth counts messages only.
    control: Mutex<BTreeMap<i64, i64>>,
}

/// Control batches remembered for depth: at one state write per 300 ms, about 20 minutes of a
/// channel changing without pause; older ones (long read by then) count as messages.
const CONTROL_RANGES_MAX: usize = 4096;

impl ChannelStates {
    /// Applies one committed batch whose first record has `base_offset`; anything but a
    /// channel-state control batch is ignored.
    pub fn apply(&self, batch: &[u8], base_offset: i64) {
        let Ok(header) = BatchHeader::parse(batch) else { return };
        if !header.is_control() {
            return;
        }
        {
            let mut control = self.control.lock().unwrap_or_else(|p| p.into_inner());
            control.insert(base_offset, base_offset + i64::from(header.last_offset_delta.max(0)));
            while control.len() > CONTROL_RANGES_MAX {
                control.pop_first();
            }
        }
        if batch.len() > STATE_BATCH_BYTES_MAX {
            return;
        }
        let decoded = decode(batch);
        if decoded.is_empty() {
            return;
        }
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        self.version.fetch_add(1, Ordering::Relaxed);
        for (delta, (name, mut record)) in decoded {
            let offset = base_offset + delta;
            match latest.get_mut(&name) {
                // A tombstone holds against any later state of an incarnation it covers (a
                // leader that had not yet learned of the delete).
                Some((_, old)) if old.deleted && record.created_ms <= old.created_ms => {}
                // A command for an older incarnation than the one recorded changes nothing.
                Some((_, old)) if record.command && !old.deleted && record.created_ms < old.created_ms => {}
                // A command keeps the recorded position; a state keeps commands it predates.
                Some((_, old)) if record.command && !old.deleted => old.absorb_commands(&record),
                Some((old_offset, old)) if !old.deleted && !record.deleted && old.created_ms == record.created_ms => {
                    record.absorb_commands(old);
                    *old_offset = offset;
                    *old = record;
                }
                _ => {
                    latest.insert(name, (offset, record));
                }
            }
        }
    }

    /// Changes with every batch applied.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Every channel's latest record.
    pub fn snapshot(&self) -> BTreeMap<String, ChannelRecord> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.iter().map(|(name, (_, record))| (name.clone(), record.clone())).collect()
    }

    /// What retention must keep on this replica for the replicated channels: from each live
    /// channel's floor (what it has not finished) and the record holding its latest state (so
    /// a replica restarted after a purge still replays it).
    pub fn retention_floor(&self) -> Option<i64> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        // A command (and the topic's record) holds no position: only its own offset is kept.
        let hold = |(name, (offset, r)): (&String, &(i64, ChannelRecord))| {
            if r.command || name == TOPIC_RECORD {
                *offset
            } else {
                (*offset).min(r.floor)
            }
        };
        latest.iter().filter(|(_, (_, r))| !r.deleted).map(hold).min()
    }

    /// How many offsets in `from..to` control batches hold (not messages).
    pub fn control_offsets_in(&self, from: i64, to: i64) -> i64 {
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let mut count = 0;
        for (first, last) in control.range(..to).rev() {
            if *last < from {
                break;
            }
            count += (*last).min(to - 1) - (*first).max(from) + 1;
        }
        count
    }

    /// Forgets everything (the partition's log was reset).
    pub fn clear(&self) {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.control.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The control key: version, type.
fn key() -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(CONTROL_KEY_VERSION);
    key.put_i16(CONTROL_TYPE_CHANNEL_STATE);
    key.freeze()
}

/// A record's value: the channel and its state.
#[derive(Serialize, Deserialize)]
struct Value {
    channel: String,
    #[serde(flatten)]
    record: ChannelRecord,
}

/// Encodes channel states as one control batch (offsets 0..n-1; the log assigns the base).
pub fn encode(records: &[(String, ChannelRecord)], timestamp_ms: i64) -> BrokerResult<Vec<u8>> {
    if records.is_empty() {
        return Err(BrokerError::CorruptMessage("a channel-state batch holds at least one channel".into()));
    }
    let mut out = Vec::with_capacity(records.len());
    for (i, (name, record)) in records.iter().enumerate() {
        let value = Value { channel: name.clone(), record: record.clone() };
        let value = serde_json::to_vec(&value).map_err(|e| BrokerError::CorruptMessage(e.to_string()))?;
        let mut control = new_record(i as i64, timestamp_ms, Some(key()), Some(Bytes::from(value)), Vec::new());
        control.control = true;
        out.push(control);
    }
    sluice_records::convert::encode_batch(&out, Compression::None)
        .map_err(|e| BrokerError::CorruptMessage(format!("cannot encode channel state: {e}")))
}

/// The channel states in one control batch, each with its offset delta; records of other
/// control types (or damaged ones) are left out.
pub fn decode(batch: &[u8]) -> Vec<(i64, (String, ChannelRecord))> {
    let mut bytes = Bytes::copy_from_slice(batch);
    let Ok(set) = RecordBatchDecoder::decode(&mut bytes) else { return Vec::new() };
    let base = set.records.first().map_or(0, |r| r.offset);
    set.records
        .into_iter()
        .filter(|r| r.control)
        .filter_map(|r| {
            let key = r.key?;
            if key.len() != 4 || i16::from_be_bytes([key[2], key[3]]) != CONTROL_TYPE_CHANNEL_STATE {
                return None;
            }
            let value: Value = serde_json::from_slice(&r.value?).ok()?;
            Some((r.offset - base, (value.channel, value.record)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(floor: i64, finished: &[i64]) -> ChannelRecord {
        ChannelRecord {
            created_ms: 7,
            floor,
            finished: finished.to_vec(),
            pending: vec![(floor, 2, Some(99))],
            ..ChannelRecord::default()
        }
    }

    #[test]
    fn states_round_trip_and_the_latest_record_wins() {
        // Proves a control batch carries each channel's state, replicas keep the latest per
        // channel with its offset, and a tombstone ends a channel's retention hold.
        let states = ChannelStates::default();
        let first = encode(&[("a".into(), record(3, &[5])), ("b".into(), record(1, &[]))], 10).expect("encode");
        assert!(BatchHeader::parse(&first).expect("header").is_control());
        states.apply(&first, 100);
        let later = encode(&[("a".into(), record(6, &[]))], 11).expect("encode");
        states.apply(&later, 120);
        let snapshot = states.snapshot();
        assert_eq!(snapshot["a"], record(6, &[]));
        assert_eq!(snapshot["b"], record(1, &[]));
        assert_eq!(states.retention_floor(), Some(1));
        let tombstone = ChannelRecord { created_ms: 7, deleted: true, ..ChannelRecord::default() };
        states.apply(&encode(&[("b".into(), tombstone)], 12).expect("encode"), 130);
        assert_eq!(states.retention_floor(), Some(6));
        // A late state of the deleted incarnation does not bring it back; a new one does.
        states.apply(&encode(&[("b".into(), record(2, &[]))], 13).expect("encode"), 140);
        assert!(states.snapshot()["b"].deleted);
        let recreated = ChannelRecord { created_ms: 8, ..record(2, &[]) };
        states.apply(&encode(&[("b".into(), recreated.clone())], 14).expect("encode"), 150);
        assert_eq!(states.snapshot()["b"], recreated);
    }

    #[test]
    fn data_batches_and_other_control_types_are_ignored() {
        // Proves an NSQ message batch or a foreign control record never changes channel state.
        let states = ChannelStates::default();
        let data = crate::channel::records::encode(&[Bytes::from_static(b"m")], 1, None).expect("encode");
        states.apply(&data, 0);
        // A transaction marker (key type 1, commit) is a control batch of another type.
        let mut marker =
            new_record(0, 1, Some(Bytes::from_static(&[0, 0, 0, 1])), Some(Bytes::from_static(&[0; 6])), Vec::new());
        marker.control = true;
        let foreign = sluice_records::convert::encode_batch(&[marker], Compression::None).expect("encode");
        states.apply(&foreign, 5);
        assert!(states.snapshot().is_empty());
        // Readers of messages skip the state batch.
        let batch = encode(&[("a".into(), record(1, &[]))], 1).expect("encode");
        let decoded = crate::channel::records::decode(&batch, 0);
        assert!(decoded.messages.is_empty());
        assert_eq!(decoded.next_offset, 1);
    }

    #[test]
    fn commands_merge_by_time_and_keep_the_position() {
        // Proves a forwarded command (pause, empty) never replaces a leader's position, a
        // leader's state written before the command keeps it, and an older pause loses.
        let states = ChannelStates::default();
        let position = ChannelRecord { created_ms: 7, floor: 40, ..ChannelRecord::default() };
        states.apply(&encode(&[("a".into(), position.clone())], 1).expect("encode"), 100);
        let pause = ChannelRecord {
            created_ms: 7,
            paused: true,
            paused_ms: 50,
            emptied_ms: 60,
            command: true,
            ..ChannelRecord::default()
        };
        states.apply(&encode(&[("a".into(), pause)], 2).expect("encode"), 110);
        let merged = &states.snapshot()["a"];
        assert_eq!(
            (merged.floor, merged.paused, merged.paused_ms, merged.emptied_ms, merged.command),
            (40, true, 50, 60, false)
        );
        assert_eq!(states.retention_floor(), Some(40));
        // The leader's next state, encoded before it learned of the command.
        states.apply(&encode(&[("a".into(), ChannelRecord { floor: 45, ..position })], 3).expect("encode"), 120);
        let merged = &states.snapshot()["a"];
        assert_eq!((merged.floor, merged.paused, merged.emptied_ms), (45, true, 60));
        let unpause = ChannelRecord { created_ms: 7, paused_ms: 40, command: true, ..ChannelRecord::default() };
        states.apply(&encode(&[("b".into(), unpause.clone()), ("a".into(), unpause)], 4).expect("encode"), 130);
        assert!(states.snapshot()["a"].paused, "an older unpause loses");
        // A command for a channel with no state yet is kept as it is (no position).
        assert!(states.snapshot()["b"].command);
        // The control batches are not messages for depth.
        assert_eq!(states.control_offsets_in(0, 200), 5);
        assert_eq!(states.control_offsets_in(105, 131), 3);
    }

    #[test]
    fn damaged_state_batches_never_panic() {
        // Proves every prefix of a state batch, and the batch with any one byte flipped, is
        // applied or ignored without a panic (what the channel_state_batch fuzz target checks).
        let batch = encode(&[("a".into(), record(3, &[5])), ("b".into(), record(1, &[]))], 10).expect("encode");
        for len in 0..batch.len() {
            ChannelStates::default().apply(&batch[..len], 0);
        }
        for at in 0..batch.len() {
            let mut damaged = batch.clone();
            damaged[at] ^= 0x5A;
            ChannelStates::default().apply(&damaged, 0);
        }
    }

    #[test]
    fn a_state_past_its_own_batch_is_the_same_state() {
        // Proves the leader's comparison: reading its own state batch moves the floor over it,
        // which must not count as a change worth another write.
        let written = ChannelRecord { floor: 10, ..ChannelRecord::default() };
        let seen = ChannelRecord { floor: 12, ..ChannelRecord::default() };
        assert_eq!(written.past_own_batch(10, 11), seen);
        let gap = ChannelRecord { floor: 8, finished: vec![9], ..ChannelRecord::default() };
        assert_eq!(gap.past_own_batch(10, 11).finished, vec![9, 10, 11]);
    }
}
