//! The client quotas configured on this node, as Kafka keeps them per entity (a user, a
//! client id, or a user and a client id, each named or `<default>`), in memory and in
//! `<data_dir>/quotas.json`; and which of them applies to a connection, by Kafka's precedence.

use crate::sasl::security_log::SecurityLog;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The quotas file in the data directory.
pub const QUOTAS_FILE: &str = "quotas.json";
/// Bytes a producer may send per second (enforced).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes a consumer may fetch per second (enforced).
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percent of one request-handler thread a client may keep busy (enforced, `request_time`).
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Kafka's quota keys whose values are doubles (any positive value, as Kafka's DOUBLE
/// configs); `controller_mutation_rate` is stored and described, not enforced.
const DOUBLE_KEYS: [&str; 2] = [REQUEST_PERCENTAGE, "controller_mutation_rate"];
/// Entities one node holds: bounds the file and every lookup.
const ENTITIES_MAX: usize = 10_000;
const INVALID_REQUEST: i16 = 42;

/// One component of an entity: the default (`<default>`) or a name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Name {
    Default,
    Named(String),
}

/// A quota entity: a user, a client id, or both (never neither).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub user: Option<Name>,
    pub client_id: Option<Name>,
}

/// One change to an entity's quotas: set `key` to `value`, or remove it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

/// How DescribeClientQuotas matches one component (its `match_type`).
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// Exactly this name (0).
    Exact(String),
    /// The default (1).
    Default,
    /// Any entity with this component (2).
    Any,
}

/// Why a change was refused: Kafka's code and message.
pub type Refusal = (i16, String);

#[derive(Serialize, Deserialize)]
struct FileFormat {
    format: u32,
    quotas: Vec<(Entity, BTreeMap<String, f64>)>,
}

type Entries = BTreeMap<Entity, BTreeMap<String, f64>>;

pub struct QuotaStore {
    path: Option<PathBuf>,
    entries: RwLock<Entries>,
    /// Whether any quota is set: a connection of a broker without quotas skips every lookup.
    any: AtomicBool,
    /// In a cluster: where changes are committed instead of the file.
    log: OnceLock<Arc<dyn SecurityLog>>,
}

impl QuotaStore {
    pub fn open(data_dir: &Path) -> Result<QuotaStore, String> {
        let path = data_dir.join(QUOTAS_FILE);
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: FileFormat =
                    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                if file.format != 1 {
                    return Err(format!("{}: unknown format {}", path.display(), file.format));
                }
                file.quotas.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let store = QuotaStore { path: Some(path), ..QuotaStore::in_memory() };
        store.install(entries);
        Ok(store)
    }

    pub fn in_memory() -> QuotaStore {
        QuotaStore {
            path: None,
            entries: RwLock::new(BTreeMap::new()),
            any: AtomicBool::new(false),
            log: OnceLock::new(),
        }
    }

    /// From now on changes are committed through `log` (a cluster's metadata group), not the
    /// file, and the quotas are the cluster's (`replace_from_cluster`).
    pub fn replicate_through(&self, log: Arc<dyn SecurityLog>) {
        let _ = self.log.set(log);
    }

    /// Takes the cluster's quotas (entity record → values record); a record this version
    /// cannot read is skipped and logged.
    pub fn replace_from_cluster(&self, records: &BTreeMap<String, String>) {
        let mut entries = Entries::new();
        for (entity, values) in records {
            match (serde_json::from_str(entity), serde_json::from_str(values)) {
                (Ok(entity), Ok(values)) => {
                    entries.insert(entity, values);
                }
                _ => tracing::warn!(%entity, "a cluster quota record this node cannot read; skipped"),
            }
        }
        self.install(entries);
    }

    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Relaxed)
    }

    fn install(&self, entries: Entries) {
        self.any.store(!entries.is_empty(), Ordering::Relaxed);
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = entries;
    }

    /// Applies each entity's changes, all of an entity's or none; with `validate_only`
    /// only checks them. One answer per entity, in order.
    pub fn alter(&self, changes: Vec<(Entity, Vec<Change>)>, validate_only: bool) -> Vec<Result<(), Refusal>> {
        let before = self.entries.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = before.clone();
        let answers: Vec<Result<(), Refusal>> = changes
            .into_iter()
            .map(|(entity, ops)| {
                validate(&entity, &ops)?;
                let values = next.entry(entity.clone()).or_default();
                for op in ops {
                    match op.remove {
                        true => values.remove(&op.key),
                        false => values.insert(op.key, op.value),
                    };
                }
                if values.is_empty() {
                    next.remove(&entity);
                }
                if next.len() > ENTITIES_MAX {
                    return Err((INVALID_REQUEST, format!("more than {ENTITIES_MAX} quota entities")));
                }
                Ok(())
            })
            .collect();
        if validate_only || answers.iter().all(Result::is_err) {
            return answers;
        }
        let stored = match self.log.get() {
            Some(log) => commit(log.as_ref(), &before, &next),
            None => self.save(&next),
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot store the client quotas");
            return answers
                .into_iter()
                .map(|_| Err((INVALID_REQUEST, format!("cannot store the quotas: {e}"))))
                .collect();
        }
        self.install(next);
        answers
    }

    /// The entities whose components match `filter` (strict: and have no other component).
    pub fn describe(&self, filter: &[(String, Match)], strict: bool) -> Vec<(Entity, BTreeMap<String, f64>)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(entity, _)| matches(entity, filter, strict))
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect()
    }

    /// The quota `key` for a connection of `user` with `client_id`, and the entity that
    /// meters it, named: Kafka's precedence (user and client id, user and default client id,
    /// user, default user and client id, both defaults, default user, client id, default
    /// client id), and its sharing (a quota on a user alone is shared by all its clients).
    pub fn resolve(&self, key: &str, user: &str, client_id: &str) -> Option<(f64, Entity)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let named = |s: &str| Some(Name::Named(s.to_string()));
        let candidates = [
            (named(user), named(client_id)),
            (named(user), Some(Name::Default)),
            (named(user), None),
            (Some(Name::Default), named(client_id)),
            (Some(Name::Default), Some(Name::Default)),
            (Some(Name::Default), None),
            (None, named(client_id)),
            (None, Some(Name::Default)),
        ];
        candidates.into_iter().find_map(|(u, c)| {
            let entity = Entity { user: u, client_id: c };
            let value = *entries.get(&entity)?.get(key)?;
            let meter = Entity {
                user: entity.user.as_ref().and(named(user)),
                client_id: entity.client_id.as_ref().and(named(client_id)),
            };
            Some((value, meter))
        })
    }

    fn save(&self, entries: &BTreeMap<Entity, BTreeMap<String, f64>>) -> Result<(), String> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = FileFormat { format: 1, quotas: entries.iter().map(|(e, v)| (e.clone(), v.clone())).collect() };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        sluice_log::atomic_file::replace(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Commits the entities that differ between `before` and `next` through the cluster's log,
/// as JSON records (they always serialize).
fn commit(log: &dyn SecurityLog, before: &Entries, next: &Entries) -> Result<(), String> {
    fn json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    let upserts = next
        .iter()
        .filter(|(entity, values)| before.get(*entity) != Some(*values))
        .map(|(entity, values)| (json(entity), json(values)))
        .collect();
    let deletions = before.keys().filter(|entity| !next.contains_key(*entity)).map(json).collect();
    log.alter_quotas(upserts, deletions)
}

/// Kafka's checks: a user or client id entity, known keys, positive values, byte rates whole.
fn validate(entity: &Entity, ops: &[Change]) -> Result<(), Refusal> {
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err((INVALID_REQUEST, "a quota entity names a user, a client id or both".into()));
    }
    for op in ops {
        let byte_rate = op.key == PRODUCER_BYTE_RATE || op.key == CONSUMER_BYTE_RATE;
        if !byte_rate && !DOUBLE_KEYS.contains(&op.key.as_str()) {
            return Err((INVALID_REQUEST, format!("Invalid configuration key {}", op.key)));
        }
        let whole = op.value.fract() == 0.0;
        if !op.remove && (!op.value.is_finite() || op.value <= 0.0 || (byte_rate && !whole)) {
            return Err((INVALID_REQUEST, format!("Invalid value {} for configuration {}", op.value, op.key)));
        }
    }
    Ok(())
}

fn matches(entity: &Entity, filter: &[(String, Match)], strict: bool) -> bool {
    let component = |kind: &str| match kind {
        "user" => Some(&entity.user),
        "client-id" => Some(&entity.client_id),
        _ => None,
    };
    let each = filter.iter().all(|(kind, wanted)| match (component(kind), wanted) {
        (Some(Some(Name::Named(n))), Match::Exact(w)) => n == w,
        (Some(Some(Name::Default)), Match::Default) => true,
        (Some(Some(_)), Match::Any) => true,
        _ => false,
    });
    let present = usize::from(entity.user.is_some()) + usize::from(entity.client_id.is_some());
    each && (!strict || present == filter.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: f64) -> Change {
        Change { key: key.into(), value, remove: false }
    }

    fn user(name: &str) -> Entity {
        Entity { user: Some(Name::Named(name.into())), client_id: None }
    }

    #[test]
    fn resolution_follows_kafkas_precedence_and_sharing() {
        let store = QuotaStore::in_memory();
        let client_default = Entity { user: None, client_id: Some(Name::Default) };
        let answers = store.alter(
            vec![
                (client_default, vec![set(PRODUCER_BYTE_RATE, 100.0)]),
                (user("alice"), vec![set(PRODUCER_BYTE_RATE, 50.0)]),
            ],
            false,
        );
        assert!(answers.iter().all(Result::is_ok));
        let (value, meter) = store.resolve(PRODUCER_BYTE_RATE, "alice", "app").expect("alice's");
        assert_eq!(value, 50.0);
        assert_eq!(meter, user("alice"), "a user quota is shared by all the user's clients");
        let (value, meter) = store.resolve(PRODUCER_BYTE_RATE, "bob", "app").expect("the default client's");
        assert_eq!(value, 100.0);
        assert_eq!(meter, Entity { user: None, client_id: Some(Name::Named("app".into())) }, "metered per client id");
        assert!(store.resolve(CONSUMER_BYTE_RATE, "bob", "app").is_none());
    }

    #[test]
    fn bad_changes_are_refused_and_change_nothing() {
        let store = QuotaStore::in_memory();
        let answers = store.alter(
            vec![
                (user("a"), vec![set("bogus", 1.0)]),
                (user("b"), vec![set(PRODUCER_BYTE_RATE, 1.5)]),
                (user("c"), vec![set(CONSUMER_BYTE_RATE, -1.0)]),
                (Entity { user: None, client_id: None }, vec![set(PRODUCER_BYTE_RATE, 1.0)]),
            ],
            false,
        );
        assert!(answers.iter().all(|a| a.as_ref().is_err_and(|(code, _)| *code == INVALID_REQUEST)), "{answers:?}");
        assert!(store.is_empty());
        let ok = store.alter(vec![(user("d"), vec![set(CONSUMER_BYTE_RATE, 10.0)])], true);
        assert!(ok[0].is_ok() && store.is_empty(), "validate_only changes nothing");
    }

    #[test]
    fn describe_matches_kafkas_filters() {
        let store = QuotaStore::in_memory();
        let both = Entity { user: Some(Name::Named("a".into())), client_id: Some(Name::Default) };
        store.alter(
            vec![(user("a"), vec![set(PRODUCER_BYTE_RATE, 1.0)]), (both, vec![set(PRODUCER_BYTE_RATE, 2.0)])],
            false,
        );
        assert_eq!(store.describe(&[], false).len(), 2);
        assert_eq!(store.describe(&[("user".into(), Match::Exact("a".into()))], false).len(), 2);
        assert_eq!(store.describe(&[("user".into(), Match::Exact("a".into()))], true).len(), 1);
        assert_eq!(store.describe(&[("client-id".into(), Match::Default)], false).len(), 1);
        assert_eq!(store.describe(&[("client-id".into(), Match::Any)], true).len(), 0);
    }
}
