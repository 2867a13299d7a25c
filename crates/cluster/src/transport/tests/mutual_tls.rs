//! The transport under mutual TLS, over real sockets: calls go through when both ends hold
//! certificates of the cluster's CA; a plaintext dialler, a certificate of another CA, and a
//! certificate that does not name the dialled address are refused at the handshake, before
//! any frame reaches the node's handler. Certificates are made with the `openssl` command.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sluice_tls::{PeerFiles, PeerTls, Reload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::harness::bounded;
use crate::transport::{serve, PeerSecurity, RpcHandler, Transport, TransportError};
use crate::types::{GroupId, Raft};

/// A generous deadline for calls that should answer at once (a debug build's handshake included).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

const EC_KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A CA, `<ca>.pem` and `<ca>.key`, in `dir`.
fn make_ca(dir: &Path, ca: &str) {
    let (key, cert, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN={ca}"));
    let rest = ["-nodes", "-days", "1", "-subj", &subject, "-keyout", &key, "-out", &cert];
    openssl(dir, &[&["req", "-x509"], &EC_KEY[..], &rest].concat());
}

/// A node certificate `<name>.pem` (key `<name>.key`) naming `ip`, signed by CA `ca`, usable
/// as server and client certificate alike: what `--cluster-tls-cert` takes.
fn node_files(dir: &Path, ca: &str, name: &str, ip: &str) -> PeerFiles {
    let (key, csr, cert, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
    let extensions =
        format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let subject = format!("/CN={name}");
    let request = ["-nodes", "-subj", &subject, "-keyout", &key, "-out", &csr];
    openssl(dir, &[&["req"], &EC_KEY[..], &request].concat());
    let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    let sign = ["x509", "-req", "-in", &csr, "-CA", &ca_cert, "-CAkey", &ca_key, "-CAcreateserial", "-days", "1"];
    openssl(dir, &[&sign[..], &["-extfile", &ext, "-out", &cert]].concat());
    PeerFiles { cert: dir.join(cert), key: dir.join(key), ca: dir.join(ca_cert) }
}

fn mutual_tls(files: PeerFiles) -> PeerSecurity {
    PeerSecurity::MutualTls(PeerTls::load(files).expect("load peer TLS"))
}

/// Counts the requests that reached the node, and echoes them.
#[derive(Default)]
struct CountingHandler {
    requests: AtomicUsize,
}

impl RpcHandler for CountingHandler {
    fn raft(&self, _group: &GroupId) -> Option<Raft> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        None
    }

    fn node_request(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok([b"echo:".as_slice(), &body].concat()) })
    }
}

/// A server on a fresh 127.0.0.1 port secured by `security`: its address and handler.
async fn server(security: PeerSecurity) -> (String, Arc<CountingHandler>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handler = Arc::new(CountingHandler::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(listener, handler.clone(), security, stopped));
    (addr, handler, stop)
}

/// Both ends with certificates of the cluster's CA: requests go through, over one connection.
#[tokio::test]
async fn peers_of_one_ca_talk() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), "cluster-ca");
        let (addr, handler, _stop) = server(mutual_tls(node_files(dir.path(), "cluster-ca", "n1", "127.0.0.1"))).await;
        let transport =
            Transport::with_security(2, mutual_tls(node_files(dir.path(), "cluster-ca", "n2", "127.0.0.2")));
        for i in 0..3 {
            let reply = transport.node_request(&addr, format!("hi {i}").into_bytes(), CALL_TIMEOUT).await.unwrap();
            assert_eq!(reply, format!("echo:hi {i}").into_bytes());
        }
        assert_eq!(handler.requests.load(Ordering::SeqCst), 3);
        assert_eq!(transport.connections_opened(), 1);
    })
    .await;
}

/// Strangers never reach the handler: a plaintext dialler, raw bytes, a node of another CA.
#[tokio::test]
async fn plaintext_and_foreign_peers_are_refused_at_the_handshake() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), "cluster-ca");
        make_ca(dir.path(), "other-ca");
        let (addr, handler, _stop) = server(mutual_tls(node_files(dir.path(), "cluster-ca", "n1", "127.0.0.1"))).await;

        let plaintext = Transport::new(2);
        let refused = plaintext.node_request(&addr, b"let me in".to_vec(), CALL_TIMEOUT).await;
        assert!(matches!(refused, Err(TransportError::ConnectionLost { .. })), "{refused:?}");

        // A frame sent raw (a valid node request's length prefix and header) is closed.
        let mut raw = TcpStream::connect(&addr).await.unwrap();
        raw.write_all(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(CALL_TIMEOUT, raw.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server closes a plaintext connection");

        let foreign = Transport::with_security(3, mutual_tls(node_files(dir.path(), "other-ca", "n3", "127.0.0.1")));
        let refused = foreign.node_request(&addr, b"let me in".to_vec(), CALL_TIMEOUT).await;
        let reason = format!("{refused:?}");
        assert!(matches!(refused, Err(TransportError::Unreachable { .. })) && reason.contains("TLS"), "{reason}");

        assert_eq!(handler.requests.load(Ordering::SeqCst), 0, "nothing reached the node");
    })
    .await;
}

/// A node of the cluster's CA whose certificate names another address than the one dialled
/// (here 127.0.0.9 for a node at 127.0.0.1) is refused by the dialler; a plaintext server is
/// not taken for a TLS one either.
#[tokio::test]
async fn the_dialler_checks_the_address_and_refuses_a_plaintext_server() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), "cluster-ca");
        let (addr, handler, _stop) = server(mutual_tls(node_files(dir.path(), "cluster-ca", "n1", "127.0.0.9"))).await;
        let transport =
            Transport::with_security(2, mutual_tls(node_files(dir.path(), "cluster-ca", "n2", "127.0.0.2")));
        let refused = transport.node_request(&addr, b"hi".to_vec(), CALL_TIMEOUT).await;
        let reason = format!("{refused:?}");
        assert!(reason.contains("TLS") && reason.contains("not valid for name"), "{reason}");
        assert_eq!(handler.requests.load(Ordering::SeqCst), 0);

        let (plain_addr, plain_handler, _plain_stop) = server(PeerSecurity::Plaintext).await;
        let refused = transport.node_request(&plain_addr, b"hi".to_vec(), CALL_TIMEOUT).await;
        assert!(matches!(refused, Err(TransportError::Unreachable { .. })), "{refused:?}");
        assert_eq!(plain_handler.requests.load(Ordering::SeqCst), 0);
    })
    .await;
}

/// A reload (what SIGHUP does) gives new connections the new certificate: a node whose
/// certificate named the wrong address is reached once a corrected one is in its files.
#[tokio::test]
async fn a_reload_serves_new_connections_with_the_new_certificate() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), "cluster-ca");
        let tls = PeerTls::load(node_files(dir.path(), "cluster-ca", "n1", "127.0.0.9")).unwrap();
        let (addr, handler, _stop) = server(PeerSecurity::MutualTls(tls.clone())).await;
        let dialler = || {
            let files = node_files(dir.path(), "cluster-ca", "n2", "127.0.0.2");
            Transport::with_security(2, mutual_tls(files))
        };
        let refused = dialler().node_request(&addr, b"hi".to_vec(), CALL_TIMEOUT).await;
        assert!(format!("{refused:?}").contains("not valid for name"), "{refused:?}");
        node_files(dir.path(), "cluster-ca", "n1", "127.0.0.1");
        tls.reload().unwrap();
        let reply = dialler().node_request(&addr, b"hi".to_vec(), CALL_TIMEOUT).await.unwrap();
        assert_eq!(reply, b"echo:hi");
        assert_eq!(handler.requests.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// Answers every node request with its body's length: the receiving end of a bulk transfer.
struct SinkHandler;

impl RpcHandler for SinkHandler {
    fn raft(&self, _group: &GroupId) -> Option<Raft> {
        None
    }

    fn node_request(&self, body: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async move { Ok((body.len() as u64).to_be_bytes().to_vec()) })
    }
}

/// Request bodies of the throughput run: a produce batch as a partition leader replicates it.
const BULK_BODY_BYTES: usize = 256 * 1024;
/// Calls in flight at once (groups replicating over the one connection).
const BULK_CONCURRENCY: usize = 16;
/// Calls per measured round.
const BULK_CALLS: usize = 2000;
/// Rounds of each kind, alternating, so load on the machine hits both alike.
const BULK_ROUNDS: usize = 3;

/// MB/s of `BULK_CALLS` requests of `BULK_BODY_BYTES` over one shared connection.
async fn bulk_round(transport: &Arc<Transport>, addr: &str) -> f64 {
    let body = vec![0x5a_u8; BULK_BODY_BYTES];
    let started = std::time::Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..BULK_CONCURRENCY {
        let (transport, addr, body) = (transport.clone(), addr.to_owned(), body.clone());
        callers.spawn(async move {
            for _ in (caller..BULK_CALLS).step_by(BULK_CONCURRENCY) {
                let reply = transport.node_request(&addr, body.clone(), CALL_TIMEOUT).await.expect("bulk call");
                assert_eq!(reply, (BULK_BODY_BYTES as u64).to_be_bytes());
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.expect("caller");
    }
    (BULK_CALLS * BULK_BODY_BYTES) as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// The cost of TLS on the transport's bulk throughput, plaintext and mutual TLS in the same
/// run. A measurement, not a check: run it in a release build,
/// `cargo test --release -p sluice-cluster --lib bulk_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bulk_throughput_plaintext_and_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "cluster-ca");
    let mut ends = Vec::new();
    for tls in [false, true] {
        let (server_security, client_security) = match tls {
            false => (PeerSecurity::Plaintext, PeerSecurity::Plaintext),
            true => (
                mutual_tls(node_files(dir.path(), "cluster-ca", "n1", "127.0.0.1")),
                mutual_tls(node_files(dir.path(), "cluster-ca", "n2", "127.0.0.2")),
            ),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, Arc::new(SinkHandler), server_security, stopped));
        ends.push((Transport::with_security(2, client_security), addr, stop));
    }
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..BULK_ROUNDS {
        for (kind, (transport, addr, _)) in ends.iter().enumerate() {
            rates[kind].push(bulk_round(transport, addr).await);
        }
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (plain, tls) = (median(&mut rates[0]), median(&mut rates[1]));
    eprintln!(
        "transport bulk throughput ({BULK_CALLS} x {} KiB, {BULK_CONCURRENCY} in flight, median of {BULK_ROUNDS}): \
         plaintext {plain:.0} MB/s, mutual TLS {tls:.0} MB/s, ratio {:.2} (rounds {rates:?})",
        BULK_BODY_BYTES / 1024,
        tls / plain
    );
}
