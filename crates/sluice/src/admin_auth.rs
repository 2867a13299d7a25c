//! The admin API's and console's logins and ACL checks (`--http-auth`) against the users and
//! ACLs the Kafka listeners use: the same `Security`, so in a cluster the metadata group's
//! users and bindings (`cluster::security_sync` keeps them current), and one failed-login
//! limit per address for Kafka SASL and HTTP together.

use sluice_http::{Access, AdminAuthenticator, HttpAuth, Login};
use sluice_kafka::acl::{operation, resource};
use sluice_kafka::sasl::{PasswordLogin, Security};
use std::net::IpAddr;
use std::sync::Arc;

struct KafkaSecurity(Arc<Security>);

impl AdminAuthenticator for KafkaSecurity {
    fn login(&self, user: &str, password: &[u8], peer: IpAddr) -> Login {
        match self.0.check_password(user, password, peer) {
            PasswordLogin::Authenticated(principal) => Login::Authenticated(principal.to_string()),
            PasswordLogin::Failed => {
                tracing::info!(%peer, user, "admin API login failed");
                Login::Failed
            }
            PasswordLogin::Blocked => Login::Blocked,
        }
    }

    fn allows(&self, principal: &str, host: &str, access: Access) -> bool {
        // No authorizer: every authenticated principal may do everything, as in Kafka.
        let Some(acls) = &self.0.acls else { return true };
        let operation = match access {
            Access::Read => operation::DESCRIBE,
            Access::Change => operation::ALTER,
        };
        acls.authorize(principal, host, operation, resource::CLUSTER, resource::CLUSTER_NAME)
    }
}

/// `--http-auth` over `security`.
pub fn http_auth(security: &Arc<Security>, settings: crate::settings::http_auth::HttpAuthSettings) -> HttpAuth {
    HttpAuth {
        authenticator: Arc::new(KafkaSecurity(Arc::clone(security))),
        protect_metrics: settings.protect_metrics,
        protect_nsqd_admin: settings.protect_nsqd_admin,
    }
}
