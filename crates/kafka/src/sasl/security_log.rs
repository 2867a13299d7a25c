//! Where a cluster keeps SCRAM credentials, ACL bindings and client quotas: with one attached,
//! the stores (`Credentials`, `Acls`, `QuotaStore`) commit every change through it — the metadata group, so it holds
//! on every node — instead of writing this node's files, and take the whole cluster-wide
//! state back with `replace_from_cluster` whenever it changes. A single node has none.

/// Commits changes cluster-wide. Blocking: called off the async workers (the handlers that
/// change credentials or ACLs run on the blocking pool). Records are JSON: a credential as
/// `credentials::encode_record`, a binding as `AclBinding`'s serde form.
pub trait SecurityLog: Send + Sync {
    /// (user, mechanism name, credential record) upserts and (user, mechanism name) deletions.
    fn alter_credentials(
        &self,
        upserts: Vec<(String, String, String)>,
        deletions: Vec<(String, String)>,
    ) -> Result<(), String>;
    fn create_acls(&self, bindings: Vec<String>) -> Result<(), String>;
    fn delete_acls(&self, bindings: Vec<String>) -> Result<(), String>;
    /// Client quotas: (entity record, values record) upserts and entity record deletions,
    /// records as `quota::store`'s serde forms.
    fn alter_quotas(&self, upserts: Vec<(String, String)>, deletions: Vec<String>) -> Result<(), String>;
}
