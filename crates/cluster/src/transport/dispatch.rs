//! What a node answers to each request: the handler seam and the flat dispatch from
//! [`Rpc`] to the group's Raft.

use std::sync::Arc;

use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, RaftError};

use super::message::{ClientWriteReply, Reply, Rpc};
use crate::types::{Batches, GroupId, Raft};

/// What the transport's server needs of its node.
pub trait RpcHandler: Send + Sync + 'static {
    /// The local Raft of `group`, if this node runs it.
    fn raft(&self, group: &GroupId) -> Option<Raft>;
    /// A node-level request (opaque bytes in, opaque bytes out).
    fn node_request(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// Answers one request. Never fails: every failure is itself a reply.
pub(super) async fn answer(handler: Arc<dyn RpcHandler>, rpc: Rpc) -> Reply {
    match rpc {
        Rpc::AppendEntries { group, req } => match handler.raft(&group) {
            Some(raft) => Reply::AppendEntries(raft.append_entries(req).await),
            None => Reply::NoSuchGroup,
        },
        Rpc::Vote { group, req } => match handler.raft(&group) {
            Some(raft) => Reply::Vote(raft.vote(req).await),
            None => Reply::NoSuchGroup,
        },
        Rpc::InstallSnapshot { group, req } => match handler.raft(&group) {
            Some(raft) => Reply::InstallSnapshot(raft.install_snapshot(req).await),
            None => Reply::NoSuchGroup,
        },
        Rpc::ClientWrite { group, data } => Reply::ClientWrite(client_write(&*handler, &group, data).await),
        Rpc::Node(body) => Reply::Node(handler.node_request(body).await),
    }
}

/// Proposes a forwarded write if this node leads `group`; otherwise names the leader.
async fn client_write(handler: &dyn RpcHandler, group: &GroupId, data: Batches) -> ClientWriteReply {
    let Some(raft) = handler.raft(group) else {
        return ClientWriteReply::NoSuchGroup;
    };
    match raft.client_write(data).await {
        Ok(response) => ClientWriteReply::Applied { log_id: response.log_id, data: response.data },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => ClientWriteReply::NotLeader {
            leader_id: forward.leader_id,
            leader_addr: forward.leader_node.map(|node| node.addr),
        },
        Err(other) => ClientWriteReply::Error(other.to_string()),
    }
}

/// A reply that says the real one could not be sent, for the kinds that can say so; the
/// others (Raft replies, which are small) leave the caller to time out.
pub(super) fn unsendable(reply: &Reply, why: &str) -> Option<Reply> {
    match reply {
        Reply::Node(_) => Some(Reply::Node(Err(format!("reply not sent: {why}")))),
        Reply::ClientWrite(_) => Some(Reply::ClientWrite(ClientWriteReply::Error(format!("reply not sent: {why}")))),
        _ => None,
    }
}
