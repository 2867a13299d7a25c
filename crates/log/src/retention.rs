//! Which whole segments retention deletes: a pure decision over segment summaries.

use std::time::Duration;

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFacts {
    pub size_bytes: u64,
    /// Largest record timestamp in ms (or the file's modification time if the segment has
    /// none); None for an empty segment.
    pub newest_ms: Option<i64>,
}

/// How many of the oldest segments to delete. Never the last (active) one, and always a
/// prefix so the remaining offsets stay contiguous.
pub fn segments_to_delete(
    segments: &[SegmentFacts],
    retention_bytes_max: Option<u64>,
    retention_age_max: Option<Duration>,
    now_ms: i64,
) -> usize {
    let mut remaining: u64 = segments.iter().map(|s| s.size_bytes).sum();
    let cutoff_ms = retention_age_max.map(|age| now_ms.saturating_sub(age.as_millis().min(i64::MAX as u128) as i64));
    let deletable = segments.len().saturating_sub(1);
    let mut count = 0;
    for segment in &segments[..deletable] {
        // As Kafka: delete a segment only if what remains still holds `retention.bytes`,
        // so the limit is a floor of what is kept, not a ceiling overshot downwards.
        let too_big = retention_bytes_max.is_some_and(|max| remaining.saturating_sub(segment.size_bytes) >= max);
        let too_old = match (cutoff_ms, segment.newest_ms) {
            (Some(cutoff), Some(newest)) => newest < cutoff,
            // An empty segment holds nothing to keep.
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !too_big && !too_old {
            break;
        }
        remaining -= segment.size_bytes;
        count += 1;
    }
    count
}

/// A reader that still needs part of the log (an NSQ channel's unfinished messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionHold {
    /// The lowest offset still needed: segments holding it or anything after it are kept.
    pub keep_from_offset: i64,
    /// The hold lapses while the log is larger than this, so a stalled reader cannot fill
    /// the disk: retention then deletes as if there were no hold.
    pub log_bytes_max: u64,
}

/// Of the `count` oldest segments retention chose, how many may go given `hold`: only those
/// wholly below `keep_from_offset` (segment `i` ends where segment `i + 1` begins), unless
/// the log is over the hold's size cap.
pub fn apply_hold(count: usize, base_offsets: &[i64], total_bytes: u64, hold: Option<RetentionHold>) -> usize {
    let Some(hold) = hold else { return count };
    if total_bytes > hold.log_bytes_max {
        return count;
    }
    let wholly_below = base_offsets.windows(2).take_while(|w| w[1] <= hold.keep_from_offset).count();
    count.min(wholly_below)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(size_bytes: u64, newest_ms: i64) -> SegmentFacts {
        SegmentFacts { size_bytes, newest_ms: Some(newest_ms) }
    }

    /// Size retention deletes oldest segments while the rest still holds the limit, never
    /// the last one.
    #[test]
    fn by_size() {
        let segs = [seg(100, 0), seg(100, 0), seg(100, 0)];
        assert_eq!(segments_to_delete(&segs, Some(250), None, 0), 0);
        assert_eq!(segments_to_delete(&segs, Some(200), None, 0), 1);
        assert_eq!(segments_to_delete(&segs, Some(150), None, 0), 1);
        assert_eq!(segments_to_delete(&segs, Some(100), None, 0), 2);
        assert_eq!(segments_to_delete(&segs, Some(0), None, 0), 2);
        assert_eq!(segments_to_delete(&segs, Some(300), None, 0), 0);
        assert_eq!(segments_to_delete(&segs, None, None, 0), 0);
    }

    /// A hold keeps segments a reader still needs, until the log outgrows the hold's cap.
    #[test]
    fn hold() {
        let bases = [0, 10, 20, 30];
        let hold = |keep_from_offset, log_bytes_max| Some(RetentionHold { keep_from_offset, log_bytes_max });
        assert_eq!(apply_hold(3, &bases, 100, None), 3);
        assert_eq!(apply_hold(3, &bases, 100, hold(15, 1000)), 1);
        assert_eq!(apply_hold(3, &bases, 100, hold(20, 1000)), 2);
        assert_eq!(apply_hold(3, &bases, 100, hold(0, 1000)), 0);
        assert_eq!(apply_hold(1, &bases, 100, hold(30, 1000)), 1);
        assert_eq!(apply_hold(3, &bases, 2000, hold(0, 1000)), 3);
    }

    /// Age retention deletes a prefix of old segments and stops at the first young one.
    #[test]
    fn by_age() {
        let segs = [seg(1, 100), seg(1, 900), seg(1, 100), seg(1, 100)];
        let age = Some(Duration::from_millis(500));
        assert_eq!(segments_to_delete(&segs, None, age, 1000), 1);
        assert_eq!(segments_to_delete(&segs, None, age, 2000), 3);
        assert_eq!(segments_to_delete(&segs, None, None, 2000), 0);
    }
}
