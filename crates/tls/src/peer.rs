//! Mutual TLS between the nodes of a cluster: every node holds a certificate signed by the
//! cluster's own CA, accepts only peers whose client certificate chains to that CA (required
//! client authentication), and, when it dials, shows its certificate and checks that the peer's
//! chains to the same CA and names the address dialled (an IP SAN for an IP, a DNS SAN for a
//! host name), as Kafka's inter-broker TLS checks a broker's host name. Both ends are Sluice,
//! so only TLS 1.3 is offered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::files::{crypto_provider, file_error, read_certs, read_key, read_roots};
use crate::files::{ClientAuth, TlsError, TlsFiles, TlsVersion};
use crate::reload::Reload;

/// A node's certificate, its key, and the CA that signs every node's certificate (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl PeerFiles {
    /// The listener's side: this node's certificate; a peer must show one of the CA's.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let files = TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: Some(self.ca.clone()),
            client_auth: ClientAuth::Required,
            min_version: TlsVersion::Tls13,
        };
        files.server_config()
    }

    /// The dialler's side: this node's certificate as its client certificate, and the CA as
    /// the only trust anchor for the peer's.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let config = ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
            .with_protocol_versions(TlsVersion::Tls13.versions())?
            .with_root_certificates(read_roots(&self.ca)?)
            .with_client_auth_cert(read_certs(&self.cert)?, read_key(&self.key)?)?;
        Ok(Arc::new(config))
    }

    /// Checks that this node's own certificate is one its peers will take: signed by the CA,
    /// valid now, usable for both ends of a connection, and naming `host` (the address the
    /// others dial). A node that would be refused by every peer is better refused at start.
    pub fn check_own_certificate(&self, host: &str) -> Result<(), TlsError> {
        let provider = Arc::new(crypto_provider());
        let roots = read_roots(&self.ca)?;
        let certs = read_certs(&self.cert)?;
        let (leaf, intermediates) = certs.split_first().ok_or_else(|| file_error(&self.cert, "no certificate"))?;
        let name = server_name(host)?;
        let now = UnixTime::now();
        let not_for_peers = |e: &dyn std::fmt::Display| {
            file_error(&self.cert, format!("not a certificate the cluster's peers accept: {e}"))
        };
        let as_server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| file_error(&self.ca, e))?;
        as_server.verify_server_cert(leaf, intermediates, &name, &[], now).map_err(|e| not_for_peers(&e))?;
        let as_client = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| file_error(&self.ca, e))?;
        as_client.verify_client_cert(leaf, intermediates, now).map_err(|e| not_for_peers(&e))?;
        Ok(())
    }
}

/// The name a peer's certificate must carry when it is dialled at `host` (an IP address or
/// a DNS name, without port or brackets).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|_| TlsError::Setting(format!("{host:?} is neither an IP address nor a DNS name")))
}

/// A node's peer TLS configurations, replaced on reload: new connections use the new
/// certificates, established ones keep theirs.
pub struct PeerTls {
    files: PeerFiles,
    current: RwLock<Configs>,
}

#[derive(Clone)]
struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl PeerTls {
    /// Reads the files once; a node does not start with certificates it cannot load.
    pub fn load(files: PeerFiles) -> Result<Arc<PeerTls>, TlsError> {
        let configs = Configs { server: files.server_config()?, client: files.client_config()? };
        Ok(Arc::new(PeerTls { files, current: RwLock::new(configs) }))
    }

    pub fn files(&self) -> &PeerFiles {
        &self.files
    }

    /// For the next connection accepted from a peer.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.configs().server)
    }

    /// For the next connection dialled to a peer.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.configs().client)
    }

    fn configs(&self) -> Configs {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Reload for PeerTls {
    fn reload(&self) -> Result<(), TlsError> {
        let configs = Configs { server: self.files.server_config()?, client: self.files.client_config()? };
        match self.current.write() {
            Ok(mut current) => *current = configs,
            Err(poisoned) => *poisoned.into_inner() = configs,
        }
        Ok(())
    }

    fn cert_path(&self) -> &Path {
        &self.files.cert
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// CA `<ca>.pem` and a node certificate `<ca>-node.pem` it signed, naming 127.0.0.11.
    fn pki(dir: &Path, ca: &str) -> PeerFiles {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let (ca_key, ca_cert, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN={ca}"));
        let ca_args = ["-days", "1", "-subj", &subject, "-keyout", &ca_key, "-out", &ca_cert];
        openssl(dir, &[&["req", "-x509"], &ec[..], &ca_args].concat());
        let (key, csr, cert, ext) = (format!("{ca}-node.key"), format!("{ca}.csr"), format!("{ca}-node.pem"), "n.ext");
        std::fs::write(dir.join(ext), "subjectAltName=IP:127.0.0.11\nextendedKeyUsage=serverAuth,clientAuth\n")
            .expect("write extensions");
        openssl(dir, &[&["req"], &ec[..], &["-subj", "/CN=node", "-keyout", &key, "-out", &csr]].concat());
        let sign = ["x509", "-req", "-in", &csr, "-CA", &ca_cert, "-CAkey", &ca_key, "-CAcreateserial"];
        openssl(dir, &[&sign[..], &["-days", "1", "-extfile", ext, "-out", &cert]].concat());
        PeerFiles { cert: dir.join(cert), key: dir.join(key), ca: dir.join(ca_cert) }
    }

    #[test]
    fn a_node_certificate_must_chain_to_the_cluster_ca_and_name_the_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = pki(dir.path(), "cluster");
        let tls = PeerTls::load(files.clone()).expect("load");
        files.check_own_certificate("127.0.0.11").expect("its own address");
        files.check_own_certificate("[127.0.0.11]").expect("brackets are not part of the name");
        let elsewhere = files.check_own_certificate("127.0.0.12").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(elsewhere.contains("not valid for name"), "{elsewhere}");
        let other = pki(dir.path(), "other");
        let foreign = PeerFiles { ca: files.ca.clone(), ..other };
        let refused = foreign.check_own_certificate("127.0.0.11").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("UnknownIssuer") || refused.contains("unknown issuer"), "{refused}");
        assert!(refused.contains("other-node.pem"), "the error names the file: {refused}");
        // A reload that fails (the key gone) keeps the configurations in use.
        std::fs::remove_file(&files.key).expect("remove key");
        assert!(tls.reload().is_err());
        let _still = (tls.acceptor(), tls.connector());
    }
}
