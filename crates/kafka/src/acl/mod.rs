//! Authorization with Kafka's ACL model (its `AclAuthorizer`/`StandardAuthorizer` semantics):
//! a binding allows or denies a principal, from a host, an operation on a resource (topic,
//! group, cluster, transactional id) named literally, by prefix, or `*`. Super users may do
//! everything; a DENY that matches wins over any ALLOW; an operation is allowed by an ALLOW of
//! itself or of ALL, and DESCRIBE also by READ, WRITE, DELETE or ALTER (DESCRIBE_CONFIGS by
//! ALTER_CONFIGS); a resource no binding names at all is allowed only with
//! `allow.everyone.if.no.acl.found`. Bindings live in `<data_dir>/acls.json`, replaced
//! atomically on every change.

mod store;

pub use store::Acls;

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType` codes.
pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    /// The one cluster resource's name.
    pub const CLUSTER_NAME: &str = "kafka-cluster";
}

/// Kafka's `PatternType` codes.
pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclOperation` codes.
pub mod operation {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The wildcard resource name, principal (`User:*`) and host.
pub const WILDCARD: &str = "*";

/// One ACL binding, as Kafka's `AclBinding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl AclBinding {
    /// Why Kafka would refuse to create this binding, if it would.
    pub fn invalid(&self) -> Option<&'static str> {
        if !matches!(
            self.resource_type,
            resource::TOPIC | resource::GROUP | resource::CLUSTER | resource::TRANSACTIONAL_ID
        ) {
            return Some("Invalid resource type");
        }
        if !matches!(self.pattern_type, pattern::LITERAL | pattern::PREFIXED) {
            return Some("Invalid pattern type");
        }
        if self.resource_name.is_empty() || (self.pattern_type == pattern::PREFIXED && self.resource_name == WILDCARD) {
            return Some("Invalid resource name");
        }
        if self.resource_type == resource::CLUSTER && self.resource_name != resource::CLUSTER_NAME {
            return Some("The only valid name for the CLUSTER resource is kafka-cluster");
        }
        if !(operation::ALL..=operation::DESCRIBE_TOKENS).contains(&self.operation) {
            return Some("Invalid operation");
        }
        if !matches!(self.permission, permission::ALLOW | permission::DENY) {
            return Some("Invalid permission type");
        }
        if !self.principal.contains(':') || self.principal.len() > 1024 {
            return Some("Invalid principal: it must be TYPE:NAME, e.g. User:alice");
        }
        if self.host.is_empty() || self.host.len() > 256 {
            return Some("Invalid host");
        }
        None
    }

    /// Whether this binding's resource pattern covers `name` of `resource_type`.
    fn covers(&self, resource_type: i8, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                pattern::LITERAL => self.resource_name == name || self.resource_name == WILDCARD,
                pattern::PREFIXED => name.starts_with(&self.resource_name),
                _ => false,
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*") && (self.host == host || self.host == WILDCARD)
    }
}

/// A filter as DescribeAcls and DeleteAcls send it (Kafka's `AclBindingFilter`).
#[derive(Debug, Clone)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        let resource = self.resource_type == resource::ANY || self.resource_type == b.resource_type;
        let name_and_pattern = match (self.pattern_type, &self.resource_name) {
            (pattern::ANY, None) => true,
            (pattern::ANY, Some(name)) => &b.resource_name == name,
            (pattern::MATCH, None) => true,
            // MATCH: the bindings that would apply to a resource of exactly this name.
            (pattern::MATCH, Some(name)) => b.covers(b.resource_type, name),
            (exact, name) => b.pattern_type == exact && name.as_ref().is_none_or(|n| &b.resource_name == n),
        };
        let principal = self.principal.as_ref().is_none_or(|p| &b.principal == p);
        let host = self.host.as_ref().is_none_or(|h| &b.host == h);
        let op = self.operation == operation::ANY || self.operation == b.operation;
        let perm = self.permission == permission::ANY || self.permission == b.permission;
        resource && name_and_pattern && principal && host && op && perm
    }
}

/// The operations whose ALLOW also allows `wanted` (Kafka's implied operations).
fn allowing(wanted: i8) -> &'static [i8] {
    use operation::*;
    match wanted {
        DESCRIBE => &[DESCRIBE, READ, WRITE, DELETE, ALTER, ALL],
        DESCRIBE_CONFIGS => &[DESCRIBE_CONFIGS, ALTER_CONFIGS, ALL],
        READ => &[READ, ALL],
        WRITE => &[WRITE, ALL],
        CREATE => &[CREATE, ALL],
        DELETE => &[DELETE, ALL],
        ALTER => &[ALTER, ALL],
        CLUSTER_ACTION => &[CLUSTER_ACTION, ALL],
        ALTER_CONFIGS => &[ALTER_CONFIGS, ALL],
        IDEMPOTENT_WRITE => &[IDEMPOTENT_WRITE, ALL],
        _ => &[ALL],
    }
}

/// The decision for one request of `principal` from `host` (Kafka's `AclAuthorizer.authorize`).
pub fn decide(
    bindings: &[AclBinding],
    allow_if_no_acl: bool,
    principal: &str,
    host: &str,
    wanted: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    let covering: Vec<&AclBinding> = bindings.iter().filter(|b| b.covers(resource_type, name)).collect();
    if covering.is_empty() {
        return allow_if_no_acl;
    }
    let applying = covering.iter().filter(|b| b.applies_to(principal, host));
    // A DENY of the operation (or of ALL) wins over any ALLOW.
    if applying
        .clone()
        .any(|b| b.permission == permission::DENY && (b.operation == wanted || b.operation == operation::ALL))
    {
        return false;
    }
    applying.into_iter().any(|b| b.permission == permission::ALLOW && allowing(wanted).contains(&b.operation))
}

/// Whether `principal` may do `wanted` on at least one resource of `resource_type` (Kafka's
/// `authorizeByResourceType`, used by InitProducerId: WRITE on any topic): some ALLOW binding
/// of the operation applies to it and the resource it names is not denied.
pub fn decide_any(
    bindings: &[AclBinding],
    allow_if_no_acl: bool,
    principal: &str,
    host: &str,
    wanted: i8,
    resource_type: i8,
) -> bool {
    if !bindings.iter().any(|b| b.resource_type == resource_type) {
        return allow_if_no_acl;
    }
    bindings.iter().any(|b| {
        b.resource_type == resource_type
            && b.permission == permission::ALLOW
            && b.applies_to(principal, host)
            && allowing(wanted).contains(&b.operation)
            && decide(bindings, allow_if_no_acl, principal, host, wanted, resource_type, &b.resource_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: resource::TOPIC,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn kafkas_rules_allow_deny_prefix_and_implied_describe() {
        use operation::*;
        let acls = vec![
            binding("orders", pattern::LITERAL, "User:bob", WRITE, permission::ALLOW),
            binding("logs-", pattern::PREFIXED, "User:bob", READ, permission::ALLOW),
            binding("logs-secret", pattern::LITERAL, "User:bob", READ, permission::DENY),
        ];
        let can = |op, name| decide(&acls, false, "User:bob", "127.0.0.1", op, resource::TOPIC, name);
        assert!(can(WRITE, "orders") && !can(READ, "orders"));
        assert!(can(DESCRIBE, "orders"), "WRITE implies DESCRIBE");
        assert!(can(READ, "logs-app") && !can(READ, "logs-secret"), "prefix, and deny beats allow");
        assert!(!can(READ, "other"), "no ACL: denied unless allow.everyone.if.no.acl.found");
        assert!(decide(&acls, true, "User:bob", "h", READ, resource::TOPIC, "other"));
        assert!(!decide(&acls, true, "User:eve", "h", WRITE, resource::TOPIC, "orders"), "ACLs exist: others denied");
        assert!(decide_any(&acls, false, "User:bob", "h", WRITE, resource::TOPIC), "WRITE on orders");
        assert!(!decide_any(&acls, false, "User:eve", "h", WRITE, resource::TOPIC));
        assert!(!decide_any(&acls, false, "User:bob", "h", WRITE, resource::GROUP), "no group ACL at all");
        assert!(decide_any(&acls, true, "User:bob", "h", WRITE, resource::GROUP), "allow.everyone.if.no.acl.found");
    }
}
