//! Accept loops, one per transport (MQTT over TCP, MQTT over WebSocket), sharing sessions,
//! retained messages and limits: each admits a client through the broker's client registry
//! (the connection limits every listener shares) and gives it its own task.

use crate::connection::{Conn, Shared, PACKET_NAMES};
use crate::retained::Retained;
use crate::session::Sessions;
use crate::session_store::SessionStore;
use crate::MqttConfig;
use sluice_broker::accept::Acceptor;
use sluice_broker::channel::Channels;
use sluice_broker::clients::Protocol;
use sluice_broker::metrics::RequestMetrics;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How clients reach a listener.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    WebSocket,
}

/// Serves MQTT clients on `listener` (TCP) and `ws_listener` (WebSocket) until `stop` turns true.
/// `channels` (NSQ's) holds the cursors of shared subscriptions.
pub async fn serve(
    listener: TcpListener,
    ws_listener: TcpListener,
    channels: Arc<Channels>,
    config: MqttConfig,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let broker = Arc::clone(channels.broker());
    let shared = Arc::new(Shared {
        channels,
        config: Arc::new(config),
        sessions: Arc::new(Sessions::default()),
        retained: Retained::open(Arc::clone(&broker)).await,
        store: Arc::new(SessionStore::new(&broker.config().data_dir)),
        requests: Arc::new(RequestMetrics::new(broker.metrics(), Protocol::Mqtt.as_str(), &PACKET_NAMES)),
        broker,
    });
    let tcp = accept_loop(listener, Transport::Tcp, Arc::clone(&shared), stop.clone());
    let ws = accept_loop(ws_listener, Transport::WebSocket, shared, stop);
    tokio::join!(tcp, ws);
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // Out of file descriptors, the acceptor closes pending connections and backs off.
    let mut acceptor = Acceptor::new(listener, Protocol::Mqtt.as_str());
    loop {
        let (socket, remote) = tokio::select! {
            pair = acceptor.accept() => pair,
            _ = stop.changed() => return,
        };
        let guard = match shared.broker.clients().admit(Protocol::Mqtt, remote) {
            Ok(guard) => guard,
            Err(refused) => {
                if let Some(suppressed) = shared.broker.clients().refusal_log_due() {
                    tracing::warn!(%remote, ?transport, reason = %refused, refused_unlogged = suppressed, "mqtt connection refused");
                }
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        tokio::spawn(async move {
            match transport {
                Transport::Tcp => Conn::serve(socket.into_split(), &shared, remote, guard, stop).await,
                Transport::WebSocket => crate::websocket::serve(socket, &shared, remote, guard, stop).await,
            }
        });
    }
}
