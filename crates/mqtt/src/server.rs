//! Accept loop: admits each client through the broker's client registry (the connection
//! limits every listener shares) and gives it its own task.

use crate::connection::{Conn, Shared, PACKET_NAMES};
use crate::retained::Retained;
use crate::session::Sessions;
use crate::session_store::SessionStore;
use crate::MqttConfig;
use sluice_broker::accept::Acceptor;
use sluice_broker::clients::Protocol;
use sluice_broker::metrics::RequestMetrics;
use sluice_broker::Broker;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves MQTT clients until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    config: MqttConfig,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        config: Arc::new(config),
        sessions: Arc::new(Sessions::default()),
        retained: Retained::open(Arc::clone(&broker)).await,
        store: Arc::new(SessionStore::new(&broker.config().data_dir)),
        requests: Arc::new(RequestMetrics::new(broker.metrics(), Protocol::Mqtt.as_str(), &PACKET_NAMES)),
        broker: Arc::clone(&broker),
    });
    // Out of file descriptors, the acceptor closes pending connections and backs off.
    let mut acceptor = Acceptor::new(listener, Protocol::Mqtt.as_str());
    loop {
        let (socket, remote) = tokio::select! {
            pair = acceptor.accept() => pair,
            _ = stop.changed() => return Ok(()),
        };
        let guard = match broker.clients().admit(Protocol::Mqtt, remote) {
            Ok(guard) => guard,
            Err(refused) => {
                if let Some(suppressed) = broker.clients().refusal_log_due() {
                    tracing::warn!(%remote, reason = %refused, refused_unlogged = suppressed, "mqtt connection refused");
                }
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (shared, stop) = (Arc::clone(&shared), stop.clone());
        tokio::spawn(async move { Conn::serve(socket, &shared, remote, guard, stop).await });
    }
}
