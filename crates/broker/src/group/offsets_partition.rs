//! Which partition of the internal `__consumer_offsets` topic holds a group's committed
//! offsets (in a cluster; a single node keeps them in `offsets.log`). The Raft leader of that
//! partition is the group's coordinator. The mapping is Kafka's own, so a group lands on the
//! partition a Kafka cluster with the same partition count would give it.

/// The internal topic's name, as Kafka's.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Default partition count (Kafka's is 50): each partition is a Raft group on every one of
/// its replicas, with its own heartbeats, so a small cluster should not carry fifty.
pub const PARTITIONS_DEFAULT: u32 = 8;

/// Whether a topic is one of the broker's own (Kafka's `is_internal`): clients may not produce
/// to it, delete it, or see it over NSQ.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`: Java's `String.hashCode` over UTF-16
/// code units, stable across processes and versions.
pub fn partition_of(group_id: &str, partitions: u32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    let count = i32::try_from(partitions.max(1)).unwrap_or(i32::MAX);
    positive % count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_kafkas_partitions() {
        // Java: "".hashCode() == 0, "a".hashCode() == 97, "group".hashCode() == 98629247.
        assert_eq!(partition_of("", 50), 0);
        assert_eq!(partition_of("a", 50), 97 % 50);
        assert_eq!(partition_of("group", 50), 98_629_247 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's abs gives 0.
        assert_eq!(partition_of("polygenelubricants", 8), 0);
        for id in ["x", "consumer-group-1", "ünïcode"] {
            assert!((0..8).contains(&partition_of(id, 8)));
        }
    }
}
