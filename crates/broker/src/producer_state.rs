//! Idempotent producer state of one partition: per producer id, its epoch and the
//! metadata of its last few batches, so a retried batch is recognised and answered
//! with its original offset instead of being written twice (Kafka's ProducerStateManager).

use crate::error::BrokerError;
use sluice_log::BatchHeader;
use std::collections::{HashMap, VecDeque};

/// Kafka keeps the last five batches per producer: a client has at most five
/// requests in flight with idempotence, so a retry is always among them.
pub const BATCHES_REMEMBERED_MAX: usize = 5;

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
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
    /// Checks a batch's producer epoch and sequence against what this partition has seen.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, BrokerError> {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its batches were deleted by retention):
            // like Kafka, accept any sequence and start tracking from here.
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

    /// Records a batch that was appended at `header.base_offset`.
    pub fn record(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
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
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }
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
}
