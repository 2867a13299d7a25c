//! The dialling side: a pool of one lazily (re)connected, multiplexed connection per peer
//! address, shared by every Raft group of the node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::connection::Connection;
use super::contact::{Contacts, GroupContacts};
use super::error::TransportError;
use super::frame::FrameKind;
use super::limits::{REDIAL_BACKOFF_FIRST, REDIAL_BACKOFF_MAX, REQUEST_TIMEOUT};
use super::message::{self, ClientWriteReply, Reply, Rpc};
use super::network::GroupNetwork;
use super::security::{PeerSecurity, PeerStream, Refusals};
use crate::types::{Batches, GroupId, NodeId};

/// A node's client side of the cluster transport.
pub struct Transport {
    /// This node's id: openraft's timeout errors name both ends.
    local: NodeId,
    /// One entry per peer address ever called; a cluster has a handful of peers, and an entry
    /// without a live connection holds no socket.
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    /// Request ids, unique per transport so they are unique per connection.
    next_request_id: AtomicU64,
    /// Connections dialled successfully so far (for tests and metrics: with sharing, it stays
    /// at one per peer while connections stay up).
    connections_opened: AtomicU64,
    /// When each group's followers last answered this node (as their leader).
    contacts: Contacts,
    /// Plain TCP or mutual TLS, for every dial.
    security: PeerSecurity,
    /// Dials that failed at the TLS handshake, for the rate-limited log.
    refusals: Refusals,
}

/// One peer address and its connection state; the async lock makes concurrent callers share
/// one dial instead of racing several.
struct Peer {
    link: tokio::sync::Mutex<Link>,
}

#[derive(Default)]
struct Link {
    connection: Option<Arc<Connection>>,
    /// Dials failed in a row, for the backoff.
    failed_dials: u32,
    /// No dial before this instant (set after a failed dial).
    next_dial_at: Option<Instant>,
}

impl Transport {
    /// A transport that dials its peers over plain TCP.
    pub fn new(local: NodeId) -> Arc<Transport> {
        Transport::with_security(local, PeerSecurity::Plaintext)
    }

    /// A transport that dials its peers as `security` says (the listener's `serve` must be
    /// given the same).
    pub fn with_security(local: NodeId, security: PeerSecurity) -> Arc<Transport> {
        Arc::new(Transport {
            local,
            peers: Mutex::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            connections_opened: AtomicU64::new(0),
            contacts: Contacts::default(),
            security,
            refusals: Refusals::default(),
        })
    }

    /// How this transport's connections are secured (what else dials a peer uses the same).
    pub fn security(&self) -> &PeerSecurity {
        &self.security
    }

    /// This node's id.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// How many connections this transport has dialled successfully since it was made.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// Sends `rpc` to the node at `addr` and waits up to `timeout` for its reply (dialling
    /// included).
    pub async fn call(&self, addr: &str, rpc: Rpc, timeout: Duration) -> Result<Reply, TransportError> {
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let frame = message::encode_frame(id, FrameKind::Request, &rpc)?;
        drop(rpc);
        let exchange = async {
            let connection = self.connection(addr).await?;
            let reply = connection.call(id, frame).await?;
            Ok(message::decode::<Reply>(&reply)?)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { addr: addr.to_owned(), timeout }),
        }
    }

    /// Forwards a client write for `group` to the node at `addr` (which should lead it).
    pub async fn client_write(
        &self,
        addr: &str,
        group: GroupId,
        data: Batches,
    ) -> Result<ClientWriteReply, TransportError> {
        match self.call(addr, Rpc::ClientWrite { group, data }, REQUEST_TIMEOUT).await? {
            Reply::ClientWrite(reply) => Ok(reply),
            Reply::NoSuchGroup => Ok(ClientWriteReply::NoSuchGroup),
            other => Err(unexpected(addr, &other)),
        }
    }

    /// A node-level request: opaque bytes to the peer's `RpcHandler::node_request`.
    pub async fn node_request(&self, addr: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        match self.call(addr, Rpc::Node(body), timeout).await? {
            Reply::Node(Ok(reply)) => Ok(reply),
            Reply::Node(Err(message)) => Err(TransportError::Remote { addr: addr.to_owned(), message }),
            other => Err(unexpected(addr, &other)),
        }
    }

    /// openraft network factory for one group (cheap; one per Raft instance).
    pub fn network(self: &Arc<Self>, group: GroupId) -> GroupNetwork {
        GroupNetwork::new(self.clone(), self.contacts(&group), group)
    }

    /// When `group`'s followers last answered this node's AppendEntries.
    pub fn contacts(&self, group: &GroupId) -> Arc<GroupContacts> {
        self.contacts.of(group)
    }

    /// The live connection to `addr`, dialling one if there is none and the backoff allows.
    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, TransportError> {
        let peer = self.peer(addr);
        let mut link = peer.link.lock().await;
        if let Some(connection) = &link.connection {
            if connection.is_alive() {
                return Ok(connection.clone());
            }
        }
        link.connection = None;
        if let Some(at) = link.next_dial_at {
            if Instant::now() < at {
                return Err(unreachable(addr, "backing off after a failed dial".to_owned()));
            }
        }
        let failure = match self.security.connect(addr).await {
            Ok(stream) => {
                let connection = Arc::new(match stream {
                    PeerStream::Plain(stream) => {
                        let (read, write) = stream.into_split();
                        Connection::start(addr.to_owned(), read, write)
                    }
                    PeerStream::Tls(stream) => {
                        let (read, write) = tokio::io::split(*stream);
                        Connection::start(addr.to_owned(), read, write)
                    }
                });
                *link = Link { connection: Some(connection.clone()), ..Link::default() };
                self.connections_opened.fetch_add(1, Ordering::Relaxed);
                return Ok(connection);
            }
            Err(error) => {
                self.refusals.dialled_peer(addr, &error);
                error.to_string()
            }
        };
        link.failed_dials = link.failed_dials.saturating_add(1);
        link.next_dial_at = Some(Instant::now() + redial_backoff(link.failed_dials));
        Err(unreachable(addr, failure))
    }

    fn peer(&self, addr: &str) -> Arc<Peer> {
        let mut peers = self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        peers
            .entry(addr.to_owned())
            .or_insert_with(|| Arc::new(Peer { link: tokio::sync::Mutex::new(Link::default()) }))
            .clone()
    }
}

/// The wait after `failed_dials` failed dials in a row: doubling from the first, capped.
fn redial_backoff(failed_dials: u32) -> Duration {
    let doublings = failed_dials.saturating_sub(1).min(16);
    REDIAL_BACKOFF_FIRST.saturating_mul(1 << doublings).min(REDIAL_BACKOFF_MAX)
}

fn unreachable(addr: &str, reason: String) -> TransportError {
    TransportError::Unreachable { addr: addr.to_owned(), reason }
}

/// The error for a reply of another kind than the request's, named briefly (never the
/// reply's contents, which may be large).
pub(super) fn unexpected(addr: &str, reply: &Reply) -> TransportError {
    let what = match reply {
        Reply::AppendEntries(_) => "an AppendEntries reply",
        Reply::Vote(_) => "a Vote reply",
        Reply::InstallSnapshot(_) => "an InstallSnapshot reply",
        Reply::ClientWrite(_) => "a ClientWrite reply",
        Reply::Node(_) => "a node reply",
        Reply::NoSuchGroup => "no such group",
    };
    TransportError::UnexpectedReply { addr: addr.to_owned(), what: what.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The redial wait doubles from its first value and stops at its maximum.
    #[test]
    fn redial_backoff_doubles_and_is_bounded() {
        assert_eq!(redial_backoff(1), REDIAL_BACKOFF_FIRST);
        assert_eq!(redial_backoff(2), REDIAL_BACKOFF_FIRST * 2);
        assert_eq!(redial_backoff(u32::MAX), REDIAL_BACKOFF_MAX);
        assert!((1..100).all(|n| redial_backoff(n) <= redial_backoff(n + 1)));
    }
}
