//! What the checker found: counts of every anomaly with a few examples of each.

use std::fmt;

/// How many times an anomaly occurred, and the first `examples_max` occurrences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Examples<T> {
    pub count: usize,
    pub examples: Vec<T>,
    /// How many examples are kept at most (`CheckOptions::examples_max`).
    examples_max: usize,
}

impl<T> Examples<T> {
    pub fn new(examples_max: usize) -> Examples<T> {
        Examples { count: 0, examples: Vec::new(), examples_max }
    }

    pub fn push(&mut self, example: T) {
        self.count += 1;
        if self.examples.len() < self.examples_max {
            self.examples.push(example);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// An acknowledged value absent from the final read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub value: String,
    pub partition: i32,
    pub offset: i64,
}

/// An acknowledged value read, but never at the position it was acknowledged at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    pub value: String,
    pub acknowledged: (i32, i64),
    pub read_at: Vec<(i32, i64)>,
}

/// One offset seen holding two or more values (by acknowledgements and reads together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent {
    pub partition: i32,
    pub offset: i64,
    pub values: Vec<String>,
}

/// One value read at two or more positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub value: String,
    pub at: Vec<(i32, i64)>,
}

/// A consumer's read of a partition at or below its previous read there, with no reset between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonMonotonic {
    pub consumer: String,
    pub partition: i32,
    pub previous: i64,
    pub offset: i64,
}

/// A value read that no producer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpected {
    pub value: String,
    pub partition: i32,
    pub offset: i64,
}

/// The checker's verdict on one history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Distinct values handed to a producer.
    pub sent: usize,
    pub acknowledged: usize,
    /// Acknowledged without an offset (librdkafka's -1001, `RD_KAFKA_OFFSET_INVALID`: it knows
    /// the message is stored but was not told where, e.g. an idempotent retry answered as a
    /// duplicate): checked for loss and duplicates, not for its position.
    pub acknowledged_without_offset: usize,
    /// Sends that definitely failed / whose outcome is unknown (and never acknowledged).
    pub failed: usize,
    pub unknown: usize,
    /// Failed or unknown sends found in the log anyway (allowed: a Kafka error is rarely definite).
    pub unacknowledged_but_read: usize,
    /// Reads by consumers other than the final read, and records in the final read.
    pub consumer_reads: usize,
    pub final_reads: usize,
    pub lost: Examples<Lost>,
    pub misplaced: Examples<Misplaced>,
    pub inconsistent: Examples<Inconsistent>,
    /// Every value stored twice, whatever its producer.
    pub duplicates: Examples<Duplicate>,
    /// The duplicates of values an idempotent producer sent: an error.
    pub idempotent_duplicates: Examples<Duplicate>,
    pub non_monotonic: Examples<NonMonotonic>,
    pub unexpected: Examples<Unexpected>,
}

impl Report {
    pub fn new(examples_max: usize) -> Report {
        Report {
            sent: 0,
            acknowledged: 0,
            acknowledged_without_offset: 0,
            failed: 0,
            unknown: 0,
            unacknowledged_but_read: 0,
            consumer_reads: 0,
            final_reads: 0,
            lost: Examples::new(examples_max),
            misplaced: Examples::new(examples_max),
            inconsistent: Examples::new(examples_max),
            duplicates: Examples::new(examples_max),
            idempotent_duplicates: Examples::new(examples_max),
            non_monotonic: Examples::new(examples_max),
            unexpected: Examples::new(examples_max),
        }
    }

    /// No anomaly that breaks a promise: duplicates of non-idempotent producers are allowed
    /// (a retried send may be stored twice).
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty()
            && self.misplaced.is_empty()
            && self.inconsistent.is_empty()
            && self.idempotent_duplicates.is_empty()
            && self.non_monotonic.is_empty()
            && self.unexpected.is_empty()
    }

    /// The counts, then the examples of every anomaly found (for a failed assertion).
    pub fn details(&self) -> String {
        let mut out = self.to_string();
        push_examples(&mut out, "lost", &self.lost);
        push_examples(&mut out, "misplaced", &self.misplaced);
        push_examples(&mut out, "inconsistent offset", &self.inconsistent);
        push_examples(&mut out, "duplicate", &self.duplicates);
        push_examples(&mut out, "idempotent duplicate", &self.idempotent_duplicates);
        push_examples(&mut out, "non-monotonic poll", &self.non_monotonic);
        push_examples(&mut out, "unexpected", &self.unexpected);
        out
    }
}

fn push_examples<T: fmt::Debug>(out: &mut String, name: &str, found: &Examples<T>) {
    for example in &found.examples {
        out.push_str(&format!("\n  {name}: {example:?}"));
    }
    if found.count > found.examples.len() {
        out.push_str(&format!("\n  ... and {} more {name}", found.count - found.examples.len()));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {} ({} without an offset), failed {}, unknown {} (read anyway {}), consumer reads {}, \
             final read {}; \
             lost {}, misplaced {}, inconsistent offsets {}, duplicates {} (idempotent {}), non-monotonic polls {}, \
             unexpected {}",
            self.sent,
            self.acknowledged,
            self.acknowledged_without_offset,
            self.failed,
            self.unknown,
            self.unacknowledged_but_read,
            self.consumer_reads,
            self.final_reads,
            self.lost.count,
            self.misplaced.count,
            self.inconsistent.count,
            self.duplicates.count,
            self.idempotent_duplicates.count,
            self.non_monotonic.count,
            self.unexpected.count
        )
    }
}
