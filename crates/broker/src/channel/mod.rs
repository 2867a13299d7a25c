//! NSQ channels as durable cursors over a topic's partition logs.
//!
//! A channel does not copy messages: it remembers, per partition, the next offset to read,
//! an acknowledged floor (every offset below it is finished) and the sparse set of finished
//! offsets above the floor. Messages read ahead wait in a bounded ready queue; delivered ones
//! sit in the in-flight set with a deadline kept in one heap per channel; `REQ` with a delay
//! and `DPUB` messages not yet due sit in a timer queue. One sweeper task (`Channels::run`)
//! expires deadlines, releases due messages and checkpoints state to
//! `<data_dir>/channels/<topic>/<channel>.json`, so a crash can only redeliver.

mod checkpoint;
mod cursor;
pub mod id;
mod idle_trim;
pub mod records;
mod registry;
pub mod replicated_state;
#[cfg(test)]
mod scenarios;
mod topic_pause;

pub use cursor::{Channel, ChannelOpError, ChannelStats, ClientInfo, Delivery};
pub use id::MessageId;
pub use idle_trim::limit_allocator_arenas;
pub use registry::{Channels, ChannelsConfig, NsqTopic, TopicStats};
pub use replicated_state::{ChannelRecord, ChannelStates};

use std::time::Duration;

/// Most offsets a channel may have read past its acknowledged floor on one partition. Bounds
/// the ready queue, the in-flight set, the timer queue and the finished set together: a
/// channel whose oldest message is still unfinished stops reading further ahead.
pub const WINDOW_OFFSETS_MAX: i64 = 100_000;
/// Bytes read from the log per refill of the ready queue (whole batches; at least one).
pub const READ_BYTES_MAX: usize = 1 << 20;
/// Ready messages a refill aims for: enough to keep a few RDY-2500 clients busy between refills.
pub const READY_TARGET: usize = 4096;
/// Body bytes the ready queue may hold from read-ahead: with large messages the count
/// alone would let it hold gigabytes. Requeued messages (timeouts, REQ) may pass it: they
/// were in flight, which RDY and the window already bound.
pub const READY_BYTES_MAX: usize = 8 << 20;
/// How often the sweeper expires in-flight deadlines and releases due deferred messages
/// (nsqd's queue scan interval).
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(50);
/// How often changed channel state is checkpointed: what a `kill -9` may redeliver at most.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// Longest REQ delay or DPUB deferral (nsqd's `--max-req-timeout` default).
pub const REQ_DELAY_MAX: Duration = Duration::from_secs(3600);
/// Channels per topic and topics tracked: bounds the registry.
pub const CHANNELS_PER_TOPIC_MAX: usize = 1024;
/// Clients per channel tracked for stats.
pub const CLIENTS_PER_CHANNEL_MAX: usize = 4096;

const _: () = assert!(READY_TARGET as i64 <= WINDOW_OFFSETS_MAX);
// One refill read must fit in the ready queue's byte bound.
const _: () = assert!(READ_BYTES_MAX <= READY_BYTES_MAX);

/// The suffix nsqd uses for topics and channels that keep no state.
pub const EPHEMERAL_SUFFIX: &str = "#ephemeral";
/// nsqd's limit on topic and channel names.
pub const NSQ_NAME_LEN_MAX: usize = 64;

/// nsqd's name rule: 1–64 characters of `[.a-zA-Z0-9_-]`, optionally ending in `#ephemeral`.
pub fn is_valid_nsq_name(name: &str) -> bool {
    if name.is_empty() || name.len() > NSQ_NAME_LEN_MAX {
        return false;
    }
    let base = name.strip_suffix(EPHEMERAL_SUFFIX).unwrap_or(name);
    !base.is_empty() && base.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

pub fn is_ephemeral(name: &str) -> bool {
    name.ends_with(EPHEMERAL_SUFFIX)
}

/// The log topic behind an NSQ topic. `#` is not legal in Kafka names, so an ephemeral NSQ
/// topic `t#ephemeral` lives in the log topic `t.nsq-ephemeral`.
pub fn storage_topic_name(nsq_topic: &str) -> String {
    match nsq_topic.strip_suffix(EPHEMERAL_SUFFIX) {
        Some(base) => format!("{base}.nsq-ephemeral"),
        None => nsq_topic.to_string(),
    }
}

/// The NSQ name of a log topic (inverse of `storage_topic_name`).
pub fn nsq_topic_name(storage_topic: &str) -> String {
    match storage_topic.strip_suffix(".nsq-ephemeral") {
        Some(base) => format!("{base}{EPHEMERAL_SUFFIX}"),
        None => storage_topic.to_string(),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The wall-clock millisecond from which something `delay` from now is due, rounded up:
/// `now_ms` truncates, so a truncated start would release a deferral up to 1 ms early.
pub(crate) fn due_after(delay: std::time::Duration) -> i64 {
    let due = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default() + delay;
    due.as_nanos().div_ceil(1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsq_names_follow_nsqd() {
        for ok in ["a", "t.1_-x", "t#ephemeral", &"x".repeat(64), &format!("{}#ephemeral", "x".repeat(54))] {
            assert!(is_valid_nsq_name(ok), "{ok}");
        }
        for bad in ["", "#ephemeral", "a b", "a#b", "ü", &"x".repeat(65), "a:b"] {
            assert!(!is_valid_nsq_name(bad), "{bad}");
        }
        assert_eq!(nsq_topic_name(&storage_topic_name("t#ephemeral")), "t#ephemeral");
    }
}
