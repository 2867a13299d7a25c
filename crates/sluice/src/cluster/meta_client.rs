//! Proposing metadata commands from any node: to the local metadata Raft when it leads,
//! otherwise forwarded to the leader over the transport, retried across elections for a
//! bounded time.

use super::ClusterNode;
use openraft::error::{ClientWriteError, RaftError};
use sluice_broker::BrokerError;
use sluice_cluster::meta::{MetaCommand, MetaReply};
use sluice_cluster::transport::ClientWriteReply;
use sluice_cluster::types::{Batches, GroupId};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a proposal may take across elections before the caller gets an error: a few
/// election timeouts.
pub const PROPOSE_DEADLINE: Duration = Duration::from_secs(15);
/// Pause between attempts while no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl ClusterNode {
    /// Commits `command` in the metadata group and returns the state machine's reply.
    pub async fn propose_meta(&self, command: &MetaCommand) -> Result<MetaReply, BrokerError> {
        let data = command
            .encode(now_ms())
            .map_err(|e| BrokerError::Storage(format!("cannot encode a metadata command: {e}")))?;
        let deadline = tokio::time::Instant::now() + PROPOSE_DEADLINE;
        loop {
            match self.try_propose_meta(&data).await {
                Ok(reply) => return Ok(reply),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(BrokerError::ReplicationFailed(format!("metadata group: {e}")));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metadata proposal retried");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn try_propose_meta(&self, data: &Batches) -> Result<MetaReply, String> {
        let applied = match self.meta.client_write(data.clone()).await {
            Ok(response) => response.data,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                let leader = forward.leader_node.ok_or("no metadata leader yet")?;
                match self.transport.client_write(&leader.addr, GroupId::Meta, data.clone()).await {
                    Ok(ClientWriteReply::Applied { data, .. }) => data,
                    Ok(ClientWriteReply::NotLeader { leader_id, .. }) => {
                        return Err(format!("node {} no longer leads (leader: {leader_id:?})", leader.addr));
                    }
                    Ok(ClientWriteReply::NoSuchGroup) => return Err("the leader runs no metadata group".into()),
                    Ok(ClientWriteReply::Error(e)) => return Err(e),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err(e) => return Err(e.to_string()),
        };
        let reply = applied.reply.ok_or("the metadata entry gave no reply")?;
        MetaReply::decode(&reply).map_err(|e| e.to_string())
    }
}
