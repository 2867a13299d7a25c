//! SASL users, ACLs and client quotas cluster-wide: the Kafka layer's stores commit their
//! changes through the metadata group (`MetaSecurityLog`, a `SecurityLog`) instead of this
//! node's `users.json` / `acls.json` / `quotas.json`, and every node takes the cluster's users and bindings whenever
//! the applied metadata changes (`follow`). So AlterUserScramCredentials or CreateAcls at any
//! node holds on every node, across restarts, and on a node that joins later (it applies the
//! same log or snapshot). The node's own files are left as they are and not read in a cluster.

use super::ClusterNode;
use sluice_cluster::meta::{MetaCommand, MetaReply, ScramDeletion, ScramUpsert, SecurityState};
use sluice_kafka::sasl::security_log::SecurityLog;
use sluice_kafka::sasl::Security;
use std::sync::Arc;
use tokio::sync::watch;

struct MetaSecurityLog {
    node: Arc<ClusterNode>,
    runtime: tokio::runtime::Handle,
}

impl MetaSecurityLog {
    /// Proposes `command` and waits for its commit (the caller is on the blocking pool).
    fn commit(&self, command: MetaCommand) -> Result<(), String> {
        let node = Arc::clone(&self.node);
        let reply = self.runtime.block_on(async move { node.propose_meta(&command).await });
        match reply.map_err(|e| e.to_string())? {
            MetaReply::Ok => Ok(()),
            MetaReply::Invalid(why) => Err(why),
            other => Err(format!("unexpected metadata reply {other:?}")),
        }
    }
}

impl SecurityLog for MetaSecurityLog {
    fn alter_credentials(
        &self,
        upserts: Vec<(String, String, String)>,
        deletions: Vec<(String, String)>,
    ) -> Result<(), String> {
        let upserts = upserts
            .into_iter()
            .map(|(user, mechanism, credential)| ScramUpsert { user, mechanism, credential })
            .collect();
        let deletions = deletions.into_iter().map(|(user, mechanism)| ScramDeletion { user, mechanism }).collect();
        self.commit(MetaCommand::AlterScramCredentials { upserts, deletions })
    }

    fn create_acls(&self, bindings: Vec<String>) -> Result<(), String> {
        self.commit(MetaCommand::CreateAcls { bindings })
    }

    fn delete_acls(&self, bindings: Vec<String>) -> Result<(), String> {
        self.commit(MetaCommand::DeleteAcls { bindings })
    }

    fn alter_quotas(&self, upserts: Vec<(String, String)>, deletions: Vec<String>) -> Result<(), String> {
        self.commit(MetaCommand::AlterClientQuotas { upserts, deletions })
    }
}

/// Makes `security`'s credentials and ACLs the cluster's, from now on.
pub fn attach(node: &Arc<ClusterNode>, security: &Arc<Security>, stopped: watch::Receiver<bool>) {
    let log = Arc::new(MetaSecurityLog { node: Arc::clone(node), runtime: tokio::runtime::Handle::current() });
    security.credentials.replicate_through(log.clone());
    security.quotas.store.replicate_through(log.clone());
    if let Some(acls) = &security.acls {
        acls.replicate_through(log);
    }
    tokio::spawn(follow(node.state_changes(), Arc::clone(security), stopped));
}

fn take(security: &Security, state: &SecurityState) {
    security.credentials.replace_from_cluster(&state.users);
    security.quotas.store.replace_from_cluster(&state.quotas);
    if let Some(acls) = &security.acls {
        acls.replace_from_cluster(&state.acls);
    }
}

/// Takes the cluster's users and bindings now and after every change of them.
async fn follow(
    mut states: watch::Receiver<Arc<sluice_cluster::meta::ClusterState>>,
    security: Arc<Security>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last = states.borrow_and_update().security.clone();
    take(&security, &last);
    loop {
        tokio::select! {
            changed = states.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = stopped.changed() => return,
        }
        let current = states.borrow_and_update().security.clone();
        if current != last {
            take(&security, &current);
            last = current;
        }
    }
}
