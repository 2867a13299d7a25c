//! The ACL bindings of this node, in memory and in `<data_dir>/acls.json`, with the
//! authorizer's settings (super users, `allow.everyone.if.no.acl.found`).

use super::{decide, AclBinding, AclFilter};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The bindings file in the data directory.
pub const ACLS_FILE: &str = "acls.json";
/// Bindings one node holds: bounds the file and every authorization's scan.
pub const BINDINGS_MAX: usize = 100_000;

pub struct Acls {
    path: Option<PathBuf>,
    bindings: RwLock<Vec<AclBinding>>,
    /// Principals (`User:admin`) allowed everything (Kafka `super.users`).
    super_users: Vec<String>,
    allow_if_no_acl: bool,
    /// In a cluster: where changes are committed instead of the file.
    log: std::sync::OnceLock<std::sync::Arc<dyn crate::sasl::security_log::SecurityLog>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FileFormat {
    format: u32,
    acls: Vec<AclBinding>,
}

impl Acls {
    pub fn open(data_dir: &Path, super_users: Vec<String>, allow_if_no_acl: bool) -> Result<Acls, String> {
        let path = data_dir.join(ACLS_FILE);
        let bindings = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: FileFormat =
                    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                if file.format != 1 {
                    return Err(format!("{}: unknown format {}", path.display(), file.format));
                }
                file.acls
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(Acls {
            path: Some(path),
            bindings: RwLock::new(bindings),
            super_users,
            allow_if_no_acl,
            log: Default::default(),
        })
    }

    pub fn in_memory(super_users: Vec<String>, allow_if_no_acl: bool) -> Acls {
        Acls { path: None, bindings: RwLock::new(Vec::new()), super_users, allow_if_no_acl, log: Default::default() }
    }

    /// From now on changes are committed through `log` (a cluster's metadata group), not the
    /// file, and the bindings are the cluster's (`replace_from_cluster`).
    pub fn replicate_through(&self, log: std::sync::Arc<dyn crate::sasl::security_log::SecurityLog>) {
        let _ = self.log.set(log);
    }

    /// Takes the cluster's bindings (`AclBinding` JSON records); an unreadable one is left
    /// out, with a warning.
    pub fn replace_from_cluster(&self, records: &[String]) {
        let next: Vec<AclBinding> = records
            .iter()
            .filter_map(|r| match serde_json::from_str(r) {
                Ok(binding) => Some(binding),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable cluster ACL binding ignored");
                    None
                }
            })
            .collect();
        *self.bindings.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Whether `principal` from `host` may do `operation` on the resource.
    pub fn authorize(&self, principal: &str, host: &str, operation: i8, resource_type: i8, name: &str) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        decide(&bindings, self.allow_if_no_acl, principal, host, operation, resource_type, name)
    }

    /// Whether `principal` from `host` may do `operation` on some resource of the type.
    pub fn authorize_any(&self, principal: &str, host: &str, operation: i8, resource_type: i8) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        super::decide_any(&bindings, self.allow_if_no_acl, principal, host, operation, resource_type)
    }

    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        bindings.iter().filter(|b| filter.matches(b)).cloned().collect()
    }

    /// Adds bindings (an existing one is kept once) and writes the file.
    pub fn create(&self, new: Vec<AclBinding>) -> Result<(), String> {
        if let Some(log) = self.log.get() {
            return self.create_in_cluster(log.as_ref(), new);
        }
        let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
        let mut next = bindings.clone();
        for binding in new {
            if !next.contains(&binding) {
                next.push(binding);
            }
        }
        if next.len() > BINDINGS_MAX {
            return Err(format!("at most {BINDINGS_MAX} ACL bindings"));
        }
        self.save(&next)?;
        *bindings = next;
        Ok(())
    }

    /// In a cluster: commits the new bindings, no lock held meanwhile (authorizations go on),
    /// then adds them here at once (`replace_from_cluster` follows with the cluster's whole set).
    fn create_in_cluster(
        &self,
        log: &dyn crate::sasl::security_log::SecurityLog,
        new: Vec<AclBinding>,
    ) -> Result<(), String> {
        let mut added: Vec<AclBinding> = Vec::new();
        {
            let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
            for binding in new {
                if !bindings.contains(&binding) && !added.contains(&binding) {
                    added.push(binding);
                }
            }
            if bindings.len() + added.len() > BINDINGS_MAX {
                return Err(format!("at most {BINDINGS_MAX} ACL bindings"));
            }
        }
        if added.is_empty() {
            return Ok(());
        }
        log.create_acls(added.iter().map(record).collect())?;
        let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
        for binding in added {
            if !bindings.contains(&binding) {
                bindings.push(binding);
            }
        }
        Ok(())
    }

    /// Removes what each filter matches; returns, per filter, what it removed.
    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, String> {
        if let Some(log) = self.log.get() {
            // In a cluster: commit the removal with no lock held, then remove here at once.
            let (removed, gone) = {
                let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
                let removed: Vec<Vec<AclBinding>> =
                    filters.iter().map(|f| bindings.iter().filter(|b| f.matches(b)).cloned().collect()).collect();
                let gone: Vec<AclBinding> =
                    bindings.iter().filter(|b| filters.iter().any(|f| f.matches(b))).cloned().collect();
                (removed, gone)
            };
            if !gone.is_empty() {
                log.delete_acls(gone.iter().map(record).collect())?;
                self.bindings.write().unwrap_or_else(|p| p.into_inner()).retain(|b| !gone.contains(b));
            }
            return Ok(removed);
        }
        let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
        let removed: Vec<Vec<AclBinding>> =
            filters.iter().map(|f| bindings.iter().filter(|b| f.matches(b)).cloned().collect()).collect();
        let next: Vec<AclBinding> =
            bindings.iter().filter(|b| !filters.iter().any(|f| f.matches(b))).cloned().collect();
        self.save(&next)?;
        *bindings = next;
        Ok(removed)
    }

    fn save(&self, bindings: &[AclBinding]) -> Result<(), String> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = FileFormat { format: 1, acls: bindings.to_vec() };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        sluice_log::atomic_file::replace(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A binding as the cluster's metadata holds it.
fn record(binding: &AclBinding) -> String {
    serde_json::to_string(binding).unwrap_or_default()
}
