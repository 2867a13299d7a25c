//! openraft's view of the transport: a network factory per group, and per target node a
//! client that sends that group's Raft RPCs over the node's shared connections.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RPCTypes};

use super::client::{unexpected, Transport};
use super::contact::GroupContacts;
use super::error::TransportError;
use super::message::{Reply, Rpc};
use crate::types::{GroupId, NodeId, TypeConfig};

/// The network factory of one group's Raft.
pub struct GroupNetwork {
    transport: Arc<Transport>,
    contacts: Arc<GroupContacts>,
    group: GroupId,
}

impl GroupNetwork {
    pub(super) fn new(transport: Arc<Transport>, contacts: Arc<GroupContacts>, group: GroupId) -> GroupNetwork {
        GroupNetwork { transport, contacts, group }
    }
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = GroupPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GroupPeer {
        GroupPeer {
            transport: self.transport.clone(),
            contacts: self.contacts.clone(),
            group: self.group.clone(),
            target,
            node: node.clone(),
        }
    }
}

/// One group's RPCs to one target node. Holds no connection of its own: the transport's pool
/// has the one connection per peer every group shares.
pub struct GroupPeer {
    transport: Arc<Transport>,
    /// Told of every AppendEntries the target answers (the ISR's liveness).
    contacts: Arc<GroupContacts>,
    group: GroupId,
    target: NodeId,
    node: BasicNode,
}

/// How long a leader waits before trying a peer again after it could not be reached (or did
/// not run the group yet), for the first `UNREACHABLE_RETRIES_FAST` tries: openraft's own
/// 500 ms, longer than a follower's election timeout (300–600 ms by default), let a node just
/// restarted (whose groups answer "no such group" for a moment) time out and call an election
/// that deposed a healthy leader. Retrying within a heartbeat reaches it before its timer runs
/// out. A failed try is cheap: the transport answers at once while it backs off its dials.
const UNREACHABLE_RETRY_FAST: Duration = Duration::from_millis(100);
/// About ten seconds of fast retries; a peer down longer is retried at openraft's pace.
const UNREACHABLE_RETRIES_FAST: usize = 100;
const UNREACHABLE_RETRY_SLOW: Duration = Duration::from_millis(500);

/// openraft's error of a Raft RPC whose remote API error is `E`.
type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl GroupPeer {
    /// Sends one Raft RPC within openraft's soft deadline, so our timeout (which names the
    /// call) comes before openraft's own.
    async fn send<E: std::error::Error>(
        &self,
        rpc: Rpc,
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<Reply, RpcError<E>> {
        self.transport
            .call(&self.node.addr, rpc, option.soft_ttl())
            .await
            .map_err(|error| self.failed(error, action, option.soft_ttl()))
    }

    /// Maps a transport failure to the openraft error that makes it retry: a peer that cannot
    /// be reached (or does not run the group yet) is `Unreachable`, so openraft backs off.
    fn failed<E: std::error::Error>(&self, error: TransportError, action: RPCTypes, timeout: Duration) -> RpcError<E> {
        match error {
            TransportError::Timeout { .. } => {
                RPCError::Timeout(Timeout { action, id: self.transport.local(), target: self.target, timeout })
            }
            TransportError::Unreachable { .. } | TransportError::ConnectionLost { .. } => {
                RPCError::Unreachable(Unreachable::new(&error))
            }
            _ => RPCError::Network(NetworkError::new(&error)),
        }
    }

    fn remote<E: std::error::Error>(&self, error: RaftError<NodeId, E>) -> RpcError<E> {
        RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), error))
    }

    /// The failure for a reply that is not the one asked for. A peer that does not run the
    /// group (not yet created there, or removed) is as good as down for it: openraft backs
    /// off and retries.
    fn other_reply<E: std::error::Error>(&self, reply: Reply) -> RpcError<E> {
        match reply {
            Reply::NoSuchGroup => {
                let error = TransportError::NoSuchGroup { addr: self.node.addr.clone(), group: self.group.to_string() };
                RPCError::Unreachable(Unreachable::new(&error))
            }
            other => RPCError::Network(NetworkError::new(&unexpected(&self.node.addr, &other))),
        }
    }
}

impl RaftNetwork<TypeConfig> for GroupPeer {
    fn backoff(&self) -> Backoff {
        let fast = std::iter::repeat_n(UNREACHABLE_RETRY_FAST, UNREACHABLE_RETRIES_FAST);
        Backoff::new(fast.chain(std::iter::repeat(UNREACHABLE_RETRY_SLOW)))
    }

    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        let entries = req.entries.len() as u64;
        let rpc = Rpc::AppendEntries { group: self.group.clone(), req };
        let timeout = option.soft_ttl();
        match self.transport.call(&self.node.addr, rpc, timeout).await {
            Ok(Reply::AppendEntries(Ok(response))) => {
                self.contacts.answered(self.target);
                Ok(response)
            }
            Ok(Reply::AppendEntries(Err(error))) => Err(self.remote(error)),
            Ok(other) => Err(self.other_reply(other)),
            // Too many entries for one frame: ask openraft to send half as many. A single
            // entry over the frame maximum cannot be sent at all (a Network error).
            Err(TransportError::TooLarge) if entries > 1 => {
                Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2)))
            }
            Err(error) => Err(self.failed(error, RPCTypes::AppendEntries, timeout)),
        }
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let rpc = Rpc::InstallSnapshot { group: self.group.clone(), req };
        match self.send(rpc, RPCTypes::InstallSnapshot, &option).await? {
            Reply::InstallSnapshot(Ok(response)) => Ok(response),
            Reply::InstallSnapshot(Err(error)) => Err(self.remote(error)),
            other => Err(self.other_reply(other)),
        }
    }

    async fn vote(&mut self, req: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcError> {
        let rpc = Rpc::Vote { group: self.group.clone(), req };
        match self.send(rpc, RPCTypes::Vote, &option).await? {
            Reply::Vote(Ok(response)) => Ok(response),
            Reply::Vote(Err(error)) => Err(self.remote(error)),
            other => Err(self.other_reply(other)),
        }
    }
}
