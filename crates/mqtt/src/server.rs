//! Accept loops, one per transport (MQTT over TCP, WebSocket, TLS and WebSocket over TLS),
//! sharing sessions, retained messages and limits: each admits a client through the broker's
//! client registry (the connection limits every listener shares) and gives it its own task,
//! which completes the TLS handshake first on the TLS transports.

use crate::connection::{Conn, Shared, PACKET_NAMES};
use crate::retained::Retained;
use crate::session::Sessions;
use crate::session_store::SessionStore;
use crate::status::{ListenerAddrs, MqttStatus};
use crate::MqttConfig;
use sluice_broker::accept::Acceptor;
use sluice_broker::channel::Channels;
use sluice_broker::clients::{ClientGuard, Protocol};
use sluice_broker::metrics::RequestMetrics;
use sluice_tls::ServerTls;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How clients reach a listener.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    WebSocket,
    Tls,
    WebSocketTls,
}

/// The MQTT listeners: TCP and WebSocket always, TLS (8883) and WebSocket over TLS when
/// configured, with the certificates they share.
pub struct Listeners {
    pub tcp: TcpListener,
    pub ws: TcpListener,
    pub tls: Option<TcpListener>,
    pub wss: Option<TcpListener>,
    /// Needed when `tls` or `wss` is set (else those are not served).
    pub certificates: Option<Arc<ServerTls>>,
}

/// Serves MQTT clients on every listener until `stop` turns true. `channels` (NSQ's) holds
/// the cursors of shared subscriptions; `status` is given the listener's state to show.
pub async fn serve(
    listeners: Listeners,
    channels: Arc<Channels>,
    config: MqttConfig,
    status: MqttStatus,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let broker = Arc::clone(channels.broker());
    let gauges = crate::counts::MqttGauges::register(broker.metrics());
    let shared = Arc::new(Shared {
        channels,
        config: Arc::new(config),
        sessions: Arc::new(Sessions::default()),
        retained: Retained::open(Arc::clone(&broker), gauges.retained.clone()).await,
        gauges,
        store: Arc::new(SessionStore::new(&broker.config().data_dir)),
        requests: Arc::new(RequestMetrics::new(broker.metrics(), Protocol::Mqtt.as_str(), &PACKET_NAMES)),
        broker,
    });
    let Listeners { tcp, ws, tls, wss, certificates } = listeners;
    let addr = |listener: &TcpListener| listener.local_addr().map(|a| a.to_string());
    let served = |listener: &Option<TcpListener>| match (listener, &certificates) {
        (Some(listener), Some(_)) => addr(listener).ok(),
        _ => None,
    };
    let addrs =
        ListenerAddrs { tcp: addr(&tcp)?, websocket: addr(&ws)?, tls: served(&tls), websocket_tls: served(&wss) };
    status.set(Arc::clone(&shared), addrs);
    let mut loops = vec![
        tokio::spawn(accept_loop(tcp, Transport::Tcp, None, Arc::clone(&shared), stop.clone())),
        tokio::spawn(accept_loop(ws, Transport::WebSocket, None, Arc::clone(&shared), stop.clone())),
    ];
    for (listener, transport) in [(tls, Transport::Tls), (wss, Transport::WebSocketTls)] {
        match (listener, &certificates) {
            (Some(listener), Some(certificates)) => {
                let certificates = Some(Arc::clone(certificates));
                loops.push(tokio::spawn(accept_loop(
                    listener,
                    transport,
                    certificates,
                    Arc::clone(&shared),
                    stop.clone(),
                )));
            }
            (Some(_), None) => tracing::error!(?transport, "mqtt TLS listener without certificates; not served"),
            (None, _) => {}
        }
    }
    for task in loops {
        let _ = task.await;
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    certificates: Option<Arc<ServerTls>>,
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
        let (shared, stop, certificates) = (Arc::clone(&shared), stop.clone(), certificates.clone());
        tokio::spawn(async move { serve_client(socket, transport, certificates, &shared, remote, guard, stop).await });
    }
}

/// One admitted client on its transport, until it leaves. The task's memory is its
/// future's size, the largest of the branches: the WebSocket and TLS ones (bridge, TLS
/// session) are boxed, so an idle TCP client holds only what its `Conn` needs.
async fn serve_client(
    socket: TcpStream,
    transport: Transport,
    certificates: Option<Arc<ServerTls>>,
    shared: &Shared,
    remote: SocketAddr,
    guard: ClientGuard,
    stop: watch::Receiver<bool>,
) {
    match (transport, certificates) {
        (Transport::Tcp, _) => Conn::serve(socket.into_split(), shared, remote, guard, stop).await,
        (Transport::WebSocket, _) => Box::pin(crate::websocket::serve(socket, shared, remote, guard, stop)).await,
        (_, Some(certificates)) => {
            Box::pin(serve_tls(socket, transport, &certificates, shared, remote, guard, stop)).await
        }
        (_, None) => {}
    }
}

/// A client of a TLS listener: the handshake, then MQTT over TLS or WebSocket over TLS.
async fn serve_tls(
    socket: TcpStream,
    transport: Transport,
    certificates: &ServerTls,
    shared: &Shared,
    remote: SocketAddr,
    guard: ClientGuard,
    stop: watch::Receiver<bool>,
) {
    // The handshake counts against the CONNECT deadline: a client that stalls in it
    // holds its slot no longer than one that never sends CONNECT.
    let handshake = certificates.acceptor().accept(socket);
    let stream = match tokio::time::timeout(shared.config.connect_timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%remote, ?transport, error = %e, "mqtt TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, ?transport, "mqtt TLS handshake not finished in time");
            return;
        }
    };
    match transport {
        Transport::WebSocketTls => crate::websocket::serve(stream, shared, remote, guard, stop).await,
        _ => Conn::serve(tokio::io::split(stream), shared, remote, guard, stop).await,
    }
}
