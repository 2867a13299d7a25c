//! What the admin API's `/api/mqtt` shows: the listeners, connected clients, persistent
//! sessions with their subscriptions, shared subscription groups and retained messages. Read
//! from the listener's own state when asked (the session store, the live client ids, the
//! gauges, NSQ's channels), never kept as a second copy.

use crate::connection::Shared;
use crate::shared::CHANNEL_PREFIX;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// Sessions and shared groups listed at most in one answer (the counts are always whole).
pub const LISTED_MAX: usize = 1000;

/// A handle on the MQTT listener's state, made before the listener starts (the HTTP server
/// that shows it starts first) and filled in by `serve`.
#[derive(Clone, Default)]
pub struct MqttStatus {
    state: Arc<OnceLock<Served>>,
}

impl std::fmt::Debug for MqttStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttStatus").field("started", &self.state.get().is_some()).finish()
    }
}

struct Served {
    shared: Arc<Shared>,
    listeners: ListenerAddrs,
}

/// Where the MQTT listeners accept connections.
#[derive(Clone, Debug, Serialize)]
pub struct ListenerAddrs {
    pub tcp: String,
    pub websocket: String,
    pub tls: Option<String>,
    pub websocket_tls: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MqttSnapshot {
    pub listeners: ListenerAddrs,
    /// Clients connected past CONNECT.
    pub connected_clients: usize,
    /// Topic filters held by connected clients, shared ones included.
    pub subscriptions: i64,
    /// Retained messages stored.
    pub retained_messages: i64,
    pub persistent_sessions: SessionList,
    pub shared_subscriptions: SharedList,
}

#[derive(Debug, Serialize)]
pub struct SessionList {
    /// Persistent sessions stored.
    pub count: usize,
    /// True when `sessions` holds only the first `LISTED_MAX` (by client id).
    pub truncated: bool,
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub client_id: String,
    pub connected: bool,
    /// When its connection ended (ms since the epoch); absent while connected.
    pub disconnected_at_ms: Option<i64>,
    /// Seconds it outlives its connection; absent: until a clean session replaces it.
    pub expiry_secs: Option<u32>,
    /// As last stored (at most a second behind a connected client's).
    pub subscriptions: Vec<FilterView>,
    /// Deliveries written to the client and not acknowledged (QoS 1 and 2, PUBRELs
    /// included), as last stored: resent when the session resumes.
    pub in_flight: usize,
    /// Messages waiting for the client: `in_flight` plus the records its partitions hold past
    /// what was sent (an upper bound: records of other MQTT topics in the same log topic
    /// count too, as in an NSQ channel's depth).
    pub pending: i64,
}

#[derive(Debug, Serialize)]
pub struct FilterView {
    pub filter: String,
    pub qos: u8,
}

#[derive(Debug, Serialize)]
pub struct SharedList {
    /// Shared subscription groups (one per group and filter).
    pub count: usize,
    pub truncated: bool,
    pub groups: Vec<SharedGroupView>,
}

#[derive(Debug, Serialize)]
pub struct SharedGroupView {
    /// The group as it appears in the channel name (characters NSQ refuses are `_`).
    pub group: String,
    /// The log topic and the NSQ channel serving the group.
    pub topic: String,
    pub channel: String,
    /// Members connected now.
    pub members: usize,
    /// Messages not yet delivered to a member.
    pub depth: i64,
    pub in_flight: usize,
}

impl MqttStatus {
    pub(crate) fn set(&self, shared: Arc<Shared>, listeners: ListenerAddrs) {
        let _ = self.state.set(Served { shared, listeners });
    }

    /// The figures now; `None` until the listener has started. Reads the session store
    /// (up to `LISTED_MAX` small files): call it off the async runtime's worker threads.
    pub fn snapshot(&self) -> Option<MqttSnapshot> {
        let Served { shared, listeners } = self.state.get()?;
        let (count, stored) = shared.store.list(LISTED_MAX);
        let sessions = stored
            .into_iter()
            .map(|(client_id, saved)| {
                let connected = shared.sessions.is_connected(&client_id);
                let in_flight = saved.inflight.as_ref().map_or(0, Vec::len) + saved.released.len();
                let unsent: i64 = (saved.floors.iter())
                    .filter_map(|f| {
                        let topic = shared.broker.topic(&f.topic)?;
                        let partition = topic.partitions().into_iter().find(|p| p.index == f.partition)?;
                        Some((partition.log_end_offset() - f.sent_end.max(f.offset)).max(0))
                    })
                    .sum();
                SessionView {
                    in_flight,
                    pending: in_flight as i64 + unsent,
                    connected,
                    disconnected_at_ms: (!connected && saved.disconnected_at_ms > 0)
                        .then_some(saved.disconnected_at_ms),
                    expiry_secs: saved.expiry_secs,
                    subscriptions: (saved.subscriptions.into_iter())
                        .map(|f| FilterView { filter: f.filter, qos: f.qos })
                        .collect(),
                    client_id,
                }
            })
            .collect();
        let groups: Vec<SharedGroupView> = (shared.channels.topics().iter())
            .flat_map(|topic| topic.channels())
            .filter_map(|channel| {
                let named = channel.name.strip_prefix(CHANNEL_PREFIX)?;
                let group = named.rsplit_once('.').map_or(named, |(group, _hash)| group).to_string();
                let stats = channel.stats();
                Some(SharedGroupView {
                    group,
                    topic: channel.topic.to_string(),
                    channel: channel.name.to_string(),
                    members: stats.clients.len(),
                    depth: stats.depth,
                    in_flight: stats.in_flight_count,
                })
            })
            .collect();
        let shared_count = groups.len();
        Some(MqttSnapshot {
            listeners: listeners.clone(),
            connected_clients: shared.sessions.connected_count(),
            subscriptions: shared.gauges.subscriptions.get(),
            retained_messages: shared.gauges.retained.get(),
            persistent_sessions: SessionList { count, truncated: count > LISTED_MAX, sessions },
            shared_subscriptions: SharedList {
                count: shared_count,
                truncated: shared_count > LISTED_MAX,
                groups: groups.into_iter().take(LISTED_MAX).collect(),
            },
        })
    }
}
