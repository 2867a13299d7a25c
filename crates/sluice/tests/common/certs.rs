//! Test certificates made with the `openssl` command line (Debian's, always installed): a CA,
//! a server certificate for 127.0.0.1 and localhost signed by it, client certificates whose
//! subject becomes a principal, and cluster node certificates. Everything lives in the
//! caller's temp directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files of one test PKI.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A client certificate and its key, PEM.
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// A new key `<name>.key` and a certificate `<name>.pem` for `subject`, signed by the CA in
/// `dir`, with the X.509 v3 extensions `ext` (an extension file makes it v3, which rustls
/// requires).
fn issue(dir: &Path, name: &str, subject: &str, ext: &str) {
    let (key, csr, cert, ext_file) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
    std::fs::write(dir.join(&ext_file), ext).expect("write certificate extensions");
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr]);
    let sign = ["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"];
    openssl(dir, &[&sign[..], &["-extfile", &ext_file, "-out", &cert]].concat());
}

impl TestPki {
    /// A CA and a server certificate (SAN 127.0.0.1 … 127.0.0.20 and localhost) in `dir`.
    pub fn create(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("create pki dir");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=Sluice Test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        let sans: Vec<String> = (1..=20).map(|i| format!("IP:127.0.0.{i}")).collect();
        let ext = format!("subjectAltName=DNS:localhost,{}\nbasicConstraints=CA:FALSE\n", sans.join(","));
        issue(dir, "server", "/CN=localhost", &ext);
        TestPki {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }

    /// A cluster node's certificate (`--cluster-tls-cert`) naming `ip`, signed by the CA: one
    /// certificate for both ends of node-to-node mutual TLS (serverAuth and clientAuth).
    pub fn node(&self, name: &str, ip: std::net::Ipv4Addr) -> ClientCert {
        let ext =
            format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
        issue(&self.dir, name, &format!("/CN={name}"), &ext);
        ClientCert { cert: self.dir.join(format!("{name}.pem")), key: self.dir.join(format!("{name}.key")) }
    }

    /// A client certificate with subject `subject` (e.g. "/CN=alice/OU=ops"), signed by the CA.
    /// An X.509 v3 certificate for client authentication: rustls (webpki) refuses v1 ones,
    /// which `openssl x509 -req` makes without an extension file.
    pub fn client(&self, name: &str, subject: &str) -> ClientCert {
        issue(&self.dir, name, subject, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
        ClientCert { cert: self.dir.join(format!("{name}.pem")), key: self.dir.join(format!("{name}.key")) }
    }
}
