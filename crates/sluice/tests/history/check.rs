//! The checker: one pass gathers what each value went through and what each offset held, a
//! second judges every value, offset and consumer read against the promises of `acks=all`.

use super::report::{Duplicate, Inconsistent, Lost, Misplaced, NonMonotonic, Report, Unexpected};
use super::{Op, FINAL_READ};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Examples of each anomaly a report keeps by default: enough to see a pattern, short to print.
pub const EXAMPLES_MAX: usize = 10;

#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub examples_max: usize,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { examples_max: EXAMPLES_MAX }
    }
}

/// A partition and an offset in it.
type Position = (i32, i64);

/// What happened to one sent value.
#[derive(Default)]
struct Fate {
    idempotent: bool,
    /// The first position it was acknowledged at.
    acknowledged: Option<Position>,
    failed: bool,
}

/// Everything the history says, indexed for judging.
#[derive(Default)]
struct Gathered {
    fates: BTreeMap<String, Fate>,
    /// Values each position was seen holding, by acknowledgements and reads.
    held: BTreeMap<Position, BTreeSet<String>>,
    /// Positions each value was read at (any consumer, final read included).
    read_at: BTreeMap<String, BTreeSet<Position>>,
    in_final_read: BTreeSet<String>,
    consumer_reads: usize,
    final_reads: usize,
}

/// Judges `history` (in the order it was recorded).
pub fn check(history: &[Op], options: &CheckOptions) -> Report {
    let mut report = Report::new(options.examples_max);
    let gathered = gather(history);
    judge_polls(history, &gathered, &mut report);
    judge_values(&gathered, &mut report);
    judge_positions(&gathered, &mut report);
    report.consumer_reads = gathered.consumer_reads;
    report.final_reads = gathered.final_reads;
    report
}

fn gather(history: &[Op]) -> Gathered {
    let mut g = Gathered::default();
    for op in history {
        match op {
            Op::Send { value, idempotent, .. } => g.fates.entry(value.clone()).or_default().idempotent |= idempotent,
            Op::SendOk { value, partition, offset } => {
                let fate = g.fates.entry(value.clone()).or_default();
                fate.acknowledged.get_or_insert((*partition, *offset));
                // An offset below 0 is the client's "stored, offset unknown": no position claim.
                if *offset >= 0 {
                    g.held.entry((*partition, *offset)).or_default().insert(value.clone());
                }
            }
            Op::SendFail { value } => g.fates.entry(value.clone()).or_default().failed = true,
            Op::SendUnknown { value } => {
                g.fates.entry(value.clone()).or_default();
            }
            Op::Poll { consumer, partition, offset, value } => {
                g.held.entry((*partition, *offset)).or_default().insert(value.clone());
                g.read_at.entry(value.clone()).or_default().insert((*partition, *offset));
                if consumer == FINAL_READ {
                    g.final_reads += 1;
                    g.in_final_read.insert(value.clone());
                } else {
                    g.consumer_reads += 1;
                }
            }
            Op::Reset { .. } => {}
        }
    }
    g
}

/// Each consumer's reads of a partition must go forward until a reset; every value read must
/// have been sent.
fn judge_polls(history: &[Op], g: &Gathered, report: &mut Report) {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    let mut reported_unexpected = BTreeSet::new();
    for op in history {
        match op {
            Op::Poll { consumer, partition, offset, value } => {
                if let Some(previous) = last.insert((consumer.as_str(), *partition), *offset) {
                    if *offset <= previous {
                        let (consumer, partition, offset) = (consumer.clone(), *partition, *offset);
                        report.non_monotonic.push(NonMonotonic { consumer, partition, previous, offset });
                    }
                }
                if !g.fates.contains_key(value) && reported_unexpected.insert(value.as_str()) {
                    report.unexpected.push(Unexpected { value: value.clone(), partition: *partition, offset: *offset });
                }
            }
            Op::Reset { consumer, partition } => {
                last.remove(&(consumer.as_str(), *partition));
            }
            _ => {}
        }
    }
}

/// Every acknowledged value is in the final read, at the position it was acknowledged at, and
/// stored once.
fn judge_values(g: &Gathered, report: &mut Report) {
    report.sent = g.fates.len();
    for (value, fate) in &g.fates {
        let read_at = g.read_at.get(value);
        match fate.acknowledged {
            Some((partition, offset)) => {
                report.acknowledged += 1;
                if !g.in_final_read.contains(value) {
                    report.lost.push(Lost { value: value.clone(), partition, offset });
                }
                if offset < 0 {
                    report.acknowledged_without_offset += 1;
                } else if let Some(read_at) = read_at.filter(|at| !at.contains(&(partition, offset))) {
                    let read_at = read_at.iter().copied().collect();
                    report.misplaced.push(Misplaced {
                        value: value.clone(),
                        acknowledged: (partition, offset),
                        read_at,
                    });
                }
            }
            None => {
                if fate.failed {
                    report.failed += 1;
                } else {
                    report.unknown += 1;
                }
                if read_at.is_some() {
                    report.unacknowledged_but_read += 1;
                }
            }
        }
        if let Some(at) = read_at.filter(|at| at.len() > 1) {
            let duplicate = Duplicate { value: value.clone(), at: at.iter().copied().collect() };
            if fate.idempotent {
                report.idempotent_duplicates.push(duplicate.clone());
            }
            report.duplicates.push(duplicate);
        }
    }
}

/// No offset holds two values.
fn judge_positions(g: &Gathered, report: &mut Report) {
    for (&(partition, offset), values) in &g.held {
        if values.len() > 1 {
            report.inconsistent.push(Inconsistent { partition, offset, values: values.iter().cloned().collect() });
        }
    }
}
