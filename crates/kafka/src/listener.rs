//! Kafka listeners and their security protocols, as Kafka names them (`listeners`,
//! `listener.security.protocol.map`): each listener is `PROTOCOL://HOST:PORT` with PROTOCOL
//! one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, and its own advertised address, which
//! Metadata, FindCoordinator and DescribeCluster answer on connections it accepted.

use sluice_tls::ServerTls;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Kafka's `security.protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the connection is TLS from its first byte.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether a client must authenticate with SASL before any other request is served.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// `PROTOCOL://HOST:PORT` as written in settings, before it is resolved and bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub protocol: SecurityProtocol,
    /// `HOST:PORT` to bind.
    pub address: String,
}

impl ListenerSpec {
    pub fn parse(text: &str) -> Result<ListenerSpec, String> {
        let (scheme, address) =
            text.split_once("://").ok_or_else(|| format!("{text:?} is not PROTOCOL://HOST:PORT"))?;
        let protocol = SecurityProtocol::parse(scheme).ok_or_else(|| {
            format!("{text:?}: unknown security protocol {scheme:?} (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)")
        })?;
        if address.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
            return Err(format!("{text:?}: the address must be HOST:PORT"));
        }
        Ok(ListenerSpec { protocol, address: address.to_string() })
    }
}

impl std::fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.protocol.as_str(), self.address)
    }
}

/// What a connection knows of the listener that accepted it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub protocol: SecurityProtocol,
    /// The host and port Metadata, FindCoordinator and DescribeCluster name for this node
    /// on this listener.
    pub advertised_host: String,
    pub advertised_port: u16,
}

/// A bound listener, ready to serve.
pub struct KafkaListener {
    pub tcp: TcpListener,
    pub info: ListenerInfo,
    /// The TLS configuration (reloadable) of SSL and SASL_SSL listeners.
    pub tls: Option<Arc<ServerTls>>,
}

impl KafkaListener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_specs_parse_kafka_spellings() {
        let spec = ListenerSpec::parse("sasl_ssl://127.0.0.1:9094").expect("parse");
        assert_eq!(spec.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(spec.address, "127.0.0.1:9094");
        assert_eq!(spec.to_string(), "SASL_SSL://127.0.0.1:9094");
        assert!(ListenerSpec::parse("127.0.0.1:9092").is_err());
        assert!(ListenerSpec::parse("TLS://127.0.0.1:9092").is_err());
        assert!(ListenerSpec::parse("SSL://127.0.0.1").is_err());
        assert!(ListenerSpec::parse("SSL://:9092").is_err());
    }
}
