//! Idempotent producer state of one partition: per producer id, its epoch and the
//! metadata of its last few batches, so a retried batch is recognised and answered
//! with its original offset instead of being written twice (Kafka's ProducerStateManager).
//!
//! Bounds: clients can invent producer ids (any non-negative id in a batch is tracked), so
//! an id not seen for `expiration` is forgotten, as Kafka's `producer.id.expiration.ms`
//! does, and a partition tracks at most `producers_max` ids, evicting the least recently
//! seen. A batch from a forgotten producer is treated as a new producer's: accepted with
//! any sequence, as Kafka does since 2.5 (KIP-360), rather than UNKNOWN_PRODUCER_ID.

use crate::error::BrokerError;
use sluice_log::BatchHeader;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Kafka keeps the last five batches per producer: a client has at most five
/// requests in flight with idempotence, so a retry is always among them.
pub const BATCHES_REMEMBERED_MAX: usize = 5;

/// Kafka's `producer.id.expiration.ms` default: one day.
pub const EXPIRATION_DEFAULT: Duration = Duration::from_millis(86_400_000);

/// Producer ids one partition tracks. An entry is about 250 bytes, so this caps a
/// partition's state near 2.5 MB however many ids clients invent; ten thousand producers
/// writing to one partition within a day is far beyond real use.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;

/// The expiration every partition opened from now on uses (`--producer-id-expiration-ms`).
/// Process-wide because partitions are opened deep inside topic loading, which has no
/// other path for it; set once at start, before the broker opens.
static EXPIRATION_MS: AtomicU64 = AtomicU64::new(EXPIRATION_DEFAULT.as_millis() as u64);

/// Sets the expiration of partitions opened after this call.
pub fn set_expiration(expiration: Duration) {
    EXPIRATION_MS.store(expiration.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// Limits of one partition's producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerLimits {
    /// A producer id unseen for this long is forgotten.
    pub expiration: Duration,
    /// Producer ids tracked at most; beyond it the least recently seen is forgotten.
    pub producers_max: usize,
}

impl Default for ProducerLimits {
    fn default() -> Self {
        ProducerLimits {
            expiration: Duration::from_millis(EXPIRATION_MS.load(Ordering::Relaxed)),
            producers_max: PRODUCERS_PER_PARTITION_MAX,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_sequence: i32,
    last_sequence: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// Milliseconds since the epoch this producer's last batch was appended (or, rebuilt
    /// from the log, its batch's max timestamp): what expiry and eviction go by.
    last_seen_ms: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log at these offsets: answer with them, append nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Debug, Default)]
pub struct ProducerState {
    limits: ProducerLimits,
    producers: HashMap<i64, ProducerEntry>,
    /// `(last_seen_ms, producer_id)` of every entry: the oldest first, for expiry and eviction.
    by_last_seen: BTreeSet<(i64, i64)>,
}

impl ProducerState {
    pub fn new(limits: ProducerLimits) -> ProducerState {
        ProducerState { limits, producers: HashMap::new(), by_last_seen: BTreeSet::new() }
    }

    /// Checks a batch's producer epoch and sequence against what this partition has seen.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, BrokerError> {
        self.check_at(header, now_ms())
    }

    /// `check` at `now_ms` (milliseconds since the epoch).
    pub fn check_at(&self, header: &BatchHeader, now_ms: i64) -> Result<SequenceCheck, BrokerError> {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id).filter(|e| !self.expired(e, now_ms)) else {
            // Unknown producer (new, expired, evicted, or its batches were deleted by
            // retention): like Kafka since KIP-360, accept any sequence and track from here.
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(BrokerError::InvalidProducerEpoch { got: header.producer_epoch, current: entry.epoch });
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return Err(BrokerError::OutOfOrderSequence { expected: 0, got: header.base_sequence });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_sequence = header.last_sequence();
        if let Some(dup) =
            entry.batches.iter().find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate { first_offset: dup.first_offset, last_offset: dup.last_offset });
        }
        let expected = entry.batches.back().map(|b| next_sequence(b.last_sequence)).unwrap_or(0);
        if entry.batches.is_empty() || header.base_sequence == expected {
            return Ok(SequenceCheck::Append);
        }
        Err(BrokerError::OutOfOrderSequence { expected, got: header.base_sequence })
    }

    /// Records a batch that was appended at `header.base_offset`, just now.
    pub fn record(&mut self, header: &BatchHeader) {
        self.record_at(header, now_ms());
    }

    /// Records a batch read back from the log on open: last seen at its max timestamp (no
    /// later than now), so a producer that had expired before a restart stays forgotten.
    pub fn restore(&mut self, header: &BatchHeader) {
        let now = now_ms();
        self.record_at(header, header.max_timestamp.min(now));
        self.expire(now);
    }

    /// Records a batch appended at `header.base_offset`, seen at `seen_ms`.
    pub fn record_at(&mut self, header: &BatchHeader, seen_ms: i64) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        self.expire(seen_ms);
        let entry = self.producers.entry(header.producer_id).or_default();
        if !entry.batches.is_empty() {
            self.by_last_seen.remove(&(entry.last_seen_ms, header.producer_id));
        }
        entry.last_seen_ms = entry.last_seen_ms.max(seen_ms);
        self.by_last_seen.insert((entry.last_seen_ms, header.producer_id));
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        let first_offset = header.base_offset;
        if entry.batches.iter().any(|b| b.first_sequence == header.base_sequence && b.first_offset == first_offset) {
            // Applied again after a restart (replication re-applies from its last checkpoint).
            return;
        }
        entry.batches.push_back(BatchMeta {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
        while entry.batches.len() > BATCHES_REMEMBERED_MAX {
            entry.batches.pop_front();
        }
        while self.producers.len() > self.limits.producers_max.max(1) {
            self.forget_oldest();
        }
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    fn expired(&self, entry: &ProducerEntry, now_ms: i64) -> bool {
        let expiration_ms = self.limits.expiration.as_millis().min(i64::MAX as u128) as i64;
        now_ms.saturating_sub(entry.last_seen_ms) >= expiration_ms
    }

    /// Forgets every producer unseen for the expiration.
    fn expire(&mut self, now_ms: i64) {
        while let Some(&(last_seen_ms, producer_id)) = self.by_last_seen.first() {
            let Some(entry) = self.producers.get(&producer_id) else {
                self.by_last_seen.pop_first();
                continue;
            };
            debug_assert_eq!(entry.last_seen_ms, last_seen_ms);
            if !self.expired(entry, now_ms) {
                return;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, producer_id)) = self.by_last_seen.pop_first() {
            self.producers.remove(&producer_id);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Sequences wrap from i32::MAX to 0, as in Kafka.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut state = ProducerState::default();
        let first = header(7, 0, 0, 3, 10);
        assert_eq!(state.check(&first).expect("ok"), SequenceCheck::Append);
        state.record(&first);
        let second = header(7, 0, 3, 2, 13);
        assert_eq!(state.check(&second).expect("ok"), SequenceCheck::Append);
        state.record(&second);
        assert_eq!(
            state.check(&header(7, 0, 0, 3, 99)).expect("ok"),
            SequenceCheck::Duplicate { first_offset: 10, last_offset: 12 }
        );
    }

    #[test]
    fn gaps_are_out_of_order_and_old_epochs_are_fenced() {
        let mut state = ProducerState::default();
        state.record(&header(7, 1, 0, 1, 0));
        assert!(matches!(
            state.check(&header(7, 1, 5, 1, 0)),
            Err(BrokerError::OutOfOrderSequence { expected: 1, got: 5 })
        ));
        assert!(matches!(state.check(&header(7, 0, 1, 1, 0)), Err(BrokerError::InvalidProducerEpoch { .. })));
        assert_eq!(state.check(&header(7, 2, 0, 1, 0)).expect("new epoch"), SequenceCheck::Append);
        assert!(state.check(&header(7, 2, 1, 1, 0)).is_err());
    }

    fn limits(expiration_ms: u64, producers_max: usize) -> ProducerLimits {
        ProducerLimits { expiration: Duration::from_millis(expiration_ms), producers_max }
    }

    #[test]
    fn a_producer_unseen_for_the_expiration_is_forgotten_and_then_accepted_as_new() {
        // Proves expiry on a controlled clock: before it a gap is OUT_OF_ORDER, after it the
        // same batch is accepted as a new producer's (KIP-360) and the state is gone.
        let mut state = ProducerState::new(limits(1_000, 100));
        state.record_at(&header(7, 0, 0, 1, 0), 10_000);
        assert!(matches!(state.check_at(&header(7, 0, 5, 1, 1), 10_999), Err(BrokerError::OutOfOrderSequence { .. })));
        assert_eq!(state.check_at(&header(7, 0, 5, 1, 1), 11_000).expect("expired"), SequenceCheck::Append);
        state.record_at(&header(8, 0, 0, 1, 1), 11_000);
        assert_eq!(state.producer_count(), 1, "producer 7 was forgotten when 8 was recorded");
        // A producer seen again keeps its state past the first batch's expiry.
        state.record_at(&header(8, 0, 1, 1, 2), 11_900);
        assert!(state.check_at(&header(8, 0, 9, 1, 3), 12_500).is_err());
    }

    #[test]
    fn producers_beyond_the_bound_evict_the_least_recently_seen() {
        // Proves invented producer ids cannot grow a partition's state past `producers_max`.
        let mut state = ProducerState::new(limits(u64::MAX, 3));
        for (pid, at) in [(1, 100), (2, 200), (3, 300)] {
            state.record_at(&header(pid, 0, 0, 1, pid), at);
        }
        state.record_at(&header(1, 0, 1, 1, 4), 400);
        for pid in 10..10_000 {
            state.record_at(&header(pid, 0, 0, 1, pid), 500 + pid);
            assert!(state.producer_count() <= 3);
        }
        assert_eq!(state.producer_count(), 3);
        assert_eq!(state.check_at(&header(1, 0, 7, 1, 0), 20_000).expect("evicted"), SequenceCheck::Append);
        assert!(state.check_at(&header(9_999, 0, 7, 1, 0), 20_000).is_err(), "the newest is still tracked");
    }

    #[test]
    fn state_restored_from_the_log_respects_expiry() {
        // Proves a restart does not resurrect a producer whose last batch is older than the
        // expiration, while a recent one is restored with its sequence.
        let mut state = ProducerState::new(limits(60_000, 100));
        let now = now_ms();
        let mut old = header(1, 0, 0, 1, 0);
        old.max_timestamp = now - 120_000;
        let mut recent = header(2, 0, 0, 1, 1);
        recent.max_timestamp = now - 1_000;
        state.restore(&old);
        state.restore(&recent);
        assert_eq!(state.producer_count(), 1);
        assert_eq!(state.check(&header(1, 0, 5, 1, 2)).expect("forgotten"), SequenceCheck::Append);
        assert!(matches!(state.check(&header(2, 0, 5, 1, 2)), Err(BrokerError::OutOfOrderSequence { .. })));
    }
}
