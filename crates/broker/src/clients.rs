//! Connected clients of every protocol: one registry the listeners admit connections
//! through (so connection limits hold across Kafka and NSQ), the admin API lists, and
//! `/metrics` counts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which listener a client came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Kafka,
    Nsq,
    Mqtt,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Kafka => "kafka",
            Protocol::Nsq => "nsq",
            Protocol::Mqtt => "mqtt",
        }
    }
}

/// Connection limits shared by every listener. Zero means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Connections open at once, all protocols together.
    pub connections_max: usize,
    /// Connections open at once from one IP address.
    pub connections_per_ip_max: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits { connections_max: 10_000, connections_per_ip_max: 0 }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("too many connections ({0} open)")]
    TooManyConnections(usize),
    #[error("too many connections from {0} ({1} open)")]
    TooManyFromIp(IpAddr, usize),
}

/// What the protocol told us about a client after it connected (Kafka `client.id`, NSQ
/// IDENTIFY and SUB). Free-form so each protocol fills what it has.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientDetails {
    /// Kafka `client_id` or NSQ `client_id`.
    pub client_id: String,
    /// NSQ `hostname`.
    pub hostname: String,
    /// NSQ `user_agent` (or Kafka software name when a client sends it).
    pub user_agent: String,
    /// NSQ subscription: topic and channel.
    pub topic: String,
    pub channel: String,
    /// NSQ messages this connection published, per topic (nsqd's `pub_counts`; a client
    /// that published is listed among `/stats`' producers). Not part of the admin API.
    #[serde(skip)]
    pub published: std::collections::BTreeMap<String, u64>,
}

/// One connected client.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    /// Milliseconds since the epoch.
    pub connected_at_ms: i64,
    /// Requests (Kafka) or commands (NSQ) handled.
    pub requests: AtomicU64,
    details: Mutex<ClientDetails>,
    /// Set once the protocol named the client (Kafka sends `client_id` in every request
    /// header; only the first is recorded, so later requests take no lock).
    named: AtomicBool,
}

impl Client {
    pub fn details(&self) -> ClientDetails {
        self.details.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Updates what the client told us about itself.
    pub fn update(&self, change: impl FnOnce(&mut ClientDetails)) {
        if let Ok(mut details) = self.details.lock() {
            change(&mut details);
        }
    }

    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the client's id the first time it is told; later calls are one atomic load.
    pub fn set_client_id_once(&self, client_id: &str) {
        if !self.named.load(Ordering::Relaxed) && !self.named.swap(true, Ordering::Relaxed) {
            self.update(|details| details.client_id = client_id.to_string());
        }
    }
}

/// A plain copy of a client for listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientSnapshot {
    pub id: u64,
    pub protocol: Protocol,
    pub peer: String,
    pub connected_at_ms: i64,
    pub requests: u64,
    #[serde(flatten)]
    pub details: ClientDetails,
}

#[derive(Default)]
struct Registry {
    clients: HashMap<u64, Arc<Client>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Every connected client, with the limits that admit new ones.
pub struct Clients {
    limits: ClientLimits,
    next_id: AtomicU64,
    /// Connections ever accepted and ever refused, per protocol (for `/metrics`).
    accepted: [AtomicU64; 3],
    refused: [AtomicU64; 3],
    registry: Mutex<Registry>,
    /// Second (since the epoch) a refusal was last logged, and refusals since: a flood
    /// of refused connections logs one line per second, not one per connection.
    refusal_log: Mutex<(i64, u64)>,
}

impl Clients {
    pub fn new(limits: ClientLimits) -> Clients {
        Clients {
            limits,
            next_id: AtomicU64::new(1),
            accepted: Default::default(),
            refused: Default::default(),
            registry: Mutex::new(Registry::default()),
            refusal_log: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Call on each refusal: `Some(n)` when this one should be logged, `n` being the
    /// refusals not logged since the last line; at most one line per second.
    pub fn refusal_log_due(&self) -> Option<u64> {
        let mut log = self.refusal_log.lock().ok()?;
        let second = now_ms() / 1000;
        if second > log.0 {
            let suppressed = log.1;
            *log = (second, 0);
            Some(suppressed)
        } else {
            log.1 += 1;
            None
        }
    }

    pub fn limits(&self) -> ClientLimits {
        self.limits
    }

    /// Admits a new connection, or says which limit refuses it. The client stays listed
    /// until the returned guard drops.
    pub fn admit(self: &Arc<Self>, protocol: Protocol, peer: SocketAddr) -> Result<ClientGuard, AdmitError> {
        let mut registry = match self.registry.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let total = registry.clients.len();
        let from_ip = registry.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        let refusal = if self.limits.connections_max > 0 && total >= self.limits.connections_max {
            Some(AdmitError::TooManyConnections(total))
        } else if self.limits.connections_per_ip_max > 0 && from_ip >= self.limits.connections_per_ip_max {
            Some(AdmitError::TooManyFromIp(peer.ip(), from_ip))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.refused[protocol as usize].fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            protocol,
            peer,
            connected_at_ms: now_ms(),
            requests: AtomicU64::new(0),
            details: Mutex::new(ClientDetails::default()),
            named: AtomicBool::new(false),
        });
        registry.clients.insert(client.id, Arc::clone(&client));
        *registry.per_ip.entry(peer.ip()).or_insert(0) += 1;
        self.accepted[protocol as usize].fetch_add(1, Ordering::Relaxed);
        Ok(ClientGuard { clients: Arc::clone(self), client })
    }

    /// Every connected client, oldest first.
    pub fn list(&self) -> Vec<ClientSnapshot> {
        let clients: Vec<Arc<Client>> = match self.registry.lock() {
            Ok(registry) => registry.clients.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().clients.values().cloned().collect(),
        };
        let mut snapshots: Vec<ClientSnapshot> = clients
            .iter()
            .map(|c| ClientSnapshot {
                id: c.id,
                protocol: c.protocol,
                peer: c.peer.to_string(),
                connected_at_ms: c.connected_at_ms,
                requests: c.requests.load(Ordering::Relaxed),
                details: c.details(),
            })
            .collect();
        snapshots.sort_by_key(|s| s.id);
        snapshots
    }

    /// Connections open now for `protocol`.
    pub fn open_count(&self, protocol: Protocol) -> usize {
        match self.registry.lock() {
            Ok(registry) => registry.clients.values().filter(|c| c.protocol == protocol).count(),
            Err(_) => 0,
        }
    }

    pub fn accepted_total(&self, protocol: Protocol) -> u64 {
        self.accepted[protocol as usize].load(Ordering::Relaxed)
    }

    pub fn refused_total(&self, protocol: Protocol) -> u64 {
        self.refused[protocol as usize].load(Ordering::Relaxed)
    }

    fn remove(&self, client: &Client) {
        let mut registry = match self.registry.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        if registry.clients.remove(&client.id).is_none() {
            return;
        }
        let ip = client.peer.ip();
        if let Some(count) = registry.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.per_ip.remove(&ip);
            }
        }
    }
}

/// Keeps a client listed while its connection lives.
pub struct ClientGuard {
    clients: Arc<Clients>,
    client: Arc<Client>,
}

impl ClientGuard {
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.remove(&self.client);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn limits_total_and_per_ip_and_release_on_drop() {
        let clients = Arc::new(Clients::new(ClientLimits { connections_max: 3, connections_per_ip_max: 2 }));
        let a = clients.admit(Protocol::Kafka, peer([127, 0, 0, 1], 1)).expect("first");
        let _b = clients.admit(Protocol::Nsq, peer([127, 0, 0, 1], 2)).expect("second");
        assert_eq!(
            clients.admit(Protocol::Kafka, peer([127, 0, 0, 1], 3)).err(),
            Some(AdmitError::TooManyFromIp(IpAddr::from([127, 0, 0, 1]), 2))
        );
        let _c = clients.admit(Protocol::Kafka, peer([127, 0, 0, 2], 4)).expect("other ip");
        assert_eq!(
            clients.admit(Protocol::Kafka, peer([127, 0, 0, 3], 5)).err(),
            Some(AdmitError::TooManyConnections(3))
        );
        assert_eq!(clients.refused_total(Protocol::Kafka), 2);
        drop(a);
        assert_eq!(clients.list().len(), 2);
        assert!(clients.admit(Protocol::Kafka, peer([127, 0, 0, 1], 6)).is_ok());
        assert_eq!(clients.accepted_total(Protocol::Kafka), 3);
        assert_eq!(clients.open_count(Protocol::Nsq), 1);
    }

    #[test]
    fn refusals_log_once_per_second() {
        let clients = Clients::new(ClientLimits::default());
        assert_eq!(clients.refusal_log_due(), Some(0));
        // Within the same second (unless the clock ticks over, then it logs once more).
        let logged = (0..100).filter_map(|_| clients.refusal_log_due()).count();
        assert!(logged <= 1, "{logged} lines for 100 refusals");
    }
}
