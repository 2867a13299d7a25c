//! NSQ security settings, named as nsqd's flags: TLS offered in IDENTIFY (`--tls-cert`,
//! `--tls-key`, `--tls-root-ca-file`, `--tls-required`, `--tls-client-auth-policy`,
//! `--tls-min-version`), HTTPS for the HTTP API (`--https-address`), and AUTH through nsqd-style
//! auth servers (`--auth-http-address`) or Sluice's own tokens (`--nsq-auth-tokens-file`). Each flag also reads `SLUICE_<NAME>` and the TOML key
//! of the same name with underscores (`auth_http_addresses`, an array, for the repeatable one).

use super::{out_of_range, resolve_addr};
use clap::Args;
use sluice_tls::{ClientAuth, TlsFiles, TlsVersion};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Args, Default, Clone)]
pub struct NsqSecurityArgs {
    /// Certificate chain (PEM) offered to NSQ clients that ask for TLS in IDENTIFY, and served
    /// on --https-address [default: none: no TLS].
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates are verified against, and that https://
    /// auth servers' certificates are verified against [default: the system roots for those].
    #[arg(long, env = "SLUICE_TLS_ROOT_CA_FILE", value_name = "FILE")]
    pub tls_root_ca_file: Option<PathBuf>,
    /// Refuse every NSQ command but IDENTIFY until the connection is upgraded to TLS: true (and
    /// nsqd's HTTP API only over HTTPS), tcp-https (TCP only) or false; the flag alone means
    /// true [default: false].
    #[arg(long, env = "SLUICE_TLS_REQUIRED", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_required: Option<String>,
    /// Client certificates: require (verified if shown) or require-verify (a valid one is
    /// required); either implies --tls-required [default: none].
    #[arg(long, env = "SLUICE_TLS_CLIENT_AUTH_POLICY", value_name = "POLICY")]
    pub tls_client_auth_policy: Option<String>,
    /// Lowest TLS version accepted, and offered to https:// auth servers: tls1.2 or tls1.3
    /// [default: tls1.2].
    #[arg(long, env = "SLUICE_TLS_MIN_VERSION", value_name = "VERSION")]
    pub tls_min_version: Option<String>,
    /// Also serve the HTTP API over TLS on this address (needs --tls-cert) [default: off].
    #[arg(long, env = "SLUICE_HTTPS_ADDRESS", value_name = "HOST:PORT")]
    pub https_address: Option<String>,
    /// An nsqd-style auth server (host:port, asked at /auth, or a full http:// or https:// URL,
    /// https with --tls-root-ca-file or the system roots); repeat it or separate with commas.
    /// Set: clients must AUTH [default: none].
    #[arg(
        long = "auth-http-address",
        env = "SLUICE_AUTH_HTTP_ADDRESS",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub auth_http_address: Vec<String>,
    /// How auth servers are asked: get (parameters in the query string) or post (a JSON body),
    /// as nsqd's flag [default: get].
    #[arg(long, env = "SLUICE_AUTH_HTTP_REQUEST_METHOD", value_name = "METHOD")]
    pub auth_http_request_method: Option<String>,
    /// Sluice's own AUTH tokens: a JSON file of SHA-256 hashed secrets and their permissions
    /// (README, "NSQ TLS and AUTH"), asked before the auth servers. Set: clients must AUTH
    /// [default: none].
    #[arg(long, env = "SLUICE_NSQ_AUTH_TOKENS_FILE", value_name = "FILE")]
    pub nsq_auth_tokens_file: Option<PathBuf>,
}

/// The same keys in the TOML file.
#[derive(Debug, Default, Clone)]
pub struct NsqSecurityFile {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_root_ca_file: Option<PathBuf>,
    pub tls_required: Option<String>,
    pub tls_client_auth_policy: Option<String>,
    pub tls_min_version: Option<String>,
    pub https_address: Option<String>,
    pub auth_http_addresses: Option<Vec<String>>,
    pub auth_http_request_method: Option<String>,
    pub nsq_auth_tokens_file: Option<PathBuf>,
}

/// Resolved NSQ security settings. The files are read when the listeners start.
#[derive(Debug, Clone, Default)]
pub struct NsqSecurity {
    pub tls: Option<TlsFiles>,
    pub tls_required: bool,
    /// `--tls-required=true` (not `tcp-https`): the plain HTTP listener refuses nsqd's API.
    pub tls_required_http: bool,
    pub https_addr: Option<SocketAddr>,
    pub auth_http_addresses: Vec<String>,
    pub auth_http_method: sluice_nsq::auth::AuthMethod,
    /// nsqd's client TLS settings, for `https://` auth servers: `--tls-root-ca-file` (else the
    /// system roots) and `--tls-min-version`.
    pub client_root_ca: Option<PathBuf>,
    pub client_min_version: TlsVersion,
    /// Read when the listeners start.
    pub auth_tokens_file: Option<PathBuf>,
}

impl NsqSecurity {
    /// Whether clients must AUTH (some source is configured).
    pub fn auth_enabled(&self) -> bool {
        !self.auth_http_addresses.is_empty() || self.auth_tokens_file.is_some()
    }
}

pub fn resolve(args: &NsqSecurityArgs, file: &NsqSecurityFile) -> anyhow::Result<NsqSecurity> {
    let cert = args.tls_cert.clone().or(file.tls_cert.clone());
    let key = args.tls_key.clone().or(file.tls_key.clone());
    let policy_text = args.tls_client_auth_policy.clone().or(file.tls_client_auth_policy.clone());
    let client_auth = ClientAuth::parse(policy_text.as_deref().unwrap_or(""))
        .map_err(|e| out_of_range("tls_client_auth_policy", policy_text.as_deref().unwrap_or(""), &e.to_string()))?;
    let version_text = args.tls_min_version.clone().or(file.tls_min_version.clone());
    let min_version = TlsVersion::parse(version_text.as_deref().unwrap_or("tls1.2"))
        .map_err(|_| out_of_range("tls_min_version", version_text.as_deref().unwrap_or(""), "tls1.2 or tls1.3"))?;
    let required_text = args.tls_required.clone().or(file.tls_required.clone());
    let (mut tls_required, mut tls_required_http) = match required_text.as_deref().map(str::trim) {
        None | Some("false") => (false, false),
        Some("true") => (true, true),
        Some("tcp-https") => (true, false),
        Some(other) => return Err(out_of_range("tls_required", other, "true, false or tcp-https")),
    };
    // nsqd: a client certificate policy implies TLS required (all of it).
    if client_auth != ClientAuth::None && !tls_required {
        (tls_required, tls_required_http) = (true, true);
    }
    let root_ca = args.tls_root_ca_file.clone().or(file.tls_root_ca_file.clone());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key, client_ca: root_ca.clone(), client_auth, min_version }),
        (None, None) => None,
        (Some(_), None) => return Err(out_of_range("tls_key", "(none)", "a key file to go with tls_cert")),
        (None, Some(_)) => return Err(out_of_range("tls_cert", "(none)", "a certificate file to go with tls_key")),
    };
    if tls.is_none() && tls_required {
        return Err(out_of_range("tls_required", "true", "false without tls_cert and tls_key"));
    }
    let https_addr = match args.https_address.clone().or(file.https_address.clone()) {
        Some(_) if tls.is_none() => {
            return Err(out_of_range("https_address", "(set)", "unset without tls_cert and tls_key"))
        }
        Some(text) => Some(resolve_addr(&text)?),
        None => None,
    };
    let auth_http_addresses = match args.auth_http_address.is_empty() {
        true => file.auth_http_addresses.clone().unwrap_or_default(),
        false => args.auth_http_address.clone(),
    };
    for address in &auth_http_addresses {
        if let Err(reason) = sluice_nsq::auth::parse_address(address) {
            return Err(anyhow::anyhow!(
                "auth_http_addresses = {address:?} is out of range (--auth-http-address, SLUICE_AUTH_HTTP_ADDRESS): \
                 must be HOST:PORT or an http:// or https:// URL ({reason})"
            ));
        }
    }
    let auth_http_method = match args.auth_http_request_method.clone().or(file.auth_http_request_method.clone()) {
        None => sluice_nsq::auth::AuthMethod::Get,
        Some(method) => match method.as_str() {
            "get" => sluice_nsq::auth::AuthMethod::Get,
            "post" => sluice_nsq::auth::AuthMethod::Post,
            other => return Err(out_of_range("auth_http_request_method", other, "get or post")),
        },
    };
    let auth_tokens_file = args.nsq_auth_tokens_file.clone().or(file.nsq_auth_tokens_file.clone());
    Ok(NsqSecurity {
        tls,
        tls_required,
        tls_required_http,
        https_addr,
        auth_http_addresses,
        auth_http_method,
        client_root_ca: root_ca,
        client_min_version: min_version,
        auth_tokens_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsqd_rules_for_tls_and_auth_settings() {
        let file = NsqSecurityFile::default();
        let tls = |extra: NsqSecurityArgs| NsqSecurityArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..extra
        };
        assert!(!resolve(&NsqSecurityArgs::default(), &file).unwrap().tls_required);
        let required =
            resolve(&tls(NsqSecurityArgs { tls_required: Some("true".into()), ..Default::default() }), &file);
        let required = required.unwrap();
        assert!(required.tls_required && required.tls_required_http);
        let tcp =
            resolve(&tls(NsqSecurityArgs { tls_required: Some("tcp-https".into()), ..Default::default() }), &file);
        let tcp = tcp.unwrap();
        assert!(tcp.tls_required && !tcp.tls_required_http, "tcp-https leaves plain HTTP served");
        let policy = NsqSecurityArgs { tls_client_auth_policy: Some("require-verify".into()), ..Default::default() };
        assert!(resolve(&tls(policy), &file).unwrap().tls_required, "a client auth policy implies TLS required");
        let no_cert = NsqSecurityArgs { tls_required: Some("true".into()), ..Default::default() };
        assert!(resolve(&no_cert, &file).is_err(), "TLS required without a certificate");
        assert!(
            resolve(&tls(NsqSecurityArgs { tls_required: Some("maybe".into()), ..Default::default() }), &file).is_err()
        );
        let auth = NsqSecurityArgs {
            auth_http_address: vec!["127.0.0.1:4181".into(), "http://h/a".into()],
            ..Default::default()
        };
        assert_eq!(resolve(&auth, &file).unwrap().auth_http_addresses.len(), 2);
        let https = NsqSecurityArgs {
            auth_http_address: vec!["https://h/a".into()],
            tls_root_ca_file: Some("ca.pem".into()),
            ..Default::default()
        };
        let https = resolve(&https, &file).unwrap();
        assert_eq!(https.client_root_ca, Some("ca.pem".into()), "the root CA is used without --tls-cert too");
        for bad in ["ftp://h/a", "h", "https://:1/a"] {
            let bad = NsqSecurityArgs { auth_http_address: vec![bad.into()], ..Default::default() };
            assert!(resolve(&bad, &file).is_err());
        }
    }
}
