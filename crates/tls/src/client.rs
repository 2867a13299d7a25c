//! TLS for connections Sluice opens itself (an nsqd auth server named by an `https://` URL), as
//! nsqd's `buildClientTLSConfig` sets them up: trusted roots from `--tls-root-ca-file` when set,
//! else the system's CA bundle (found where Go's `crypto/x509` looks on Linux), and the same
//! minimum version as the listeners. The server's certificate must name the host connected to
//! (DNS or IP subject alternative name): rustls's webpki verifier checks it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::files::{crypto_provider, file_error, read_certs, TlsError, TlsVersion};

/// Go's `crypto/x509` system bundles on Linux, first found wins (`root_linux.go`); the
/// `SSL_CERT_FILE` environment variable overrides them, as it does for Go.
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A client configuration trusting `root_ca` (PEM, every certificate must load) or, without
/// it, the system bundle (certificates rustls cannot parse are skipped, as Go skips them).
pub fn client_config(root_ca: Option<&Path>, min_version: TlsVersion) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match root_ca {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| file_error(path, e))?;
            }
        }
        None => {
            let path = system_bundle()?;
            let (added, _skipped) = roots.add_parsable_certificates(read_certs(&path)?);
            if added == 0 {
                return Err(file_error(&path, "no usable CA certificate in the system bundle"));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_protocol_versions(min_version.versions())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn system_bundle() -> Result<PathBuf, TlsError> {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
        TlsError::Setting(format!("no system CA bundle ({}); set a root CA file", SYSTEM_BUNDLES.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_a_file_must_all_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let err = client_config(Some(&empty), TlsVersion::Tls12).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("empty.pem") && err.contains("no PEM certificate"), "{err}");
        let missing = client_config(Some(Path::new("/nonexistent/ca.pem")), TlsVersion::Tls13);
        assert!(missing.err().map(|e| e.to_string()).unwrap_or_default().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn the_system_bundle_when_no_file_is_given() {
        // Debian's ca-certificates is on every machine that builds Sluice; skip where it is not.
        if system_bundle().is_err() {
            return;
        }
        assert!(client_config(None, TlsVersion::Tls12).is_ok());
    }
}
