//! The Kafka listeners: each accepts connections (completing the TLS handshake on SSL and
//! SASL_SSL listeners) and runs one task per connection until the shutdown signal.

use crate::connection;
use crate::listener::{KafkaListener, ListenerInfo};
use crate::sasl::{Principal, Security};
use crate::session::Session;
use crate::versions::SUPPORTED_APIS;
use sluice_broker::accept::Acceptor;
use sluice_broker::clients::Protocol;
use sluice_broker::metrics::RequestMetrics;
use sluice_broker::Broker;
use sluice_tls::ServerTls;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// Limits of the Kafka listener.
#[derive(Debug, Clone)]
pub struct KafkaListenerConfig {
    /// Largest request frame accepted (Kafka `socket.request.max.bytes`, 100 MiB).
    pub request_bytes_max: usize,
    /// Requests one connection may have in flight (pipelined) before reading pauses.
    pub inflight_requests_max: usize,
    /// Request bytes one connection may have in flight (read, reply not yet written) before
    /// reading pauses; at least `request_bytes_max` so any accepted request can proceed.
    pub inflight_bytes_max: usize,
    /// A connection with no request for this long is closed (Kafka `connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// A reply write that makes no progress for this long closes the connection: the
    /// client stopped reading, and its queued replies must not pin memory.
    pub write_timeout: Duration,
    /// Request bytes read (or being read) and not yet answered, all connections together
    /// (Kafka `queued.max.request.bytes`); at least `request_bytes_max`, so a frame the
    /// listener accepts can always get its budget.
    pub queued_request_bytes_max: usize,
}

/// Kafka's `socket.request.max.bytes`.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// Two maximal requests (Kafka bounds this broker-wide with `queued.max.request.bytes`,
/// unbounded by default; here it is per connection).
pub const INFLIGHT_BYTES_MAX_DEFAULT: usize = 2 * REQUEST_BYTES_MAX_DEFAULT;
/// Five maximal requests broker-wide: enough for several producers' large batches at once,
/// small enough that request buffers cannot take the machine's memory (Kafka's
/// `queued.max.request.bytes` is unbounded by default).
pub const QUEUED_REQUEST_BYTES_MAX_DEFAULT: usize = 5 * REQUEST_BYTES_MAX_DEFAULT;
/// Requests one connection may have in flight. A producer with `linger.ms=0` (librdkafka
/// sends whatever it holds as soon as the socket takes it) pipelines many small requests,
/// and an acks=all request of a replicated partition waits for a Raft commit (a leader
/// fsync, a follower's round trip and fsync: tens of ms under load): a connection serves at
/// most this many requests per commit, the rest wait unread in its socket. At 32 a producer
/// of 20 MB/s in 1 KiB messages fell ever further behind (seconds of latency, BENCHMARKS.md
/// "Cluster"); the partition's proposer joins queued requests into one Raft entry, so more
/// in flight means larger entries, not more of them. Memory stays bounded by the byte
/// budgets (`inflight_bytes_max`, `queued_request_bytes_max`), not by this count.
pub const INFLIGHT_REQUESTS_MAX_DEFAULT: usize = 256;
/// Kafka's `connections.max.idle.ms` default: 10 minutes.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
/// Far longer than any healthy client takes to drain a reply, short enough that a stuck
/// client frees its memory within a minute.
pub const WRITE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
const _: () = assert!(INFLIGHT_BYTES_MAX_DEFAULT >= REQUEST_BYTES_MAX_DEFAULT);
const _: () = assert!(QUEUED_REQUEST_BYTES_MAX_DEFAULT >= REQUEST_BYTES_MAX_DEFAULT);
const _: () = assert!(QUEUED_REQUEST_BYTES_MAX_DEFAULT <= u32::MAX as usize);

impl Default for KafkaListenerConfig {
    fn default() -> Self {
        KafkaListenerConfig {
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            inflight_requests_max: INFLIGHT_REQUESTS_MAX_DEFAULT,
            inflight_bytes_max: INFLIGHT_BYTES_MAX_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            write_timeout: WRITE_TIMEOUT_DEFAULT,
            queued_request_bytes_max: QUEUED_REQUEST_BYTES_MAX_DEFAULT,
        }
    }
}

/// Shared by every connection.
pub struct Context {
    pub broker: Arc<Broker>,
    pub config: KafkaListenerConfig,
    /// Latency per served API, indexed by API key (`sluice_request_duration_seconds`).
    pub requests: RequestMetrics,
    /// The broker-wide request-byte budget (`queued_request_bytes_max` permits).
    pub queued_request_bytes: Arc<Semaphore>,
    /// `config.queued_request_bytes_max`, clamped to what a semaphore acquire can ask for.
    pub queued_request_bytes_max: usize,
    /// Credentials and failed-login counts, shared by every listener.
    pub security: Arc<Security>,
}

/// A TLS handshake not finished within this closes the connection: a client that connects
/// and sends nothing (or garbage slowly) cannot hold a connection slot for long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on every listener until `shutdown` turns true.
pub async fn serve(
    listeners: Vec<KafkaListener>,
    broker: Arc<Broker>,
    config: KafkaListenerConfig,
    security: Arc<Security>,
    shutdown: watch::Receiver<bool>,
) {
    let kinds: Vec<(usize, String)> =
        SUPPORTED_APIS.iter().map(|(api, _, _)| (*api as i16 as usize, format!("{api:?}"))).collect();
    let kinds: Vec<(usize, &str)> = kinds.iter().map(|(key, name)| (*key, name.as_str())).collect();
    let requests = RequestMetrics::new(broker.metrics(), Protocol::Kafka.as_str(), &kinds);
    let queued_request_bytes_max = config.queued_request_bytes_max.clamp(1, u32::MAX as usize);
    let queued_request_bytes = Arc::new(Semaphore::new(queued_request_bytes_max));
    let context =
        Arc::new(Context { broker, config, requests, queued_request_bytes, queued_request_bytes_max, security });
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|listener| tokio::spawn(accept_loop(Arc::clone(&context), listener, shutdown.clone())))
        .collect();
    for task in accepting {
        let _ = task.await;
    }
}

async fn accept_loop(context: Arc<Context>, listener: KafkaListener, mut shutdown: watch::Receiver<bool>) {
    let info = Arc::new(listener.info);
    let tls = listener.tls;
    // Out of file descriptors, the acceptor closes pending connections and backs off.
    let mut acceptor = Acceptor::new(listener.tcp, Protocol::Kafka.as_str());
    loop {
        tokio::select! {
            (stream, peer) = acceptor.accept() => {
                spawn_connection(Arc::clone(&context), Arc::clone(&info), tls.clone(), stream, peer, shutdown.clone())
            }
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
}

fn spawn_connection(
    context: Arc<Context>,
    listener: Arc<ListenerInfo>,
    tls: Option<Arc<ServerTls>>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    // Over a connection limit the connection is closed at once, as Kafka does for
    // `max.connections` and `max.connections.per.ip`: the client backs off and retries.
    let guard = match context.broker.clients().admit(Protocol::Kafka, peer) {
        Ok(guard) => guard,
        Err(refused) => {
            if let Some(suppressed) = context.broker.clients().refusal_log_due() {
                tracing::warn!(%peer, reason = %refused, refused_unlogged = suppressed, "kafka connection refused");
            }
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let client = guard.client().id;
        let protocol = listener.protocol.as_str();
        tracing::info!(%peer, client, listener = protocol, "kafka client connected");
        let outcome = match tls {
            None => {
                let session = Session::new(listener, peer, None);
                let (reader, writer) = stream.into_split();
                connection::run(context, reader, writer, shutdown, Arc::clone(guard.client()), session).await
            }
            Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                Ok(Ok(stream)) => {
                    let principal = certificate_principal(&stream);
                    if let Some(principal) = &principal {
                        tracing::info!(%peer, client, %principal, "kafka client certificate verified");
                    }
                    let session = Session::new(listener, peer, principal);
                    let (reader, writer) = tokio::io::split(stream);
                    connection::run(context, reader, writer, shutdown, Arc::clone(guard.client()), session).await
                }
                Ok(Err(error)) => {
                    tracing::info!(%peer, client, %error, "kafka TLS handshake failed; connection closed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, client, "kafka TLS handshake timed out; connection closed");
                    return;
                }
            },
        };
        match outcome {
            Ok(()) => tracing::info!(%peer, client, client_id = %guard.client().details().client_id,
                "kafka client disconnected"),
            Err(e) => tracing::info!(%peer, client, client_id = %guard.client().details().client_id, error = %e,
                "kafka client disconnected"),
        }
        drop(guard);
    });
}

/// `User:<subject DN>` for a client that showed a verified certificate, as Kafka's default
/// principal builder makes it; None without one (the connection stays `User:ANONYMOUS`).
fn certificate_principal(stream: &sluice_tls::TlsStream<tokio::net::TcpStream>) -> Option<Principal> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    sluice_tls::subject_dn(certificate.as_ref()).map(Principal::user)
}
