//! `sluice serve`: opens the broker, starts the listeners and background upkeep, and
//! shuts everything down cleanly on SIGTERM or SIGINT.

use crate::settings::Settings;
use anyhow::Context as _;
use sluice_broker::{maintenance, Broker};
use sluice_kafka::KafkaListenerConfig;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long listeners get to finish in-flight requests after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.kafka_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.kafka_addr))?;
    let local = listener.local_addr()?;
    settings.broker.advertised_port = local.port();
    let config = settings.broker.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await?
        .with_context(|| format!("cannot open data directory {}", settings.broker.data_dir.display()))?;
    let (stop, stopped) = watch::channel(false);
    let upkeep = tokio::spawn(maintenance::run(broker.clone(), stopped.clone()));
    let group_sweeper = tokio::spawn(broker.groups().clone().run(stopped.clone()));
    let kafka =
        tokio::spawn(sluice_kafka::serve(listener, broker.clone(), KafkaListenerConfig::default(), stopped.clone()));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        kafka = %local,
        advertised = %format!("{}:{}", settings.broker.advertised_host, settings.broker.advertised_port),
        data_dir = %settings.broker.data_dir.display(),
        "sluice ready"
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        let _ = kafka.await;
        let _ = upkeep.await;
        let _ = group_sweeper.await;
    })
    .await
    .is_err()
    {
        tracing::warn!("listeners did not stop within {DRAIN_TIMEOUT:?}; flushing anyway");
    }
    tokio::task::spawn_blocking(move || broker.flush_all()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
