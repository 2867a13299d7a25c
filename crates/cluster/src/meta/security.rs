//! The cluster-wide security state: Kafka SCRAM credentials, ACL bindings and client quotas,
//! so a user, an ACL or a quota made through any node holds on every node (and on a node that
//! joins later). The
//! records are the Kafka layer's JSON (a credential's salt, iterations, StoredKey and
//! ServerKey; a binding's resource, principal, host, operation and permission), opaque here:
//! this crate only keys, bounds and de-duplicates them, deterministically.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::MetaReply;

/// Users the cluster may hold (as a single node's credentials file).
pub const USERS_MAX: usize = 100_000;
/// ACL bindings the cluster may hold (as a single node's ACL file).
pub const ACLS_MAX: usize = 100_000;
/// Bytes of a user name (as the Kafka layer's limit).
pub const USER_BYTES_MAX: usize = 256;
/// Bytes of a mechanism name (`SCRAM-SHA-512`).
pub const MECHANISM_BYTES_MAX: usize = 32;
/// Bytes of one credential or binding record.
pub const RECORD_BYTES_MAX: usize = 4096;
/// Client quota entities the cluster may hold (as a single node's quotas file).
pub const QUOTA_ENTITIES_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecurityState {
    /// User → mechanism name → credential record.
    pub users: BTreeMap<String, BTreeMap<String, String>>,
    /// ACL binding records, each once, in creation order.
    pub acls: Vec<String>,
    /// Client quotas: entity record → its quota values record (the Kafka layer's JSON).
    /// Absent from snapshots taken before quotas were cluster-wide.
    #[serde(default)]
    pub quotas: BTreeMap<String, String>,
}

/// One credential set (AlterUserScramCredentials' upsertion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsert {
    pub user: String,
    pub mechanism: String,
    pub credential: String,
}

/// One credential removed (AlterUserScramCredentials' deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramDeletion {
    pub user: String,
    pub mechanism: String,
}

type Outcome = Result<MetaReply, MetaReply>;

fn invalid(why: impl Into<String>) -> MetaReply {
    MetaReply::Invalid(why.into())
}

fn check_record(record: &str) -> Result<(), MetaReply> {
    match record.is_empty() || record.len() > RECORD_BYTES_MAX {
        true => Err(invalid(format!("a security record is 1 to {RECORD_BYTES_MAX} bytes"))),
        false => Ok(()),
    }
}

impl SecurityState {
    /// Deletions, then upserts, all or nothing: a deletion of a credential that does not exist
    /// refuses the whole command (the proposer checked it against its own view).
    pub(super) fn alter_credentials(&mut self, upserts: Vec<ScramUpsert>, deletions: Vec<ScramDeletion>) -> Outcome {
        let mut next = self.users.clone();
        for d in deletions {
            let removed = next.get_mut(&d.user).and_then(|m| m.remove(&d.mechanism)).is_some();
            if !removed {
                return Err(invalid(format!("user {:?} has no {} credential", d.user, d.mechanism)));
            }
            if next.get(&d.user).is_some_and(BTreeMap::is_empty) {
                next.remove(&d.user);
            }
        }
        for u in upserts {
            if u.user.is_empty() || u.user.len() > USER_BYTES_MAX || u.user.chars().any(char::is_control) {
                return Err(invalid("a user name is 1 to 256 bytes without control characters"));
            }
            if u.mechanism.is_empty() || u.mechanism.len() > MECHANISM_BYTES_MAX {
                return Err(invalid("bad mechanism name"));
            }
            check_record(&u.credential)?;
            next.entry(u.user).or_default().insert(u.mechanism, u.credential);
        }
        if next.len() > USERS_MAX {
            return Err(invalid(format!("at most {USERS_MAX} users")));
        }
        self.users = next;
        Ok(MetaReply::Ok)
    }

    /// Adds the bindings not there yet.
    pub(super) fn create_acls(&mut self, bindings: Vec<String>) -> Outcome {
        let mut next = self.acls.clone();
        for binding in bindings {
            check_record(&binding)?;
            if !next.contains(&binding) {
                next.push(binding);
            }
        }
        if next.len() > ACLS_MAX {
            return Err(invalid(format!("at most {ACLS_MAX} ACL bindings")));
        }
        self.acls = next;
        Ok(MetaReply::Ok)
    }

    /// Removes exactly these bindings (those not there are ignored: a concurrent delete took them).
    pub(super) fn delete_acls(&mut self, bindings: &[String]) -> Outcome {
        self.acls.retain(|b| !bindings.contains(b));
        Ok(MetaReply::Ok)
    }

    /// Sets these entities' quota values and removes those named (absent ones are ignored),
    /// all or nothing.
    pub(super) fn alter_quotas(&mut self, upserts: Vec<(String, String)>, deletions: &[String]) -> Outcome {
        let mut next = self.quotas.clone();
        for entity in deletions {
            next.remove(entity);
        }
        for (entity, values) in upserts {
            check_record(&entity)?;
            check_record(&values)?;
            next.insert(entity, values);
        }
        if next.len() > QUOTA_ENTITIES_MAX {
            return Err(invalid(format!("at most {QUOTA_ENTITIES_MAX} quota entities")));
        }
        self.quotas = next;
        Ok(MetaReply::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: &str, credential: &str) -> ScramUpsert {
        ScramUpsert { user: user.into(), mechanism: mechanism.into(), credential: credential.into() }
    }

    #[test]
    fn credentials_are_altered_all_or_nothing() {
        // Proves upserts land, a deletion of a missing credential changes nothing, and a user
        // whose last credential goes is gone.
        let mut state = SecurityState::default();
        assert_eq!(state.alter_credentials(vec![upsert("alice", "SCRAM-SHA-512", "{}")], vec![]), Ok(MetaReply::Ok));
        let missing = ScramDeletion { user: "alice".into(), mechanism: "SCRAM-SHA-256".into() };
        let refused = state.alter_credentials(vec![upsert("bob", "SCRAM-SHA-512", "{}")], vec![missing]);
        assert!(matches!(refused, Err(MetaReply::Invalid(_))));
        assert!(!state.users.contains_key("bob"), "nothing changed");
        let gone = ScramDeletion { user: "alice".into(), mechanism: "SCRAM-SHA-512".into() };
        assert_eq!(state.alter_credentials(vec![], vec![gone]), Ok(MetaReply::Ok));
        assert!(state.users.is_empty());
        assert!(state.alter_credentials(vec![upsert("", "SCRAM-SHA-512", "{}")], vec![]).is_err());
        assert!(state.alter_credentials(vec![upsert("a", "SCRAM-SHA-512", "")], vec![]).is_err());
    }

    #[test]
    fn acls_are_kept_once_and_deleted_exactly() {
        // Proves a binding created twice is held once and deleting leaves the others.
        let mut state = SecurityState::default();
        state.create_acls(vec!["a".into(), "b".into(), "a".into()]).expect("created");
        assert_eq!(state.acls, vec!["a".to_string(), "b".to_string()]);
        state.delete_acls(&["a".into(), "zzz".into()]).expect("deleted");
        assert_eq!(state.acls, vec!["b".to_string()]);
        assert!(state.create_acls(vec![String::new()]).is_err());
    }

    #[test]
    fn quotas_are_set_and_removed_per_entity() {
        // Proves an upsert replaces an entity's values, a deletion removes it, and a bad
        // record changes nothing.
        let mut state = SecurityState::default();
        state.alter_quotas(vec![("a".into(), "1".into()), ("b".into(), "2".into())], &[]).expect("set");
        state.alter_quotas(vec![("a".into(), "3".into())], &["b".into(), "zzz".into()]).expect("altered");
        assert_eq!(state.quotas, BTreeMap::from([("a".to_string(), "3".to_string())]));
        assert!(state.alter_quotas(vec![("c".into(), String::new())], &["a".into()]).is_err());
        assert!(state.quotas.contains_key("a"), "nothing changed");
    }
}
