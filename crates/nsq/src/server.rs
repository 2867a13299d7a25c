//! Accept loop: reads the protocol magic and hands each client to its own task.

use crate::codec::{self, MAGIC_V2};
use crate::commands;
use crate::connection::Conn;
use crate::NsqConfig;
use sluice_broker::accept::Acceptor;
use sluice_broker::channel::Channels;
use sluice_broker::clients::Protocol;
use sluice_broker::metrics::RequestMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long a new client has to send the magic (nsqd's client timeout).
const MAGIC_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves NSQ clients until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    channels: Arc<Channels>,
    config: NsqConfig,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let kinds: Vec<(usize, &str)> = commands::VERBS.iter().copied().enumerate().collect();
    let requests = Arc::new(RequestMetrics::new(channels.broker().metrics(), Protocol::Nsq.as_str(), &kinds));
    // Out of file descriptors, the acceptor closes pending connections and backs off.
    let mut acceptor = Acceptor::new(listener, Protocol::Nsq.as_str());
    loop {
        let (socket, remote) = tokio::select! {
            pair = acceptor.accept() => pair,
            _ = stop.changed() => return Ok(()),
        };
        let guard = match channels.broker().clients().admit(Protocol::Nsq, remote) {
            Ok(guard) => guard,
            Err(refused) => {
                if let Some(suppressed) = channels.broker().clients().refusal_log_due() {
                    tracing::warn!(%remote, reason = %refused, refused_unlogged = suppressed, "nsq connection refused");
                }
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (channels, config, stop) = (Arc::clone(&channels), Arc::clone(&config), stop.clone());
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            if let Some(socket) = read_magic(socket).await {
                Conn::new(channels, config, remote, guard, requests).run(socket, stop).await;
            }
        });
    }
}

async fn read_magic(mut socket: TcpStream) -> Option<TcpStream> {
    let mut magic = [0u8; 4];
    match tokio::time::timeout(MAGIC_TIMEOUT, socket.read_exact(&mut magic)).await {
        Ok(Ok(_)) if &magic == MAGIC_V2 => Some(socket),
        Ok(Ok(_)) => {
            // nsqd answers an unknown magic with an error frame, then closes.
            let mut frame = Vec::new();
            codec::put_frame(&mut frame, codec::FRAME_TYPE_ERROR, b"E_BAD_PROTOCOL");
            let _ = tokio::time::timeout(MAGIC_TIMEOUT, socket.write_all(&frame)).await;
            None
        }
        _ => None,
    }
}
