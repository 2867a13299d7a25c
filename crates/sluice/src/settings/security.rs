//! Kafka listeners and their security (Kafka's `listeners` and `ssl.*` settings): any number
//! of `PROTOCOL://HOST:PORT` listeners with PROTOCOL in PLAINTEXT, SSL, SASL_PLAINTEXT,
//! SASL_SSL, and the TLS files every SSL and SASL_SSL listener uses. Without any
//! `--kafka-listener`, one PLAINTEXT listener on `--kafka-addr` (127.0.0.1:9092); with some,
//! those, plus a PLAINTEXT one on `--kafka-addr` only if that is also given. Each flag also
//! reads `SLUICE_<NAME>` and the TOML key of the same name with underscores.

use super::{out_of_range, resolve_addr};
use clap::Args;
use sluice_kafka::listener::ListenerSpec;
use sluice_tls::{ClientAuth, TlsFiles, TlsVersion};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Args, Default, Clone)]
pub struct SecurityArgs {
    /// A Kafka listener, PROTOCOL://HOST:PORT with PROTOCOL one of PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL; repeat it or separate with commas [default: PLAINTEXT on
    /// --kafka-addr].
    #[arg(
        long = "kafka-listener",
        env = "SLUICE_KAFKA_LISTENERS",
        value_name = "PROTOCOL://HOST:PORT",
        value_delimiter = ','
    )]
    pub kafka_listener: Vec<String>,
    /// Server certificate chain (PEM) of SSL and SASL_SSL listeners (Kafka ssl.keystore).
    #[arg(long, env = "SLUICE_SSL_CERT", value_name = "FILE")]
    pub ssl_cert: Option<PathBuf>,
    /// Private key (PEM) of --ssl-cert.
    #[arg(long, env = "SLUICE_SSL_KEY", value_name = "FILE")]
    pub ssl_key: Option<PathBuf>,
    /// CA certificates (PEM) client certificates are verified against (Kafka ssl.truststore).
    #[arg(long, env = "SLUICE_SSL_CLIENT_CA", value_name = "FILE")]
    pub ssl_client_ca: Option<PathBuf>,
    /// Client certificates: none | requested | required (Kafka ssl.client.auth) [default: none].
    #[arg(long, env = "SLUICE_SSL_CLIENT_AUTH", value_name = "POLICY")]
    pub ssl_client_auth: Option<String>,
    /// Lowest TLS version accepted: 1.2 | 1.3 [default: 1.2].
    #[arg(long, env = "SLUICE_SSL_MIN_VERSION", value_name = "VERSION")]
    pub ssl_min_version: Option<String>,
    /// Kafka ACL authorization: none | acl (Kafka authorizer.class.name) [default: none].
    #[arg(long, env = "SLUICE_AUTHORIZER", value_name = "NAME")]
    pub authorizer: Option<String>,
    /// Principals allowed everything, separated by ';' (Kafka super.users), e.g. User:admin.
    #[arg(long, env = "SLUICE_SUPER_USERS", value_name = "PRINCIPALS")]
    pub super_users: Option<String>,
    /// Allow a resource no ACL names to everyone (Kafka allow.everyone.if.no.acl.found) [default: false].
    #[arg(long, env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND", value_name = "BOOL")]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// How long a Kafka SASL login lasts before the client must re-authenticate on its
    /// connection, ms (Kafka connections.max.reauth.ms, KIP-368); 0 = forever [default: 0].
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_REAUTH_MS", value_name = "MS")]
    pub connections_max_reauth_ms: Option<u64>,
}

/// The same keys in the TOML file.
#[derive(Debug, Default, Clone)]
pub struct SecurityFileArgs {
    pub kafka_listeners: Option<Vec<String>>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub ssl_client_ca: Option<PathBuf>,
    pub ssl_client_auth: Option<String>,
    pub ssl_min_version: Option<String>,
    pub authorizer: Option<String>,
    pub super_users: Option<String>,
    pub allow_everyone_if_no_acl_found: Option<bool>,
    pub connections_max_reauth_ms: Option<u64>,
}

/// `connections.max.reauth.ms`: None (logins last forever) when unset or 0.
pub fn resolve_reauth_max(args: &SecurityArgs, file: &SecurityFileArgs) -> Option<std::time::Duration> {
    let ms = args.connections_max_reauth_ms.or(file.connections_max_reauth_ms).unwrap_or(0);
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// The ACL authorizer's settings; None from `resolve_authorizer` when there is none.
#[derive(Debug, Clone)]
pub struct AuthorizerSettings {
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

pub fn resolve_authorizer(args: &SecurityArgs, file: &SecurityFileArgs) -> anyhow::Result<Option<AuthorizerSettings>> {
    let name = args.authorizer.clone().or(file.authorizer.clone()).unwrap_or_else(|| "none".into());
    let super_users: Vec<String> = args
        .super_users
        .clone()
        .or(file.super_users.clone())
        .unwrap_or_default()
        .split(';')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = super_users.iter().find(|p| !p.contains(':')) {
        return Err(out_of_range("super_users", bad, "principals TYPE:NAME separated by ';', e.g. User:admin"));
    }
    match name.as_str() {
        "none" | "" => Ok(None),
        "acl" => Ok(Some(AuthorizerSettings {
            super_users,
            allow_everyone_if_no_acl_found: args
                .allow_everyone_if_no_acl_found
                .or(file.allow_everyone_if_no_acl_found)
                .unwrap_or(false),
        })),
        other => Err(out_of_range("authorizer", other, "none or acl")),
    }
}

/// One listener, resolved.
#[derive(Debug, Clone)]
pub struct KafkaListenerSettings {
    pub spec: ListenerSpec,
    pub addr: SocketAddr,
}

/// Resolves the listeners: `kafka_addr` is the PLAINTEXT address (`explicit` when a source
/// named it). The first listener is the node's main one (its cluster registration, logs).
/// The TLS files are answered when an SSL listener or `other_tls_listener` (MQTT's) needs them.
pub fn resolve(
    args: &SecurityArgs,
    file: &SecurityFileArgs,
    kafka_addr_text: &str,
    explicit_kafka_addr: bool,
    other_tls_listener: bool,
) -> anyhow::Result<(Vec<KafkaListenerSettings>, Option<TlsFiles>)> {
    let texts = match args.kafka_listener.is_empty() {
        false => args.kafka_listener.clone(),
        true => file.kafka_listeners.clone().unwrap_or_default(),
    };
    let mut specs = Vec::new();
    if texts.is_empty() || explicit_kafka_addr {
        specs.push(format!("PLAINTEXT://{kafka_addr_text}"));
    }
    specs.extend(texts);
    let mut listeners = Vec::new();
    for text in specs {
        let spec =
            ListenerSpec::parse(text.trim()).map_err(|e| out_of_range("kafka_listeners", e, "PROTOCOL://HOST:PORT"))?;
        let addr = resolve_addr(&spec.address)?;
        if listeners.iter().any(|l: &KafkaListenerSettings| l.addr == addr && addr.port() != 0) {
            return Err(out_of_range("kafka_listeners", &text, "one listener per address"));
        }
        listeners.push(KafkaListenerSettings { spec, addr });
    }
    let cert = args.ssl_cert.clone().or(file.ssl_cert.clone());
    let key = args.ssl_key.clone().or(file.ssl_key.clone());
    let client_ca = args.ssl_client_ca.clone().or(file.ssl_client_ca.clone());
    let auth_text = args.ssl_client_auth.clone().or(file.ssl_client_auth.clone()).unwrap_or_else(|| "none".into());
    let client_auth = ClientAuth::parse(&auth_text)
        .map_err(|_| out_of_range("ssl_client_auth", &auth_text, "none, requested or required"))?;
    let version_text = args.ssl_min_version.clone().or(file.ssl_min_version.clone()).unwrap_or_else(|| "1.2".into());
    let min_version =
        TlsVersion::parse(&version_text).map_err(|_| out_of_range("ssl_min_version", &version_text, "1.2 or 1.3"))?;
    if client_auth != ClientAuth::None && client_ca.is_none() {
        return Err(out_of_range("ssl_client_ca", "(none)", "a CA file (PEM) when ssl_client_auth is not none"));
    }
    let needs_tls = other_tls_listener || listeners.iter().any(|l| l.spec.protocol.uses_tls());
    let tls = match (needs_tls, cert, key) {
        (false, _, _) => None,
        (true, Some(cert), Some(key)) => Some(TlsFiles { cert, key, client_ca, client_auth, min_version }),
        (true, None, _) => {
            return Err(out_of_range("ssl_cert", "(none)", "a certificate file (PEM) for SSL listeners"))
        }
        (true, _, None) => return Err(out_of_range("ssl_key", "(none)", "a key file (PEM) for SSL listeners")),
    };
    Ok((listeners, tls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_kafka::listener::SecurityProtocol;

    fn protocols(args: &SecurityArgs, explicit: bool) -> anyhow::Result<Vec<(SecurityProtocol, String)>> {
        let (listeners, _) = resolve(args, &SecurityFileArgs::default(), "127.0.0.1:9092", explicit, false)?;
        Ok(listeners.into_iter().map(|l| (l.spec.protocol, l.spec.address)).collect())
    }

    #[test]
    fn listeners_default_to_plaintext_and_add_it_only_when_asked() {
        let none = SecurityArgs::default();
        assert_eq!(protocols(&none, false).ok(), Some(vec![(SecurityProtocol::Plaintext, "127.0.0.1:9092".into())]));
        let sasl = SecurityArgs { kafka_listener: vec!["SASL_PLAINTEXT://127.0.0.1:9095".into()], ..none.clone() };
        assert_eq!(protocols(&sasl, false).map(|l| l.len()).ok(), Some(1));
        assert_eq!(protocols(&sasl, true).map(|l| l.len()).ok(), Some(2));
        let tls = SecurityArgs { kafka_listener: vec!["SSL://127.0.0.1:9093".into()], ..none.clone() };
        let err = protocols(&tls, false).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("ssl_cert"), "{err}");
        let twice = SecurityArgs { kafka_listener: vec!["SSL://127.0.0.1:9092".into()], ..none.clone() };
        assert!(protocols(&twice, true).is_err(), "one listener per address");
        let auth = SecurityArgs { ssl_client_auth: Some("required".into()), ..none };
        assert!(protocols(&auth, false).is_err(), "a client CA is needed");
    }
}
