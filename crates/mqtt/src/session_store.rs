//! Persistent sessions on disk: per client id, its subscriptions and, per partition it reads,
//! the floor below which every record was delivered and acknowledged (or needed no
//! acknowledgement). A resumed session reads each partition from its floor, so what was
//! published while the client was away, and what it had not acknowledged, is delivered
//! (at least once). One JSON file per session in `<data_dir>/mqtt/sessions/`, replaced
//! atomically.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Persistent sessions stored at most: a new one past it is refused (CONNACK 0x97 / 3).
pub const SESSIONS_MAX: usize = 10_000;
/// How often a connected persistent session's floors are written: what a kill -9 may
/// redeliver at most, besides what was in flight.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedSession {
    pub subscriptions: Vec<SavedFilter>,
    pub floors: Vec<SavedFloor>,
    /// How long the session outlives its connection, seconds (v5 Session Expiry Interval);
    /// `None`: until the client starts a clean one (3.1.1, or v5's 0xFFFFFFFF).
    pub expiry_secs: Option<u32>,
    /// When its connection ended (ms since the epoch); 0 while connected.
    pub disconnected_at_ms: i64,
    /// QoS 1 and 2 deliveries written to the client and not acknowledged, in the order they
    /// were sent: resent first, with DUP and their packet ids, when the session resumes
    /// (§4.4). `None` in a session stored before this was kept: it is then read from its
    /// floors again and what lies below the sent end is marked DUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflight: Option<Vec<SavedDelivery>>,
    /// Packet ids of QoS 2 deliveries the client answered with PUBREC and whose PUBCOMP has
    /// not come: their PUBREL is resent, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<u16>,
    /// Packet ids of the client's QoS 2 publishes taken (PUBREC sent) and not yet released:
    /// a resent PUBLISH with one of them is not appended again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qos2_received: Vec<u16>,
}

/// One unacknowledged delivery: its packet id, QoS and place in the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedDelivery {
    pub packet_id: u16,
    pub qos: u8,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedFilter {
    pub filter: String,
    pub qos: u8,
    /// The v5 subscription identifier given with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<usize>,
    /// v5 No Local: the client's own publishes are not sent to it on this filter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_local: bool,
    /// v5 Retain As Published: deliveries keep the RETAIN flag they were published with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain_as_published: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedFloor {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// One past the highest offset written to the client (records from `offset` to it are
    /// resent with DUP).
    #[serde(default)]
    pub sent_end: i64,
}

pub(crate) struct SessionStore {
    dir: PathBuf,
}

impl SessionStore {
    pub fn new(data_dir: &Path) -> SessionStore {
        SessionStore { dir: data_dir.join("mqtt").join("sessions") }
    }

    /// Client ids may hold any character: the file name is their hex.
    fn path(&self, client_id: &str) -> PathBuf {
        let hex: String = client_id.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.json"))
    }

    /// The stored session, unless there is none, it cannot be read, or it has expired (then
    /// it is removed).
    pub fn load(&self, client_id: &str, now_ms: i64) -> Option<SavedSession> {
        let path = self.path(client_id);
        let text = std::fs::read(&path).ok()?;
        let session: SavedSession = match serde_json::from_slice(&text) {
            Ok(session) => session,
            Err(e) => {
                tracing::warn!(client_id, error = %e, "unreadable mqtt session dropped");
                self.remove(client_id);
                return None;
            }
        };
        let expired = session.expiry_secs.is_some_and(|secs| {
            session.disconnected_at_ms > 0 && now_ms - session.disconnected_at_ms > i64::from(secs) * 1000
        });
        if expired {
            self.remove(client_id);
            return None;
        }
        Some(session)
    }

    pub fn save(&self, client_id: &str, session: &SavedSession) -> std::io::Result<()> {
        let path = self.path(client_id);
        if !path.exists() && self.count() >= SESSIONS_MAX {
            return Err(std::io::Error::other(format!("at most {SESSIONS_MAX} persistent sessions")));
        }
        sluice_log::durable_dir::create_dir_all(&self.dir)?;
        let text = serde_json::to_vec(session).map_err(std::io::Error::other)?;
        sluice_log::atomic_file::replace(&path, &text)
    }

    pub fn remove(&self, client_id: &str) {
        let path = self.path(client_id);
        if std::fs::remove_file(&path).is_ok() {
            let _ = sluice_log::durable_dir::sync_parent(&path);
        }
    }

    fn count(&self) -> usize {
        std::fs::read_dir(&self.dir).map(|entries| entries.count()).unwrap_or(0)
    }

    /// How many sessions are stored, and the first `max` of them (by client id) that can be
    /// read, for the admin API. Expired ones not yet removed are listed until a CONNECT
    /// with their id drops them.
    pub fn list(&self, max: usize) -> (usize, Vec<(String, SavedSession)>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return (0, Vec::new()) };
        let mut ids: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| client_id_of(&entry.file_name().to_string_lossy()))
            .collect();
        let total = ids.len();
        ids.sort_unstable();
        let sessions = ids
            .into_iter()
            .take(max)
            .filter_map(|id| {
                let text = std::fs::read(self.path(&id)).ok()?;
                Some((id, serde_json::from_slice(&text).ok()?))
            })
            .collect();
        (total, sessions)
    }
}

/// The client id a session file is named after (its hex), unless the name is not one.
fn client_id_of(file_name: &str) -> Option<String> {
    let hex = file_name.strip_suffix(".json")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_expire_and_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SessionStore::new(dir.path());
        let session = SavedSession {
            subscriptions: vec![SavedFilter {
                filter: "a/#".into(),
                qos: 1,
                id: Some(3),
                no_local: true,
                retain_as_published: false,
            }],
            floors: vec![SavedFloor { topic: "a".into(), partition: 2, offset: 40, sent_end: 42 }],
            expiry_secs: Some(10),
            disconnected_at_ms: 1_000,
            inflight: Some(vec![SavedDelivery { packet_id: 9, qos: 2, topic: "a".into(), partition: 2, offset: 40 }]),
            released: vec![7],
            qos2_received: vec![5],
        };
        // Any client id is a file name: it is stored as hex.
        let id = "../weird id/ü";
        store.save(id, &session).expect("save");
        assert_eq!(store.load(id, 5_000), Some(session.clone()));
        assert_eq!(store.load(id, 12_000), None, "expired 10 s after the disconnect");
        assert_eq!(store.load(id, 5_000), None, "an expired session is removed");
        let forever = SavedSession { expiry_secs: None, ..session };
        store.save(id, &forever).expect("save");
        assert!(store.load(id, i64::MAX).is_some());
        store.remove(id);
        assert_eq!(store.load(id, 0), None);
        store.save("b", &forever).expect("save");
        store.save("a", &forever).expect("save");
        let (total, listed) = store.list(1);
        assert_eq!((total, listed.len(), listed[0].0.as_str()), (2, 1, "a"), "counted all, listed the first by id");
        std::fs::write(store.path("bad"), b"{not json").expect("write");
        assert_eq!(store.load("bad", 0), None, "unreadable: dropped");
    }
}
