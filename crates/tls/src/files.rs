//! Reading certificates and keys (PEM) and building a rustls `ServerConfig` from them.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

/// Whether a client must show a certificate signed by the configured CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for (Kafka `none`, nsqd's default).
    #[default]
    None,
    /// Asked for and verified if shown; a client without one is still served
    /// (Kafka `requested`; nsqd's `require`, see `parse`).
    Requested,
    /// A client without a valid certificate is refused at the handshake (Kafka `required`,
    /// nsqd `require-verify`).
    Required,
}

impl ClientAuth {
    /// Accepts Kafka's names (`none`, `requested`, `required`) and nsqd's
    /// (`require`, `require-verify`; nsqd's `require` asks for a certificate without
    /// verifying it against a CA, which rustls cannot do, so it is treated as `requested`).
    pub fn parse(name: &str) -> Result<ClientAuth, TlsError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(ClientAuth::None),
            "requested" | "require" => Ok(ClientAuth::Requested),
            "required" | "require-verify" => Ok(ClientAuth::Required),
            other => Err(TlsError::Setting(format!(
                "unknown client auth policy {other:?} (none, requested, required, require, require-verify)"
            ))),
        }
    }
}

/// The lowest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    #[default]
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Accepts `1.2`, `1.3`, `TLSv1.2`, `TLSv1.3`, `tls1.2`, `tls1.3` (Kafka's and nsqd's spellings).
    pub fn parse(name: &str) -> Result<TlsVersion, TlsError> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.trim_start_matches("tlsv").trim_start_matches("tls") {
            "1.2" | "" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            _ => Err(TlsError::Setting(format!("unsupported minimum TLS version {name:?} (1.2 or 1.3)"))),
        }
    }

    pub(crate) fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY_13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersion::Tls12 => &BOTH,
            TlsVersion::Tls13 => &ONLY_13,
        }
    }
}

/// What a TLS listener is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates are verified against, PEM.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0}")]
    Setting(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsFiles {
    /// Reads the files and builds the configuration; every problem names its file.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(crypto_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.min_version.versions())?;
        let builder = match (self.client_auth, &self.client_ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Setting(
                    "client certificates are asked for but no client CA file is configured".into(),
                ))
            }
            (policy, Some(ca_path)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(read_roots(ca_path)?, provider);
                let verifier = match policy {
                    ClientAuth::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier.build().map_err(|e| file_error(ca_path, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(read_certs(&self.cert)?, read_key(&self.key)?)?;
        Ok(Arc::new(config))
    }
}

/// rustls with *ring*: it builds with a C compiler alone (aws-lc-rs wants cmake and more),
/// and the clients Sluice serves (librdkafka, Java, Go, Python) negotiate its classic key
/// exchanges; rustls 0.23.48 deprecated it only for lacking post-quantum key exchange.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

pub(crate) fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

pub(crate) fn open(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path).map(BufReader::new).map_err(|e| file_error(path, e))
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs =
        rustls_pemfile::certs(&mut open(path)?).collect::<Result<Vec<_>, _>>().map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The CA certificates in `path`, as the trust anchors of a verifier.
pub(crate) fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| file_error(path, e))?;
    }
    Ok(Arc::new(roots))
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| file_error(path, e))?
        .ok_or_else(|| file_error(path, "no PEM private key in the file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_versions_parse_kafka_and_nsqd_spellings() {
        assert_eq!(ClientAuth::parse("required").ok(), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("require-verify").ok(), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("requested").ok(), Some(ClientAuth::Requested));
        assert_eq!(ClientAuth::parse("").ok(), Some(ClientAuth::None));
        assert!(ClientAuth::parse("sometimes").is_err());
        assert_eq!(TlsVersion::parse("TLSv1.3").ok(), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("tls1.2").ok(), Some(TlsVersion::Tls12));
        assert!(TlsVersion::parse("1.0").is_err());
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: None,
            client_auth: ClientAuth::None,
            min_version: TlsVersion::Tls12,
        };
        let err = files.server_config().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}
