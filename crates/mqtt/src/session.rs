//! Client ids in use: a CONNECT with the id of a connected client takes the session over,
//! and the older connection is closed (MQTT §3.1.4: the server MUST disconnect it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Sessions {
    /// Client id → (the connection's token, its "taken over" signal). A `Notify` rather than
    /// a watch channel: one signal, sent at most once, and a tenth of the memory per client.
    live: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
    next_token: AtomicU64,
}

/// A connection's hold on its client id; dropping it frees the id.
pub(crate) struct SessionGuard {
    sessions: Arc<Sessions>,
    client_id: String,
    token: u64,
    /// Notified (once, the permit kept until it is awaited) when a newer connection took the
    /// client id over.
    pub taken_over: Arc<Notify>,
}

impl Sessions {
    /// A client id for a client that sent an empty one.
    pub fn assign_id(&self) -> String {
        format!("sluice-{}", self.next_token.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether a connection holds `client_id` now.
    pub fn is_connected(&self, client_id: &str) -> bool {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains_key(client_id)
    }

    /// Connections holding a client id now.
    pub fn connected_count(&self) -> usize {
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Registers `client_id` for a new connection, closing the connection holding it.
    pub fn register(self: &Arc<Self>, client_id: &str) -> SessionGuard {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let taken_over = Arc::new(Notify::new());
        let mut live = self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, older)) = live.insert(client_id.to_string(), (token, Arc::clone(&taken_over))) {
            older.notify_one();
        }
        SessionGuard { sessions: Arc::clone(self), client_id: client_id.to_string(), token, taken_over }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut live = self.sessions.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if live.get(&self.client_id).is_some_and(|(token, _)| *token == self.token) {
            live.remove(&self.client_id);
        }
    }
}
