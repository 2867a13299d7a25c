//! The node-to-node transport every Raft group of a node uses to reach the same groups on
//! other nodes: one TCP (or mutual TLS) connection per peer, shared by all groups, multiplexed
//! by request id so many groups' RPCs are in flight at once (DESIGN.md: "share connections
//! between nodes").
//!
//! - `frame`: `[u32 len][u64 request id][u8 kind][body]`, with the maximum checked first.
//! - `message`: the bincode bodies, [`Rpc`] and [`Reply`].
//! - `server`: [`serve`] accepts peers and answers through an [`RpcHandler`] (`dispatch`).
//! - `client` / `connection`: [`Transport`], the pool of multiplexed connections.
//! - `network`: [`GroupNetwork`], openraft's network factory for one group.
//! - `contact`: when each group's followers last answered (the ISR's liveness).
//! - `security`: [`PeerSecurity`], plain TCP or mutual TLS under the cluster's CA, both ends.
//! - `limits`: every size, count and time bound, with its reason.

mod client;
mod connection;
mod contact;
mod dispatch;
mod error;
pub mod frame;
pub mod limits;
pub mod message;
mod network;
mod security;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use client::Transport;
pub use contact::GroupContacts;
pub use dispatch::RpcHandler;
pub use error::TransportError;
pub use message::{ClientWriteReply, Reply, Rpc};
pub use network::{GroupNetwork, GroupPeer};
pub use security::{DialError, PeerSecurity, PeerStream, REFUSAL_LOG_INTERVAL};
pub use server::serve;
