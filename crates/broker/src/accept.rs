//! Accepting connections when file descriptors run short, for every listener (Kafka, NSQ,
//! HTTP). Out of descriptors, `accept` fails with EMFILE/ENFILE while the connection stays
//! in the backlog, so a plain loop either spins or leaves clients hanging. Each listener
//! keeps one spare descriptor: on EMFILE it closes the spare, accepts pending connections
//! and closes them at once (the client sees a close and backs off instead of waiting), then
//! reopens the spare; and it backs off, doubling, before accepting again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// First pause after a failed accept: long enough not to spin, short enough that a
/// brief shortage costs little.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause: a listener out of descriptors still retries every second.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Pending connections closed per shortage, so shedding a flood cannot starve the loop.
const SHED_MAX: usize = 256;
/// A failing listener logs at most this often.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// A listener with a spare descriptor and a backoff.
pub struct Acceptor {
    listener: TcpListener,
    /// Which listener, for logs.
    name: &'static str,
    /// `/dev/null`, held so a shortage always has one descriptor to free.
    spare: Option<std::fs::File>,
    backoff: Duration,
    logged_at: Option<Instant>,
    /// Connections closed unserved since the last log line.
    shed_unlogged: u64,
}

impl Acceptor {
    pub fn new(listener: TcpListener, name: &'static str) -> Acceptor {
        Acceptor { listener, name, spare: open_spare(), backoff: BACKOFF_MIN, logged_at: None, shed_unlogged: 0 }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection. Never fails: errors are logged (rate-limited) and retried
    /// after a backoff; cancel-safe, so it can sit in a `select!` with a shutdown signal.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(pair) => {
                    self.backoff = BACKOFF_MIN;
                    if self.spare.is_none() {
                        self.spare = open_spare();
                    }
                    return pair;
                }
                Err(e) => {
                    if is_out_of_descriptors(&e) {
                        self.shed();
                    }
                    self.log_failure(&e);
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Closes the spare, closes the connections already pending, and reopens the spare.
    fn shed(&mut self) {
        self.spare = None;
        for _ in 0..SHED_MAX {
            // `try_accept`-like: poll once, never wait for a connection that is not there.
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            match self.listener.poll_accept(&mut cx) {
                std::task::Poll::Ready(Ok((stream, _))) => {
                    drop(stream);
                    self.shed_unlogged += 1;
                }
                _ => break,
            }
        }
        self.spare = open_spare();
    }

    fn log_failure(&mut self, e: &std::io::Error) {
        if self.logged_at.is_some_and(|at| at.elapsed() < LOG_INTERVAL) {
            return;
        }
        self.logged_at = Some(Instant::now());
        tracing::warn!(listener = self.name, error = %e, closed_unserved = self.shed_unlogged,
            backoff_ms = self.backoff.as_millis() as u64, "accept failed");
        self.shed_unlogged = 0;
    }
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}
