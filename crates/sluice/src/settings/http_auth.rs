//! Authentication of the admin API and the console (`--http-auth`, README "Security"):
//! off by default; on, `/api/*` and the console need a Sluice user over HTTP Basic and the
//! cluster ACLs of the Kafka side. `--http-auth-metrics` puts `/metrics` and `/ping` behind
//! it too, `--http-auth-nsqd-admin` nsqd's topic and channel actions. Each flag also reads `SLUICE_<NAME>` and the TOML key of the same name.

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
    /// With --http-auth, nsqd's and nsqlookupd's /topic/* and /channel/* actions (create,
    /// delete, empty, pause) need a user with ALTER; nsqadmin's then fail [default: false].
    #[arg(long, env = "SLUICE_HTTP_AUTH_NSQD_ADMIN", value_name = "BOOL")]
    pub http_auth_nsqd_admin: Option<bool>,
}

/// The resolved settings; `enabled` false leaves every HTTP path open as before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpAuthSettings {
    pub enabled: bool,
    pub protect_metrics: bool,
    pub protect_nsqd_admin: bool,
}

pub fn resolve(args: &HttpAuthArgs, file: &HttpAuthArgs) -> anyhow::Result<HttpAuthSettings> {
    let enabled = args.http_auth.or(file.http_auth).unwrap_or(false);
    let protect_metrics = args.http_auth_metrics.or(file.http_auth_metrics).unwrap_or(false);
    if protect_metrics && !enabled {
        return Err(out_of_range("http_auth_metrics", true, "false unless http_auth is true"));
    }
    let protect_nsqd_admin = args.http_auth_nsqd_admin.or(file.http_auth_nsqd_admin).unwrap_or(false);
    if protect_nsqd_admin && !enabled {
        return Err(out_of_range("http_auth_nsqd_admin", true, "false unless http_auth is true"));
    }
    Ok(HttpAuthSettings { enabled, protect_metrics, protect_nsqd_admin })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_metrics_need_auth() {
        let file =
            HttpAuthArgs { http_auth: Some(true), http_auth_metrics: Some(true), http_auth_nsqd_admin: Some(true) };
        let on = resolve(&HttpAuthArgs::default(), &file).expect("valid");
        assert_eq!(on, HttpAuthSettings { enabled: true, protect_metrics: true, protect_nsqd_admin: true });
        let off =
            HttpAuthArgs { http_auth: Some(false), http_auth_metrics: Some(false), http_auth_nsqd_admin: Some(false) };
        assert_eq!(resolve(&off, &file).expect("valid"), HttpAuthSettings::default());
        let metrics_alone = HttpAuthArgs { http_auth_metrics: Some(true), ..HttpAuthArgs::default() };
        assert!(resolve(&metrics_alone, &HttpAuthArgs::default()).is_err());
        let nsqd_alone = HttpAuthArgs { http_auth_nsqd_admin: Some(true), ..HttpAuthArgs::default() };
        assert!(resolve(&nsqd_alone, &HttpAuthArgs::default()).is_err());
    }
}
