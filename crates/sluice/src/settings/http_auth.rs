//! Authentication of the admin API and the console (`--http-auth`, README "Security"):
//! off by default; on, `/api/*` and the console need a Sluice user over HTTP Basic and the
//! cluster ACLs of the Kafka side. `--http-auth-metrics` puts `/metrics` and `/ping` behind
//! it too. Each flag also reads `SLUICE_<NAME>` and the TOML key of the same name.

use super::out_of_range;
use clap::Args;

#[derive(Debug, Args, Default, Clone)]
pub struct HttpAuthArgs {
    /// The admin API and the console need a Sluice user (HTTP Basic) and, with --authorizer
    /// acl, DESCRIBE (read) or ALTER (change) on the cluster [default: false].
    #[arg(long, env = "SLUICE_HTTP_AUTH", value_name = "BOOL")]
    pub http_auth: Option<bool>,
    /// With --http-auth, /metrics and /ping need a user with DESCRIBE too [default: false].
    #[arg(long, env = "SLUICE_HTTP_AUTH_METRICS", value_name = "BOOL")]
    pub http_auth_metrics: Option<bool>,
}

/// The resolved settings; `enabled` false leaves every HTTP path open as before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpAuthSettings {
    pub enabled: bool,
    pub protect_metrics: bool,
}

pub fn resolve(args: &HttpAuthArgs, file: &HttpAuthArgs) -> anyhow::Result<HttpAuthSettings> {
    let enabled = args.http_auth.or(file.http_auth).unwrap_or(false);
    let protect_metrics = args.http_auth_metrics.or(file.http_auth_metrics).unwrap_or(false);
    if protect_metrics && !enabled {
        return Err(out_of_range("http_auth_metrics", true, "false unless http_auth is true"));
    }
    Ok(HttpAuthSettings { enabled, protect_metrics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_metrics_need_auth() {
        let file = HttpAuthArgs { http_auth: Some(true), http_auth_metrics: Some(true) };
        let on = resolve(&HttpAuthArgs::default(), &file).expect("valid");
        assert_eq!(on, HttpAuthSettings { enabled: true, protect_metrics: true });
        let off = HttpAuthArgs { http_auth: Some(false), http_auth_metrics: Some(false) };
        assert_eq!(resolve(&off, &file).expect("valid"), HttpAuthSettings::default());
        let metrics_alone = HttpAuthArgs { http_auth: None, http_auth_metrics: Some(true) };
        assert!(resolve(&metrics_alone, &HttpAuthArgs::default()).is_err());
    }
}
