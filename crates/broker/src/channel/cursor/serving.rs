//! In a cluster a channel reads only the partitions this node leads: it starts serving one
//! from the state replicated with it, and stops (dropping that partition's queued and in-flight
//! messages here) when leadership moves; the new leader redelivers what its state says is
//! unfinished.
//!
//! Pause and empty are cluster-wide: each is stamped with the time it was asked
//! (`paused_ms`, `emptied_ms`), travels in the replicated records, and every node takes the
//! latest (`apply_pause`, `apply_empty`). A leader applying an empty moves each partition it
//! serves past every message written before the empty (found by timestamp), so a leader that
//! learns of it late, or serves a partition whose record predates it, drops the same messages.

use super::{Channel, Cursor, MessageId, Origin, Restored, State};
use crate::channel::now_ms;
use crate::channel::replicated_state::ChannelRecord;
use crate::partition::Partition;
use std::sync::atomic::{AtomicI64, Ordering};

/// A command's time: now, but always after the last one, so a command repeated within the
/// same millisecond still wins over the one before it.
pub(super) fn command_time(last: &AtomicI64) -> i64 {
    now_ms().max(last.load(Ordering::Relaxed) + 1)
}

/// The first offset of `partition` written at or after `at_ms`, or its log end when none is:
/// where a channel created or emptied at `at_ms` starts (NSQ messages carry the time they were
/// published; a clock behind the asking node's may keep or drop a message more at the edge).
fn offset_at(partition: &Partition, at_ms: i64) -> i64 {
    let end = partition.log_end_offset();
    match partition.find_by_timestamp(at_ms) {
        Ok(Some(hit)) => hit.header.base_offset.clamp(partition.log_start_offset(), end),
        Ok(None) => end,
        Err(e) => {
            tracing::warn!(partition = partition.index, error = %e, "timestamp lookup failed; starting at the log end");
            end
        }
    }
}

impl Channel {
    pub(in crate::channel) fn origin(&self) -> Origin {
        Origin { created_ms: self.created_ms, from_tail: self.from_tail }
    }

    /// Whether this channel reads `index` here.
    pub(in crate::channel) fn serves(&self, index: i32) -> bool {
        self.lock().cursors.contains_key(&index)
    }

    /// Starts reading `partition` from its replicated state (`record`), or from its log start
    /// (for a channel created after the topic's first: what was written since its creation)
    /// when it has none yet.
    pub(in crate::channel) fn serve_partition(&self, partition: &Partition, record: Option<&ChannelRecord>) {
        let index = partition.index;
        if let Some(record) = record {
            self.apply_pause(record.paused, record.paused_ms);
            self.emptied_ms.fetch_max(record.emptied_ms, Ordering::Relaxed);
        }
        let emptied_ms = self.emptied_ms.load(Ordering::Relaxed);
        let emptied_at = (emptied_ms > 0).then(|| offset_at(partition, emptied_ms));
        // A command record (forwarded by a node leading none) says nothing of the position.
        let record = record.filter(|r| !r.command);
        let tail = (record.is_none() && self.from_tail).then(|| offset_at(partition, self.created_ms));
        let mut st = self.lock();
        drop_partition(&mut st, index);
        let (mut cursor, from) = match record {
            Some(record) => {
                let mut cursor = Cursor::at(record.floor);
                for offset in &record.finished {
                    cursor.finish(*offset);
                }
                cursor.next = cursor.floor;
                for (offset, attempts, defer_until_ms) in &record.pending {
                    let restored = Restored { attempts: *attempts, defer_until_ms: *defer_until_ms };
                    st.restored.insert(MessageId::new(index, *offset), restored);
                }
                (cursor, "its replicated state")
            }
            None => match tail {
                Some(start) => {
                    (Cursor::at(start), "its first message after the channel's creation (no replicated state)")
                }
                None => (Cursor::at(partition.log_start_offset()), "the log start (no replicated state)"),
            },
        };
        let known = st.left.remove(&index);
        if let Some(known) = &known {
            cursor.merge_finished(known);
            st.restored.retain(|id, _| id.partition != index || !cursor.is_finished(id.offset));
        }
        // Rare (a leadership change) and what a lost or repeated message is traced back to.
        tracing::info!(topic = %self.topic, channel = %self.name, partition = index, floor = cursor.floor,
            finished = cursor.finished.len(), merged_own_fins = known.is_some(), "channel serves the partition from {from}");
        st.cursors.insert(index, cursor);
        if let Some(to) = emptied_at {
            drop(skip_below(&mut st, index, to));
        }
        drop(st);
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Stops reading `index`: its cursor and its ready, in-flight and deferred messages go
    /// (a FIN for one of them then answers "not in flight", as for a timed-out message).
    pub(in crate::channel) fn stop_serving(&self, index: i32) {
        let mut st = self.lock();
        if let Some(cursor) = st.cursors.get(&index).cloned() {
            st.left.insert(index, cursor);
        }
        let dropped = drop_partition(&mut st, index);
        drop(st);
        self.release_clients(dropped);
        self.notify.notify_waiters();
    }

    /// A pause or unpause asked at `at_ms` somewhere in the cluster; an older one than the
    /// last applied here changes nothing.
    pub(in crate::channel) fn apply_pause(&self, paused: bool, at_ms: i64) {
        if at_ms <= self.paused_ms.load(Ordering::Relaxed) {
            return;
        }
        self.paused_ms.store(at_ms, Ordering::Relaxed);
        self.paused.store(paused, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// An empty asked at `at_ms` somewhere in the cluster: every partition served here drops
    /// the messages written before it.
    pub(in crate::channel) fn apply_empty(&self, at_ms: i64) {
        if at_ms <= self.emptied_ms.load(Ordering::Relaxed) {
            return;
        }
        self.emptied_ms.store(at_ms, Ordering::Relaxed);
        let partitions = self.log_topic.partitions();
        let served: Vec<&Partition> = {
            let st = self.lock();
            partitions.iter().filter(|p| p.is_clustered() && st.cursors.contains_key(&p.index)).map(|p| &**p).collect()
        };
        // Looked up with no lock held: the timestamp index may be read from disk.
        let targets: Vec<(i32, i64)> = served.into_iter().map(|p| (p.index, offset_at(p, at_ms))).collect();
        let mut st = self.lock();
        let mut dropped = Vec::new();
        for (index, to) in targets {
            dropped.extend(skip_below(&mut st, index, to));
        }
        drop(st);
        self.release_clients(dropped);
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Lowers the in-flight counts of the clients whose messages were dropped.
    fn release_clients(&self, dropped: Vec<u64>) {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for client in dropped {
            if let Some(info) = clients.get(&client) {
                info.in_flight_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// What a node serving no partition of the topic forwards when the channel is created,
    /// paused or emptied there: everything but a position.
    pub(in crate::channel) fn command_record(&self) -> ChannelRecord {
        ChannelRecord {
            created_ms: self.created_ms,
            from_tail: self.from_tail,
            paused: self.paused.load(Ordering::Relaxed),
            paused_ms: self.paused_ms.load(Ordering::Relaxed),
            emptied_ms: self.emptied_ms.load(Ordering::Relaxed),
            command: true,
            ..ChannelRecord::default()
        }
    }

    /// This channel's state on `index` as replicated, if it serves it.
    pub(in crate::channel) fn partition_record(&self, index: i32) -> Option<ChannelRecord> {
        let st = self.lock();
        let cursor = st.cursors.get(&index)?;
        let mut pending: Vec<(i64, u16, Option<i64>)> = Vec::new();
        let mut remember = |id: MessageId, attempts: u16, defer: Option<i64>| {
            if id.partition == index && (attempts > 0 || defer.is_some()) {
                pending.push((id.offset, attempts, defer));
            }
        };
        st.ready.iter().for_each(|m| remember(m.id, m.attempts, m.defer_until_ms));
        st.in_flight.values().for_each(|f| remember(f.msg.id, f.msg.attempts, f.msg.defer_until_ms));
        st.deferred.values().for_each(|m| remember(m.id, m.attempts, m.defer_until_ms));
        st.restored.iter().for_each(|(id, r)| remember(*id, r.attempts, r.defer_until_ms));
        pending.sort_unstable();
        Some(ChannelRecord {
            created_ms: self.created_ms,
            deleted: false,
            from_tail: self.from_tail,
            paused: self.paused.load(Ordering::Relaxed),
            paused_ms: self.paused_ms.load(Ordering::Relaxed),
            emptied_ms: self.emptied_ms.load(Ordering::Relaxed),
            command: false,
            floor: cursor.floor,
            finished: cursor.finished.iter().copied().collect(),
            pending,
        })
    }
}

/// Removes one partition's cursor and messages; answers the clients of its in-flight ones.
fn drop_partition(st: &mut State, index: i32) -> Vec<u64> {
    st.cursors.remove(&index);
    drop_messages(st, |id| id.partition == index)
}

/// Moves `index`'s cursor up to `to` (everything below finished) and drops its messages
/// below it; answers the clients of the in-flight ones dropped. A read under way is dropped
/// (`epoch`), as `empty` does.
fn skip_below(st: &mut State, index: i32, to: i64) -> Vec<u64> {
    let Some(cursor) = st.cursors.get_mut(&index) else { return Vec::new() };
    if to <= cursor.floor {
        return Vec::new();
    }
    cursor.finished.retain(|offset| *offset >= to);
    cursor.floor = to;
    while cursor.finished.remove(&cursor.floor) {
        cursor.floor += 1;
    }
    cursor.next = cursor.next.max(cursor.floor);
    st.epoch += 1;
    drop_messages(st, |id| id.partition == index && id.offset < to)
}

/// Drops the ready, in-flight, deferred and restored messages `gone` selects; answers the
/// clients of the in-flight ones.
fn drop_messages(st: &mut State, gone: impl Fn(&MessageId) -> bool) -> Vec<u64> {
    let before = st.ready.len();
    st.ready.retain(|m| !gone(&m.id));
    if st.ready.len() != before {
        st.ready_bytes = st.ready.iter().map(|m| m.body.len()).sum();
    }
    let flights: Vec<MessageId> = st.in_flight.keys().filter(|id| gone(id)).copied().collect();
    let clients = flights.iter().filter_map(|id| st.in_flight.remove(id)).map(|f| f.client).collect();
    st.deferred.retain(|id, _| !gone(id));
    st.restored.retain(|id, _| !gone(id));
    clients
}
