//! The HTTP listener: accepts connections itself (instead of `axum::serve`) so that they
//! are bounded and time out.
//!
//! - At most `connections_max` connections are open. At the limit a new connection closes
//!   the oldest connection with no request in progress (an idle keep-alive, or one that
//!   has not finished a header), as nginx reuses idle keep-alive connections; when every
//!   connection is serving a request, the new one is closed at once.
//! - A connection that takes longer than `idle_timeout` to send a complete request header,
//!   counted from the end of its previous response (or from accept), is closed: this ends
//!   both idle keep-alive connections and slow-header ones (hyper's header read timeout).
//! - Out of file descriptors, the acceptor closes pending connections and backs off.
//! - After a burst (at least `TRIM_AFTER_CONNECTIONS` open at once, then back to a quarter
//!   of that peak) the allocator is asked to return freed memory (`malloc_trim`): glibc
//!   otherwise keeps the per-connection buffers of a burst as resident memory for good
//!   (RELIABILITY.md, "HTTP connections").

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use sluice_broker::accept::Acceptor;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

/// A burst this large is worth a `malloc_trim`: below it the retained memory is a few MB.
const TRIM_AFTER_CONNECTIONS: usize = 256;
/// `malloc_trim` walks every arena under its lock; at most once per this interval.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// How long after a burst ends the trim waits, for the burst's last connections to close.
const TRIM_SETTLE: Duration = Duration::from_millis(500);

/// Limits of the HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// HTTP connections open at once on one listener.
    pub connections_max: usize,
    /// Longest wait for a complete request header, from accept or the previous response.
    pub idle_timeout: Duration,
}

/// Each idle connection holds a descriptor and hyper's buffers (some KiB): a thousand is
/// far more than HTTP publishers and monitors need and leaves descriptors for the rest.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;
/// Go's `net/http` clients keep idle connections 90 s; a minute frees a silent client's
/// descriptor soon while keeping the keep-alive of a client that polls `/stats`.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { connections_max: CONNECTIONS_MAX_DEFAULT, idle_timeout: IDLE_TIMEOUT_DEFAULT }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then lets requests in progress
/// finish and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, router, limits, None, stop).await
}

/// `serve` over TLS (nsqd's `--https-address`): each connection's handshake runs in its own
/// task, bounded by the idle timeout, and a failed one closes that connection only.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: Arc<sluice_tls::ServerTls>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, router, limits, Some(tls), stop).await
}

async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: Option<Arc<sluice_tls::ServerTls>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut acceptor = Acceptor::new(listener, "http");
    let connections = Arc::new(Connections::new(limits.connections_max));
    // Every connection task holds a clone; `recv` returns `None` when all have ended.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            pair = acceptor.accept() => pair,
            _ = stop.changed() => break,
        };
        let Some(slot) = connections.admit() else {
            tracing::debug!(%peer, "http connection refused: every connection is busy");
            continue;
        };
        let (router, conn_stop, open, connections) =
            (router.clone(), stop.clone(), open.clone(), Arc::clone(&connections));
        let handshake = tls.as_ref().map(|tls| tls.acceptor());
        tokio::spawn(async move {
            match handshake {
                None => serve_connection(stream, peer, router, limits, &slot, conn_stop).await,
                Some(acceptor) => match tokio::time::timeout(limits.idle_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, peer, router, limits, &slot, conn_stop).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "https handshake failed"),
                    Err(_) => tracing::debug!(%peer, "https handshake timed out"),
                },
            }
            if let Some(wait) = connections.remove(&slot) {
                tokio::time::sleep(wait).await;
                // Off the runtime: trimming a large heap takes milliseconds.
                let _ = tokio::task::spawn_blocking(trim_allocator).await;
            }
            drop(open);
        });
        if *stop.borrow() {
            break;
        }
    }
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Serves one connection until it closes, times out, is evicted, or shutdown completes it.
async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    router: Router,
    limits: HttpLimits,
    slot: &Arc<Slot>,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let busy = Arc::clone(slot);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        // Who is asking, for the admin API's login limiter and ACL host checks.
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let busy = Busy::enter(&busy);
        async move {
            let response = tower_service::Service::call(&mut router, request.map(axum::body::Body::new)).await;
            drop(busy);
            Ok::<_, Infallible>(match response {
                Ok(response) => response,
                Err(never) => match never {},
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection ended");
            }
        }
        // Evicted for a new connection: no request is in progress, so just close.
        _ = slot.evict.notified() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The open connections of one listener, oldest first.
struct Connections {
    connections_max: usize,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
    /// Most connections open at once since the last trim, and when that trim was.
    burst: Mutex<(usize, Option<Instant>)>,
}

/// One open connection, as the limit sees it.
struct Slot {
    id: u64,
    /// Requests being served now (hyper serves one at a time; a counter is simplest).
    busy: AtomicUsize,
    /// Set when chosen for eviction, so a slot is evicted once.
    evicted: AtomicBool,
    /// Wakes the connection's task to close it.
    evict: Notify,
}

impl Connections {
    fn new(connections_max: usize) -> Connections {
        Connections {
            connections_max: connections_max.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            burst: Mutex::new((0, None)),
        }
    }

    /// A slot for a new connection, evicting the oldest idle one at the limit; `None`
    /// when every open connection is serving a request.
    fn admit(&self) -> Option<Arc<Slot>> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.len() >= self.connections_max {
            let idle = open
                .values()
                .find(|slot| slot.busy.load(Ordering::Acquire) == 0 && !slot.evicted.load(Ordering::Acquire))?;
            let id = idle.id;
            idle.evicted.store(true, Ordering::Release);
            idle.evict.notify_one();
            open.remove(&id);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot =
            Arc::new(Slot { id, busy: AtomicUsize::new(0), evicted: AtomicBool::new(false), evict: Notify::new() });
        open.insert(id, Arc::clone(&slot));
        let count = open.len();
        drop(open);
        let mut burst = self.burst.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        burst.0 = burst.0.max(count);
        Some(slot)
    }

    /// Forgets a closed connection; when a burst has just ended, says how long to wait
    /// before trimming the allocator (trims are at least `TRIM_INTERVAL` apart).
    fn remove(&self, slot: &Slot) -> Option<Duration> {
        let count = {
            let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            open.remove(&slot.id);
            open.len()
        };
        let mut burst = self.burst.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (peak, trimmed_at) = *burst;
        if peak < TRIM_AFTER_CONNECTIONS || count > peak / 4 {
            return None;
        }
        // A moment after the burst ends, so its last connections have closed too.
        let now = Instant::now();
        let at = trimmed_at.map_or(now, |at| at + TRIM_INTERVAL).max(now + TRIM_SETTLE);
        *burst = (count, Some(at));
        Some(at - now)
    }
}

/// Returns memory glibc's malloc holds free to the system.
fn trim_allocator() {
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Marks a connection busy while its request's handler runs.
struct Busy(Arc<Slot>);

impl Busy {
    fn enter(slot: &Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(slot))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_is_evicted_and_busy_ones_refuse() {
        // Proves the limit: idle connections make room for new ones (oldest first), busy
        // ones do not, and a full house of busy connections refuses the next one.
        let connections = Connections::new(2);
        let first = connections.admit().expect("first");
        let second = connections.admit().expect("second");
        let _busy = Busy::enter(&second);
        let third = connections.admit().expect("evicts the idle first");
        assert!(first.evicted.load(Ordering::Acquire));
        assert!(!second.evicted.load(Ordering::Acquire));
        let _busy_too = Busy::enter(&third);
        assert!(connections.admit().is_none(), "every connection busy: refused");
        assert_eq!(connections.open.lock().map(|open| open.len()).unwrap_or(0), 2);
    }
}
