//! Persistent sessions of a connection: started (clean, or resumed from the store) at
//! CONNECT, checkpointed while connected, stored at the end.

use super::Conn;
use crate::codec::{Connect, QoS, Reason, Version};
use crate::session_store::{SavedDelivery, SavedFilter, SavedFloor, SavedSession};
use crate::subscription::Options;
use std::sync::Arc;

/// A session that outlives its connection (3.1.1 clean session 0, v5 session expiry above 0).
pub(super) struct Persistent {
    pub client_id: String,
    /// `None`: never expires.
    pub expiry_secs: Option<u32>,
}

impl Conn {
    /// Starts the session CONNECT asks for: a clean one drops what was stored; otherwise a
    /// stored one is resumed (its subscriptions, each partition read from its floor). Answers
    /// whether a session was present.
    pub(super) async fn start_session(&mut self, connect: &Connect, client_id: &str) -> Result<bool, Reason> {
        let expiry_secs = match connect.version {
            Version::V311 => (!connect.clean_start).then_some(None),
            Version::V5 => match connect.properties.session_expiry_interval.unwrap_or(0) {
                0 => None,
                u32::MAX => Some(None),
                secs => Some(Some(secs)),
            },
        };
        self.persistent = expiry_secs.map(|expiry_secs| Persistent { client_id: client_id.to_string(), expiry_secs });
        self.subscriptions.keep_shared_channels = self.persistent.is_some();
        self.client_id = client_id.to_string();
        let (store, id, clean) = (Arc::clone(&self.store), client_id.to_string(), connect.clean_start);
        let now = crate::publish::now_ms();
        let stored = tokio::task::spawn_blocking(move || match clean {
            true => {
                store.remove(&id);
                None
            }
            false => store.load(&id, now),
        })
        .await
        .ok()
        .flatten();
        let Some(saved) = stored else {
            if self.persistent.is_some() && !self.checkpoint(0).await {
                return Err(Reason::QuotaExceeded);
            }
            return Ok(false);
        };
        self.resumed = true;
        // With its unacknowledged deliveries stored, a session reads on from where it had sent
        // (those are resent by themselves); an older one reads again from its floors.
        let exact = saved.inflight.is_some();
        self.subscriptions.resume_from(saved.floors.into_iter().map(|f| {
            let sent_end = f.sent_end.max(f.offset);
            ((f.topic, f.partition), (if exact { sent_end } else { f.offset }, sent_end))
        }));
        for filter in saved.subscriptions {
            let options = Options {
                qos: QoS::from_bits(filter.qos).unwrap_or(QoS::AtMostOnce),
                id: filter.id,
                no_local: filter.no_local,
                retain_as_published: filter.retain_as_published,
            };
            if let Err(reason) = self.subscriptions.subscribe(&filter.filter, options).await {
                tracing::warn!(
                    client_id,
                    filter = filter.filter,
                    reason = reason.code(),
                    "mqtt session filter not resumed"
                );
            }
        }
        self.restore_inflight(saved.inflight.unwrap_or_default(), saved.released, saved.qos2_received).await;
        self.checkpoint(0).await;
        Ok(true)
    }

    /// Writes a persistent session's state; false if it could not be stored.
    pub(super) async fn checkpoint(&self, disconnected_at_ms: i64) -> bool {
        let Some(persistent) = &self.persistent else { return true };
        let mut inflight: Vec<_> = self.inflight.iter().collect();
        inflight.sort_by_key(|(_, entry)| entry.sent);
        let (released, unacknowledged): (Vec<_>, Vec<_>) =
            inflight.into_iter().partition(|(packet_id, _)| self.released.contains(packet_id));
        let saved = SavedSession {
            subscriptions: (self.subscriptions.filters().into_iter())
                .map(|(filter, o)| SavedFilter {
                    filter,
                    qos: o.qos as u8,
                    id: o.id,
                    no_local: o.no_local,
                    retain_as_published: o.retain_as_published,
                })
                .collect(),
            floors: (self.subscriptions.floors().into_iter())
                .map(|(topic, partition, offset, sent_end)| SavedFloor { topic, partition, offset, sent_end })
                .collect(),
            expiry_secs: persistent.expiry_secs,
            disconnected_at_ms,
            inflight: Some(
                (unacknowledged.into_iter())
                    .filter_map(|(packet_id, entry)| {
                        let (topic, partition, offset) = entry.ack.as_ref()?.position()?;
                        Some(SavedDelivery { packet_id: *packet_id, qos: entry.qos as u8, topic, partition, offset })
                    })
                    .collect(),
            ),
            released: released.into_iter().map(|(packet_id, _)| *packet_id).collect(),
            qos2_received: self.qos2_received.iter().copied().collect(),
        };
        let (store, id) = (Arc::clone(&self.store), persistent.client_id.clone());
        match tokio::task::spawn_blocking(move || store.save(&id, &saved)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(client_id = persistent.client_id, error = %e, "mqtt session not stored");
                false
            }
            Err(_) => false,
        }
    }

    /// The connection ended: a persistent session is stored with what was not acknowledged;
    /// a resumed one that ends with its connection (v5 expiry 0) is removed.
    pub(super) async fn end_session(&mut self) {
        if self.persistent.is_some() {
            self.checkpoint(crate::publish::now_ms().max(1)).await;
        } else if self.resumed {
            let (store, client_id) = (Arc::clone(&self.store), self.client_id.clone());
            let _ = tokio::task::spawn_blocking(move || store.remove(&client_id)).await;
        }
    }
}
