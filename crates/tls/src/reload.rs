//! A listener's TLS configuration that can be replaced while it runs: certificates are
//! re-read on SIGHUP (as Kafka reloads keystores and operators rotate certificates without a
//! restart). New handshakes use the new configuration; connections already established keep
//! the one they started with. A reload that fails keeps the old configuration and says why.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::files::{TlsError, TlsFiles};

pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Reads the files once; a listener is not started with a configuration it cannot load.
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, TlsError> {
        let config = files.server_config()?;
        Ok(Arc::new(ServerTls { files, current: RwLock::new(config) }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files; on error the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = self.files.server_config()?;
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }
}

/// TLS settings whose certificates can be re-read while they are in use.
pub trait Reload: Send + Sync {
    /// Re-reads the files; on error the configuration in use stays.
    fn reload(&self) -> Result<(), TlsError>;
    /// The certificate file, named in the reload's log line.
    fn cert_path(&self) -> &Path;
}

impl Reload for ServerTls {
    fn reload(&self) -> Result<(), TlsError> {
        ServerTls::reload(self)
    }

    fn cert_path(&self) -> &Path {
        &self.files.cert
    }
}

/// Reloads every listener's certificates on each SIGHUP, for as long as the process runs.
pub fn spawn_sighup_reload<T: Reload + 'static>(listeners: Vec<Arc<T>>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            for tls in &listeners {
                match tls.reload() {
                    Ok(()) => tracing::info!(cert = %tls.cert_path().display(), "TLS certificates reloaded"),
                    Err(error) => tracing::error!(%error, "TLS reload failed; the previous certificates stay in use"),
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{ClientAuth, TlsVersion};

    fn self_signed(dir: &std::path::Path) -> TlsFiles {
        let status = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: Some(dir.join("cert.pem")),
            client_auth: ClientAuth::Required,
            min_version: TlsVersion::Tls13,
        }
    }

    #[test]
    fn loads_pem_files_and_a_failed_reload_keeps_the_old_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = ServerTls::load(self_signed(dir.path())).expect("load");
        let before = tls.config();
        std::fs::write(dir.path().join("key.pem"), "not a key").expect("overwrite key");
        let err = tls.reload().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("key.pem"), "{err}");
        assert!(Arc::ptr_eq(&before, &tls.config()), "the old configuration stays after a failed reload");
    }
}
