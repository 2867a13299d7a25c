//! `sluice serve`: opens the broker, starts the listeners and background upkeep, and
//! shuts everything down cleanly on SIGTERM or SIGINT.

use crate::settings::Settings;
use anyhow::Context as _;
use sluice_broker::{compactor, maintenance, Broker};
use sluice_kafka::listener::{KafkaListener, ListenerInfo};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long listeners get to finish in-flight requests after the shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a clustered node spends moving leadership off itself before it stops.
const CONTROLLED_SHUTDOWN_MAX: Duration = Duration::from_secs(4);

pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    // Before any listener is bound: a SIGTERM sent as soon as a port accepts connections
    // must stop the broker cleanly, not kill it with the default action.
    let stop_signals = StopSignals::install()?;
    match sluice_log::raise_open_files_limit() {
        Ok(l) => tracing::info!(
            soft_before = l.soft_before,
            soft = l.soft,
            hard = l.hard,
            file_cache = sluice_log::open_files_max(),
            "open-file limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
    let kafka_listeners = bind_kafka_listeners(&settings).await?;
    let local = kafka_listeners.first().map(|l| l.local_addr()).transpose()?.context("no Kafka listener")?;
    let nsq_listeners = NsqListeners::bind(&settings.nsq).await?;
    let mqtt_listeners = bind_mqtt_listeners(&settings.mqtt).await?;
    settings.broker.advertised_port = local.port();
    let credentials = sluice_kafka::sasl::credentials::Credentials::open(&settings.broker.data_dir)
        .context("cannot read the SASL credentials")?;
    let quotas = sluice_kafka::quota::Quotas::open(&settings.broker.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot read the client quotas: {e}"))?;
    let mut security = sluice_kafka::sasl::Security::new(Arc::new(credentials))
        .with_reauth_max(settings.reauth_max)
        .with_quotas(Arc::new(quotas));
    if let Some(authorizer) = &settings.authorizer {
        let acls = sluice_kafka::acl::Acls::open(
            &settings.broker.data_dir,
            authorizer.super_users.clone(),
            authorizer.allow_everyone_if_no_acl_found,
        )
        .map_err(|e| anyhow::anyhow!("cannot read the ACLs: {e}"))?;
        security = security.with_acls(Arc::new(acls));
    }
    let security = Arc::new(security);
    // Before the broker opens: partitions rebuild producer state with it.
    sluice_broker::producer_state::set_expiration(settings.producer_id_expiration);
    let config = settings.broker.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await?
        .with_context(|| format!("cannot open data directory {}", settings.broker.data_dir.display()))?;
    let (stop, stopped) = watch::channel(false);
    // In a cluster, the broker is wired to its Raft groups before any listener takes a client.
    let cluster = match settings.cluster.clone() {
        Some(cluster_settings) => {
            let listeners = crate::cluster::Listeners {
                kafka: format!("{}:{}", settings.broker.advertised_host, settings.broker.advertised_port),
                // The first listener of each protocol, as Metadata names nodes by it.
                kafka_listeners: kafka_listeners
                    .iter()
                    .rev()
                    .map(|l| {
                        let info = &l.info;
                        (
                            info.protocol.as_str().to_string(),
                            format!("{}:{}", info.advertised_host, info.advertised_port),
                        )
                    })
                    .collect(),
                // Under the NSQ broadcast address, as the other nodes' lookupd API names them.
                nsq_tcp: format!("{}:{}", settings.nsq.broadcast_address, nsq_listeners.tcp.local_addr()?.port()),
                http: format!("{}:{}", settings.nsq.broadcast_address, nsq_listeners.http.local_addr()?.port()),
            };
            let node = crate::cluster::ClusterNode::start(cluster_settings, broker.clone(), listeners, stopped.clone())
                .await?;
            crate::cluster::attach(&node).context("cannot join the broker to the cluster")?;
            // Users and ACLs are then the metadata group's, the same on every node.
            crate::cluster::security_sync::attach(&node, &security, stopped.clone());
            // Committed offsets then live in `__consumer_offsets`, coordinated by its leaders.
            broker.groups().replicate_offsets(Arc::downgrade(&broker), stopped.clone());
            Some(node)
        }
        None => None,
    };
    let upkeep = tokio::spawn(maintenance::run(broker.clone(), stopped.clone()));
    let compaction = tokio::spawn(compactor::run(broker.clone(), stopped.clone()));
    let group_sweeper = tokio::spawn(broker.groups().clone().run(stopped.clone()));
    let kafka_addrs: Vec<String> = kafka_listeners
        .iter()
        .map(|l| Ok(format!("{}://{}", l.info.protocol.as_str(), l.local_addr()?)))
        .collect::<std::io::Result<_>>()?;
    let admin_auth = settings.http_auth.enabled.then(|| crate::admin_auth::http_auth(&security, settings.http_auth));
    let kafka = tokio::spawn(sluice_kafka::serve(
        kafka_listeners,
        broker.clone(),
        settings.kafka.clone(),
        security,
        stopped.clone(),
    ));
    let node = sluice_http::NodeInfo {
        kafka_addr: local.to_string(),
        nsq_tcp_addr: nsq_listeners.tcp.local_addr()?.to_string(),
        http_addr: nsq_listeners.http.local_addr()?.to_string(),
        started_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        settings: settings.effective(),
    };
    // Filled in by the MQTT listener, shown by the admin API served before it starts.
    let mqtt_status = sluice_mqtt::MqttStatus::default();
    let (nsq_tasks, channels) = nsq_listeners.start(
        &settings.nsq,
        HttpServing { limits: settings.http, auth: admin_auth },
        node,
        mqtt_status.clone(),
        broker.clone(),
        stopped.clone(),
    )?;
    // MQTT shared subscriptions are NSQ channels: the listener shares NSQ's registry.
    let mqtt_config = settings.mqtt.config.clone();
    let mqtt = tokio::spawn(serve_mqtt(mqtt_listeners, channels, mqtt_config, mqtt_status, stopped.clone()));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        kafka = %local,
        kafka_listeners = %kafka_addrs.join(","),
        mqtt = %settings.mqtt.addr,
        mqtt_ws = %settings.mqtt.ws_addr,
        mqtt_tls = ?settings.mqtt.tls_addr,
        mqtt_wss = ?settings.mqtt.wss_addr,
        advertised = %format!("{}:{}", settings.broker.advertised_host, settings.broker.advertised_port),
        data_dir = %settings.broker.data_dir.display(),
        "sluice ready"
    );
    stop_signals.wait().await;
    tracing::info!("shutting down");
    if let Some(node) = &cluster {
        // Kafka's controlled shutdown: clients follow a leader change instead of waiting out
        // an election timeout once this process is gone. Bounded: a shutdown never hangs.
        let drained = tokio::time::timeout(CONTROLLED_SHUTDOWN_MAX, node.drain(node.node_id as i32)).await;
        if drained.is_err() {
            tracing::warn!("leadership not all moved off within {CONTROLLED_SHUTDOWN_MAX:?}; stopping anyway");
        }
    }
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        let _ = kafka.await;
        let _ = mqtt.await;
        for task in nsq_tasks {
            let _ = task.await;
        }
        let _ = upkeep.await;
        let _ = compaction.await;
        let _ = group_sweeper.await;
    })
    .await
    .is_err()
    {
        tracing::warn!("listeners did not stop within {DRAIN_TIMEOUT:?}; flushing anyway");
    }
    if let Some(node) = &cluster {
        node.shutdown().await;
    }
    tokio::task::spawn_blocking(move || broker.flush_all()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the MQTT listeners before the broker opens and loads the certificates of the TLS
/// ones (the `--ssl-*` files, reloaded on SIGHUP).
async fn bind_mqtt_listeners(mqtt: &crate::settings::mqtt::MqttSettings) -> anyhow::Result<sluice_mqtt::Listeners> {
    let bind = |addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
    };
    let certificates = match &mqtt.tls {
        Some(files) => {
            let tls = sluice_tls::ServerTls::load(files.clone()).context("cannot load the MQTT TLS certificates")?;
            sluice_tls::spawn_sighup_reload(vec![tls.clone()]).context("cannot install the SIGHUP handler")?;
            Some(tls)
        }
        None => None,
    };
    Ok(sluice_mqtt::Listeners {
        tcp: bind(mqtt.addr).await?,
        ws: bind(mqtt.ws_addr).await?,
        tls: match mqtt.tls_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        },
        wss: match mqtt.wss_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        },
        certificates,
    })
}

async fn serve_mqtt(
    listeners: sluice_mqtt::Listeners,
    channels: std::sync::Arc<sluice_broker::channel::Channels>,
    config: sluice_mqtt::MqttConfig,
    status: sluice_mqtt::MqttStatus,
    stopped: watch::Receiver<bool>,
) {
    if let Err(e) = sluice_mqtt::serve(listeners, channels, config, status, stopped).await {
        tracing::error!(error = %e, "mqtt listener failed");
    }
}

/// Binds every Kafka listener before the broker opens (a taken port fails fast), loads the
/// TLS certificates once for all SSL and SASL_SSL listeners, and reloads them on SIGHUP.
async fn bind_kafka_listeners(settings: &Settings) -> anyhow::Result<Vec<KafkaListener>> {
    let tls = match &settings.kafka_tls {
        Some(files) => {
            let tls = sluice_tls::ServerTls::load(files.clone()).context("cannot load the Kafka TLS certificates")?;
            sluice_tls::spawn_sighup_reload(vec![tls.clone()]).context("cannot install the SIGHUP handler")?;
            Some(tls)
        }
        None => None,
    };
    let mut listeners = Vec::new();
    for listener in &settings.kafka_listeners {
        let tcp =
            TcpListener::bind(listener.addr).await.with_context(|| format!("cannot listen on {}", listener.spec))?;
        let local = tcp.local_addr()?;
        let advertised_host = crate::settings::advertised_host_for(settings, &listener.addr);
        let protocol = listener.spec.protocol;
        let info = ListenerInfo { protocol, advertised_host, advertised_port: local.port() };
        let tls = protocol.uses_tls().then(|| tls.clone()).flatten();
        listeners.push(KafkaListener { tcp, info, tls });
    }
    Ok(listeners)
}

/// How the HTTP listeners serve: their limits, and `--http-auth` on the admin API and console.
struct HttpServing {
    limits: sluice_http::HttpLimits,
    auth: Option<sluice_http::HttpAuth>,
}

/// SIGTERM and SIGINT, handled from the moment they are installed.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
        let int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
        Ok(StopSignals { term, int })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The NSQ TCP listener, the HTTP listener (nsqd + nsqlookupd APIs) and the optional
/// lookupd-only HTTP listener, bound before the broker opens so a taken port fails fast.
struct NsqListeners {
    tcp: TcpListener,
    http: TcpListener,
    lookupd: Option<TcpListener>,
    /// `--https-address`: the HTTP API over TLS.
    https: Option<TcpListener>,
    /// Certificates for NSQ's TLS upgrade and HTTPS, read before the broker opens.
    tls: Option<std::sync::Arc<sluice_tls::ServerTls>>,
    /// `--nsq-auth-tokens-file`, read before the broker opens.
    tokens: Option<std::sync::Arc<sluice_nsq::auth::Tokens>>,
}

impl NsqListeners {
    async fn bind(nsq: &crate::settings::NsqSettings) -> anyhow::Result<NsqListeners> {
        let bind = |addr: std::net::SocketAddr| async move {
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
        };
        let lookupd = match nsq.lookupd_http_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let https = match nsq.security.https_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let tls = match &nsq.security.tls {
            Some(files) => Some(sluice_tls::ServerTls::load(files.clone()).context("cannot load NSQ TLS settings")?),
            None => None,
        };
        let tokens = match &nsq.security.auth_tokens_file {
            Some(path) => Some(std::sync::Arc::new(
                sluice_nsq::auth::Tokens::load(path)
                    .map_err(|e| anyhow::anyhow!("cannot load NSQ auth tokens: {e}"))?,
            )),
            None => None,
        };
        Ok(NsqListeners {
            tcp: bind(nsq.tcp_addr).await?,
            http: bind(nsq.http_addr).await?,
            lookupd,
            https,
            tls,
            tokens,
        })
    }

    /// Opens the channels and spawns the channel sweeper and every NSQ listener; answers the
    /// tasks and the channels (MQTT shared subscriptions use them too).
    fn start(
        self,
        nsq: &crate::settings::NsqSettings,
        http: HttpServing,
        node: sluice_http::NodeInfo,
        mqtt: sluice_mqtt::MqttStatus,
        broker: std::sync::Arc<Broker>,
        stopped: watch::Receiver<bool>,
    ) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, std::sync::Arc<sluice_broker::channel::Channels>)> {
        use sluice_broker::channel::{Channels, ChannelsConfig};
        let client_tls = auth_client_tls(&nsq.security)?;
        let nsq_config = sluice_nsq::NsqConfig {
            max_msg_size: nsq.max_msg_size,
            max_body_size: nsq.max_body_size,
            msg_timeout: nsq.msg_timeout,
            max_rdy_count: nsq.max_rdy_count,
            tls: self.tls.clone().map(|server| sluice_nsq::NsqTls { server, required: nsq.security.tls_required }),
            auth: nsq.security.auth_enabled().then(|| {
                std::sync::Arc::new(sluice_nsq::auth::Authenticator {
                    tokens: self.tokens.clone(),
                    http_addresses: nsq.security.auth_http_addresses.clone(),
                    method: nsq.security.auth_http_method,
                    client_tls,
                    timeout: sluice_nsq::auth::AUTH_QUERY_TIMEOUT,
                })
            }),
            ..sluice_nsq::NsqConfig::default()
        };
        if let Some(tls) = &self.tls {
            // New handshakes pick up rotated certificates; connections keep theirs.
            sluice_tls::spawn_sighup_reload(vec![tls.clone()]).context("cannot install the SIGHUP handler")?;
        }
        let channels = Channels::open(broker, ChannelsConfig { max_msg_timeout: nsq_config.max_msg_timeout })
            .context("cannot open NSQ channel state")?;
        let tcp_port = self.tcp.local_addr()?.port();
        let http_port = self.http.local_addr()?.port();
        let hostname = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| nsq.broadcast_address.clone());
        let http_config = sluice_http::HttpConfig {
            broadcast_address: nsq.broadcast_address.clone(),
            hostname,
            tcp_port,
            http_port,
            max_msg_size: nsq_config.max_msg_size,
            max_body_size: nsq_config.max_body_size,
            max_req_timeout: nsq_config.max_req_timeout,
            node,
            nsq: nsq_config.clone(),
            tcp_address: self.tcp.local_addr()?.to_string(),
            http_address: self.http.local_addr()?.to_string(),
            lookupd_tcp_addresses: nsq.lookupd_tcp_addresses.clone(),
            mqtt,
        };
        let announce = sluice_nsq::announce::AnnounceConfig {
            lookupd_tcp_addresses: nsq.lookupd_tcp_addresses.clone(),
            info: sluice_nsq::PeerInfo {
                broadcast_address: http_config.broadcast_address.clone(),
                hostname: http_config.hostname.clone(),
                tcp_port,
                http_port,
                version: sluice_nsq::NSQD_VERSION.to_string(),
            },
            answer_max: nsq_config.max_body_size as usize,
        };
        let (http_limits, admin_auth) = (http.limits, http.auth);
        let admin_auth_on = admin_auth.is_some();
        // nsqlookupd's topic and channel actions too, with --http-auth-nsqd-admin.
        let lookupd_router = sluice_http::guard_admin(
            sluice_http::lookupd_router(channels.clone(), http_config.clone()),
            admin_auth.clone(),
        );
        // Logins and ACL checks (`--http-auth`) and the cross-site check, on HTTP and HTTPS alike.
        let router = sluice_http::guard_admin(sluice_http::router(channels.clone(), http_config), admin_auth);
        let mut tasks = vec![tokio::spawn(channels.clone().run(stopped.clone()))];
        tasks.extend(sluice_nsq::announce::spawn(channels.clone(), announce, stopped.clone()));
        let (stop, nsq_channels) = (stopped.clone(), channels.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = sluice_nsq::serve(self.tcp, nsq_channels, nsq_config, stop).await {
                tracing::error!(error = %e, "nsq listener failed");
            }
        }));
        if let (Some(listener), Some(tls)) = (self.https, self.tls.clone()) {
            let (stop, router) = (stopped.clone(), router.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = sluice_http::serve_tls(listener, router, http_limits, tls, stop).await {
                    tracing::error!(error = %e, "https listener failed");
                }
            }));
        }
        // nsqd's --tls-required=true: plain HTTP answers nsqd's API with 403 TLS_REQUIRED.
        let plain_router = match nsq.security.tls_required_http {
            true => sluice_http::refuse_plain_nsqd_api(router, nsq.security.https_addr.map_or(0, |a| a.port())),
            false => router,
        };
        let mut http_listeners = vec![(self.http, plain_router)];
        http_listeners.extend(self.lookupd.map(|listener| (listener, lookupd_router)));
        for (listener, router) in http_listeners {
            let stop = stopped.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = sluice_http::serve(listener, router, http_limits, stop).await {
                    tracing::error!(error = %e, "http listener failed");
                }
            }));
        }
        tracing::info!(nsq_tcp = %nsq.tcp_addr, http = %nsq.http_addr, lookupd = ?nsq.lookupd_http_addr,
            https = ?nsq.security.https_addr, tls = nsq.security.tls.is_some(), tls_required = nsq.security.tls_required,
            auth = nsq.security.auth_enabled(), http_auth = admin_auth_on, "nsq listeners ready");
        Ok((tasks, channels))
    }
}

/// nsqd's client TLS settings (`buildClientTLSConfig`), read once at start when some auth
/// server is an `https://` URL, so a missing or unreadable CA file stops the process.
fn auth_client_tls(
    security: &crate::settings::nsq_security::NsqSecurity,
) -> anyhow::Result<Option<std::sync::Arc<sluice_tls::rustls::ClientConfig>>> {
    let https = security
        .auth_http_addresses
        .iter()
        .any(|address| sluice_nsq::auth::parse_address(address).is_ok_and(|endpoint| endpoint.https));
    if !https {
        return Ok(None);
    }
    let config = sluice_tls::client_config(security.client_root_ca.as_deref(), security.client_min_version)
        .context("cannot load the CA certificates for https:// auth servers (--tls-root-ca-file)")?;
    Ok(Some(config))
}
