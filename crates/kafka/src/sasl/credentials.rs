//! SCRAM credentials (RFC 5802) as Kafka stores them: per user and mechanism a random salt,
//! the iteration count, StoredKey = H(ClientKey) and ServerKey, never the password. PLAIN
//! logins are checked against the same credentials (the password is salted and hashed with
//! the stored salt and compared with StoredKey), so one record serves all three mechanisms.
//!
//! The store lives in `<data_dir>/users.json`, replaced atomically on every change
//! (`sluice_log::atomic_file`): a crash leaves the old or the new file, never a mix.

use super::scram::{ScramCredential, ScramMechanism};
use super::security_log::SecurityLog;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The credentials file in the data directory.
pub const CREDENTIALS_FILE: &str = "users.json";
/// Format of the file; a newer one is refused rather than misread.
const FORMAT_VERSION: u32 = 1;
/// Longest user name accepted (Kafka's own limit is the request's string size; this keeps
/// the file and log lines small).
pub const USER_NAME_BYTES_MAX: usize = 256;
/// Users one store holds: bounds the file and the memory of a store fed by a network API.
pub const USERS_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Every user with the mechanisms it has and their iteration counts (no key material).
pub type UserList = Vec<(String, Vec<(ScramMechanism, u32)>)>;

/// One user's credentials, by mechanism.
pub type UserCredentials = BTreeMap<ScramMechanism, ScramCredential>;

/// Every user's credentials, in memory and (unless in-memory only) on disk.
pub struct Credentials {
    path: Option<PathBuf>,
    users: RwLock<BTreeMap<String, UserCredentials>>,
    /// In a cluster: where changes are committed instead of the file.
    log: std::sync::OnceLock<std::sync::Arc<dyn SecurityLog>>,
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    format: u32,
    users: BTreeMap<String, BTreeMap<String, StoredCredential>>,
}

#[derive(Serialize, Deserialize)]
struct StoredCredential {
    salt: String,
    stored_key: String,
    server_key: String,
    iterations: u32,
}

impl Credentials {
    /// An empty store that is never written (tests, a broker without a data directory).
    pub fn in_memory() -> Credentials {
        Credentials { path: None, users: RwLock::new(BTreeMap::new()), log: Default::default() }
    }

    /// Reads `<data_dir>/users.json`; a missing file is an empty store.
    pub fn open(data_dir: &Path) -> Result<Credentials, CredentialsError> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let users = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|reason| CredentialsError::File { path: path.clone(), reason })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(CredentialsError::File { path, reason: e.to_string() }),
        };
        Ok(Credentials { path: Some(path), users: RwLock::new(users), log: Default::default() })
    }

    /// From now on changes are committed through `log` (a cluster's metadata group), not the
    /// file, and the users are the cluster's (`replace_from_cluster`).
    pub fn replicate_through(&self, log: std::sync::Arc<dyn SecurityLog>) {
        let _ = self.log.set(log);
    }

    /// Takes the cluster's users (user → mechanism name → `encode_record` JSON); a record
    /// this build cannot read is left out, with a warning.
    pub fn replace_from_cluster(&self, users: &BTreeMap<String, BTreeMap<String, String>>) {
        let mut next = BTreeMap::new();
        for (user, mechanisms) in users {
            let mut credentials = UserCredentials::new();
            for (name, record) in mechanisms {
                match ScramMechanism::parse(name).zip(decode_record(record)) {
                    Some((mechanism, credential)) => {
                        credentials.insert(mechanism, credential);
                    }
                    None => tracing::warn!(user = %user, mechanism = %name, "unreadable cluster credential ignored"),
                }
            }
            if !credentials.is_empty() {
                next.insert(user.clone(), credentials);
            }
        }
        *self.write() = next;
    }

    /// The credential of `user` for `mechanism`, if any.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.read().get(user).and_then(|m| m.get(&mechanism)).cloned()
    }

    /// The strongest credential `user` has (SCRAM-SHA-512 before SCRAM-SHA-256), for PLAIN.
    pub fn strongest(&self, user: &str) -> Option<(ScramMechanism, ScramCredential)> {
        let users = self.read();
        let mechanisms = users.get(user)?;
        [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| mechanisms.get(&m).map(|c| (m, c.clone())))
    }

    /// Every user with the mechanisms and iteration counts they have (no key material).
    pub fn list(&self) -> UserList {
        self.read()
            .iter()
            .map(|(user, m)| (user.clone(), m.iter().map(|(mech, c)| (*mech, c.iterations)).collect()))
            .collect()
    }

    /// Applies upserts and deletions together and writes the file once. A deletion of a
    /// credential that does not exist is an error naming it; nothing is changed then.
    pub fn apply(
        &self,
        upserts: Vec<(String, ScramMechanism, ScramCredential)>,
        deletions: Vec<(String, Option<ScramMechanism>)>,
    ) -> Result<(), CredentialsError> {
        if let Some(log) = self.log.get() {
            // In a cluster: committed with no lock held (logins go on meanwhile), then the
            // difference is made here at once (`replace_from_cluster` follows with the whole).
            let before = self.read().clone();
            let next = changed(&before, upserts, deletions)?;
            commit_changes(log.as_ref(), &before, &next)?;
            let mut users = self.write();
            for (user, m, credential) in differences(&before, &next) {
                match credential {
                    Some(c) => {
                        users.entry(user).or_default().insert(m, c);
                    }
                    None => {
                        users.get_mut(&user).map(|u| u.remove(&m));
                    }
                }
            }
            users.retain(|_, m| !m.is_empty());
            return Ok(());
        }
        let mut users = self.write();
        let next = changed(&users, upserts, deletions)?;
        if let Some(path) = &self.path {
            let bytes = encode(&next);
            // Owner-only before a byte is written: StoredKey and ServerKey allow offline password
            // guessing and impersonating the server.
            let written = sluice_log::atomic_file::replace_with(path, |file| {
                use std::io::Write as _;
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                file.write_all(&bytes)
            });
            written.map_err(|e| CredentialsError::File { path: path.clone(), reason: e.to_string() })?;
        }
        *users = next;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, UserCredentials>> {
        self.users.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, UserCredentials>> {
        self.users.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type Users = BTreeMap<String, UserCredentials>;

/// The users after deletions and upserts; a deletion of a credential that does not exist is
/// an error naming it.
fn changed(
    before: &Users,
    upserts: Vec<(String, ScramMechanism, ScramCredential)>,
    deletions: Vec<(String, Option<ScramMechanism>)>,
) -> Result<Users, CredentialsError> {
    let mut next = before.clone();
    for (user, mechanism) in deletions {
        let entry = next.get_mut(&user);
        let removed = match (entry, mechanism) {
            (Some(mechanisms), Some(m)) => mechanisms.remove(&m).is_some(),
            (Some(mechanisms), None) => {
                mechanisms.clear();
                true
            }
            (None, _) => false,
        };
        if !removed {
            return Err(CredentialsError::Invalid(format!("user {user:?} has no such credential")));
        }
        if next.get(&user).is_some_and(BTreeMap::is_empty) {
            next.remove(&user);
        }
    }
    for (user, mechanism, credential) in upserts {
        check_user_name(&user)?;
        next.entry(user).or_default().insert(mechanism, credential);
    }
    if next.len() > USERS_MAX {
        return Err(CredentialsError::Invalid(format!("at most {USERS_MAX} users")));
    }
    Ok(next)
}

/// (user, mechanism, new credential or None for a deletion) from `before` to `after`.
fn differences(before: &Users, after: &Users) -> Vec<(String, ScramMechanism, Option<ScramCredential>)> {
    let mut out = Vec::new();
    for (user, mechanisms) in after {
        for (m, credential) in mechanisms {
            if before.get(user).and_then(|b| b.get(m)) != Some(credential) {
                out.push((user.clone(), *m, Some(credential.clone())));
            }
        }
    }
    for (user, mechanisms) in before {
        for m in mechanisms.keys() {
            if !after.get(user).is_some_and(|a| a.contains_key(m)) {
                out.push((user.clone(), *m, None));
            }
        }
    }
    out
}

/// Commits the difference between `before` and `after` through the cluster's log.
fn commit_changes(log: &dyn SecurityLog, before: &Users, after: &Users) -> Result<(), CredentialsError> {
    let mut upserts = Vec::new();
    let mut deletions = Vec::new();
    for (user, m, credential) in differences(before, after) {
        match credential {
            Some(c) => upserts.push((user, m.name().to_string(), encode_record(&c))),
            None => deletions.push((user, m.name().to_string())),
        }
    }
    log.alter_credentials(upserts, deletions).map_err(CredentialsError::Invalid)
}

/// One credential as the cluster's metadata holds it: the file's JSON form of it.
pub fn encode_record(c: &ScramCredential) -> String {
    let stored = StoredCredential {
        salt: BASE64.encode(&c.salt),
        stored_key: BASE64.encode(&c.stored_key),
        server_key: BASE64.encode(&c.server_key),
        iterations: c.iterations,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The credential of a cluster record, if it is one.
pub fn decode_record(record: &str) -> Option<ScramCredential> {
    let stored: StoredCredential = serde_json::from_str(record).ok()?;
    Some(ScramCredential {
        salt: BASE64.decode(&stored.salt).ok()?,
        stored_key: BASE64.decode(&stored.stored_key).ok()?,
        server_key: BASE64.decode(&stored.server_key).ok()?,
        iterations: stored.iterations,
    })
}

/// Kafka refuses empty user names; control characters would corrupt logs and principals.
pub fn check_user_name(user: &str) -> Result<(), CredentialsError> {
    if user.is_empty() || user.len() > USER_NAME_BYTES_MAX || user.chars().any(char::is_control) {
        return Err(CredentialsError::Invalid(format!(
            "user name {user:?} must be 1 to {USER_NAME_BYTES_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

fn encode(users: &BTreeMap<String, UserCredentials>) -> Vec<u8> {
    let users = users
        .iter()
        .map(|(user, mechanisms)| {
            let stored = mechanisms
                .iter()
                .map(|(m, c)| {
                    let stored = StoredCredential {
                        salt: BASE64.encode(&c.salt),
                        stored_key: BASE64.encode(&c.stored_key),
                        server_key: BASE64.encode(&c.server_key),
                        iterations: c.iterations,
                    };
                    (m.name().to_string(), stored)
                })
                .collect();
            (user.clone(), stored)
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&FileFormat { format: FORMAT_VERSION, users }).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn decode(bytes: &[u8]) -> Result<BTreeMap<String, UserCredentials>, String> {
    let file: FileFormat = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.format != FORMAT_VERSION {
        return Err(format!("unknown format {} (this build reads {FORMAT_VERSION})", file.format));
    }
    let mut users = BTreeMap::new();
    for (user, stored) in file.users {
        let mut mechanisms = UserCredentials::new();
        for (name, c) in stored {
            let mechanism = ScramMechanism::parse(&name).ok_or_else(|| format!("user {user:?}: unknown {name:?}"))?;
            let field = |text: &str| BASE64.decode(text).map_err(|e| format!("user {user:?} {name}: {e}"));
            let credential = ScramCredential {
                salt: field(&c.salt)?,
                stored_key: field(&c.stored_key)?,
                server_key: field(&c.server_key)?,
                iterations: c.iterations,
            };
            if credential.stored_key.len() != mechanism.hash_len()
                || credential.server_key.len() != mechanism.hash_len()
            {
                return Err(format!("user {user:?} {name}: keys of the wrong length"));
            }
            mechanisms.insert(mechanism, credential);
        }
        users.insert(user, mechanisms);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_a_reopen_and_hold_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Credentials::open(dir.path()).expect("open");
        let credential = ScramCredential::new(ScramMechanism::Sha512, b"s3cret-pw", b"0123456789abcdef", 4096);
        store.apply(vec![("alice".into(), ScramMechanism::Sha512, credential.clone())], vec![]).expect("add");
        let text = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).expect("read");
        assert!(!text.contains("s3cret-pw"), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(CREDENTIALS_FILE)).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only");
        let reopened = Credentials::open(dir.path()).expect("reopen");
        assert_eq!(reopened.get("alice", ScramMechanism::Sha512), Some(credential));
        assert!(reopened.get("alice", ScramMechanism::Sha256).is_none());
        assert!(reopened.apply(vec![], vec![("bob".into(), None)]).is_err());
        reopened.apply(vec![], vec![("alice".into(), None)]).expect("delete");
        assert!(Credentials::open(dir.path()).expect("reopen").list().is_empty());
    }
}
