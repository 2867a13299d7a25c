//! In a cluster a channel reads only the partitions this node leads: it starts serving one
//! from the state replicated with it, and stops (dropping that partition's queued and in-flight
//! messages here) when leadership moves; the new leader redelivers what its state says is
//! unfinished.

use super::{Channel, Cursor, MessageId, Origin, Restored, State};
use crate::channel::replicated_state::ChannelRecord;
use crate::partition::Partition;
use std::sync::atomic::Ordering;

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
        let tail = (record.is_none() && self.from_tail).then(|| self.start_after_creation(partition));
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
        drop(st);
        self.dirty.store(true, Ordering::Relaxed);
        self.notify.notify_waiters();
    }

    /// Where a channel created after the topic's first starts on a partition it has no
    /// replicated state for: at the first batch written since the channel was created (by its
    /// time), not at the log end when this node gets to serve it, which may be a moment later
    /// (the node learns of a channel created elsewhere, or takes the partition over, after
    /// messages were published to it).
    fn start_after_creation(&self, partition: &Partition) -> i64 {
        let end = partition.log_end_offset();
        match partition.find_by_timestamp(self.created_ms) {
            Ok(Some(hit)) => hit.header.base_offset.clamp(partition.log_start_offset(), end),
            Ok(None) => end,
            Err(e) => {
                tracing::warn!(topic = %self.topic, channel = %self.name, partition = partition.index, error = %e,
                    "cannot find the channel's creation in the log; starting at its end");
                end
            }
        }
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
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for client in dropped {
            if let Some(info) = clients.get(&client) {
                info.in_flight_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        drop(clients);
        self.notify.notify_waiters();
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
            floor: cursor.floor,
            finished: cursor.finished.iter().copied().collect(),
            pending,
        })
    }
}

/// Removes one partition's cursor and messages; answers the clients of its in-flight ones.
fn drop_partition(st: &mut State, index: i32) -> Vec<u64> {
    st.cursors.remove(&index);
    let before = st.ready.len();
    st.ready.retain(|m| m.id.partition != index);
    if st.ready.len() != before {
        st.ready_bytes = st.ready.iter().map(|m| m.body.len()).sum();
    }
    let gone: Vec<MessageId> = st.in_flight.keys().filter(|id| id.partition == index).copied().collect();
    let clients = gone.iter().filter_map(|id| st.in_flight.remove(id)).map(|f| f.client).collect();
    st.deferred.retain(|id, _| id.partition != index);
    st.restored.retain(|id, _| id.partition != index);
    clients
}
