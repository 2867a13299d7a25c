//! `sluice acl add|list|delete`: Kafka ACL bindings, with `kafka-acls.sh`'s flags. Against a
//! running broker it speaks Kafka's CreateAcls, DescribeAcls and DeleteAcls (`--bootstrap`,
//! logged in with SASL PLAIN when `--sasl-user` is given), so the principal needs ALTER
//! (DESCRIBE to list) on the cluster; with `--data-dir` it edits a stopped broker's
//! `acls.json` instead, under the data directory's lock (how the first bindings are made).

use super::acl_args::{AclCommand, AclSpec, AclTarget};
use super::args::Output;
use super::kafka_client::{check, KafkaClient};
use super::table::Table;
use anyhow::{bail, Context as _};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_kafka::acl::{operation, pattern, permission, resource, AclBinding, AclFilter, Acls, WILDCARD};

/// Environment variable the SASL password comes in.
pub const SASL_PASSWORD_ENV: &str = "SLUICE_SASL_PASSWORD";
/// The ACL APIs' version asked (v1 adds pattern types; v2+ is the flexible encoding).
const ACLS_VERSION: i16 = 1;

/// Kafka's names of operations, as kafka-acls.sh spells them.
const OPERATIONS: [(&str, i8); 11] = [
    ("All", operation::ALL),
    ("Read", operation::READ),
    ("Write", operation::WRITE),
    ("Create", operation::CREATE),
    ("Delete", operation::DELETE),
    ("Alter", operation::ALTER),
    ("Describe", operation::DESCRIBE),
    ("ClusterAction", operation::CLUSTER_ACTION),
    ("DescribeConfigs", operation::DESCRIBE_CONFIGS),
    ("AlterConfigs", operation::ALTER_CONFIGS),
    ("IdempotentWrite", operation::IDEMPOTENT_WRITE),
];

pub fn run(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Add { spec, target } => {
            let bindings = bindings_to_add(&spec)?;
            add(&target, &bindings)?;
            println!("added {} ACL binding(s)", bindings.len());
            Ok(())
        }
        AclCommand::List { spec, target, out } => print(list(&target, &filters(&spec, false)?)?, out),
        AclCommand::Delete { spec, target } => {
            let removed = delete(&target, &filters(&spec, true)?)?;
            println!("deleted {removed} ACL binding(s)");
            Ok(())
        }
    }
}

/// Accepts Kafka's spellings: `Read`, `READ`, `describe-configs`, `DESCRIBE_CONFIGS`.
/// The named operations, or `default` alone when none is named.
fn parse_operations(names: &[String], default: i8) -> anyhow::Result<Vec<i8>> {
    if names.is_empty() {
        return Ok(vec![default]);
    }
    names.iter().map(|o| parse_operation(o)).collect()
}

fn parse_operation(text: &str) -> anyhow::Result<i8> {
    let wanted: String = text.chars().filter(|c| *c != '_' && *c != '-').collect();
    OPERATIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&wanted))
        .map(|(_, code)| *code)
        .with_context(|| format!("unknown operation {text:?} (one of {})", operation_names()))
}

fn operation_names() -> String {
    OPERATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn parse_pattern(text: &str, filtering: bool) -> anyhow::Result<i8> {
    match text.to_ascii_lowercase().as_str() {
        "literal" => Ok(pattern::LITERAL),
        "prefixed" => Ok(pattern::PREFIXED),
        "any" if filtering => Ok(pattern::ANY),
        "match" if filtering => Ok(pattern::MATCH),
        _ if filtering => bail!("unknown --resource-pattern-type {text:?} (literal, prefixed, any or match)"),
        _ => bail!("--resource-pattern-type of a binding is literal or prefixed, not {text:?}"),
    }
}

/// (resource type, name) of every resource flag.
fn resources(spec: &AclSpec) -> Vec<(i8, String)> {
    let named = |kind: i8, names: &[String]| names.iter().map(move |n| (kind, n.clone())).collect::<Vec<_>>();
    let mut out = named(resource::TOPIC, &spec.topic);
    out.extend(named(resource::GROUP, &spec.group));
    out.extend(named(resource::TRANSACTIONAL_ID, &spec.transactional_id));
    if spec.cluster {
        out.push((resource::CLUSTER, resource::CLUSTER_NAME.to_string()));
    }
    out
}

/// (principal, host, permission) of every --allow-principal and --deny-principal.
fn principals(spec: &AclSpec) -> Vec<(String, String, i8)> {
    let hosts = |given: &[String]| if given.is_empty() { vec![WILDCARD.to_string()] } else { given.to_vec() };
    let mut out = Vec::new();
    for (principals, hosts, perm) in [
        (&spec.allow_principals, hosts(&spec.allow_hosts), permission::ALLOW),
        (&spec.deny_principals, hosts(&spec.deny_hosts), permission::DENY),
    ] {
        for principal in principals {
            for host in &hosts {
                out.push((principal.clone(), host.clone(), perm));
            }
        }
    }
    out
}

fn bindings_to_add(spec: &AclSpec) -> anyhow::Result<Vec<AclBinding>> {
    let resources = resources(spec);
    let principals = principals(spec);
    if resources.is_empty() {
        bail!("name a resource: --topic, --group, --transactional-id or --cluster");
    }
    if principals.is_empty() {
        bail!("name a principal: --allow-principal or --deny-principal (e.g. User:alice)");
    }
    let pattern_type = parse_pattern(spec.pattern_type.as_deref().unwrap_or("literal"), false)?;
    let operations = parse_operations(&spec.operations, operation::ALL)?;
    let mut bindings = Vec::new();
    for (resource_type, resource_name) in &resources {
        for (principal, host, perm) in &principals {
            for op in &operations {
                let binding = AclBinding {
                    resource_type: *resource_type,
                    resource_name: resource_name.clone(),
                    pattern_type,
                    principal: principal.clone(),
                    host: host.clone(),
                    operation: *op,
                    permission: *perm,
                };
                if let Some(why) = binding.invalid() {
                    bail!("{why}");
                }
                bindings.push(binding);
            }
        }
    }
    Ok(bindings)
}

/// The filters a list or delete means: one per resource × principal × operation given, any
/// for what is not given. Deleting needs a resource (as kafka-acls --remove).
fn filters(spec: &AclSpec, deleting: bool) -> anyhow::Result<Vec<AclFilter>> {
    let resources = resources(spec);
    if deleting && resources.is_empty() {
        bail!("name the resource to delete bindings of: --topic, --group, --transactional-id or --cluster");
    }
    let default_pattern = if resources.is_empty() { "any" } else { "literal" };
    let pattern_type = parse_pattern(spec.pattern_type.as_deref().unwrap_or(default_pattern), true)?;
    let resources: Vec<(i8, Option<String>)> = match resources.is_empty() {
        true => vec![(resource::ANY, None)],
        false => resources.into_iter().map(|(t, n)| (t, Some(n))).collect(),
    };
    let mut principals: Vec<(Option<String>, Option<String>, i8)> =
        principals(spec).into_iter().map(|(p, h, perm)| (Some(p), (h != WILDCARD).then_some(h), perm)).collect();
    if let Some(principal) = &spec.principal {
        principals.push((Some(principal.clone()), None, permission::ANY));
    }
    if principals.is_empty() {
        principals.push((None, None, permission::ANY));
    }
    let operations = parse_operations(&spec.operations, operation::ANY)?;
    let mut out = Vec::new();
    for (resource_type, resource_name) in &resources {
        for (principal, host, perm) in &principals {
            for op in &operations {
                out.push(AclFilter {
                    resource_type: *resource_type,
                    resource_name: resource_name.clone(),
                    pattern_type,
                    principal: principal.clone(),
                    host: host.clone(),
                    operation: *op,
                    permission: *perm,
                });
            }
        }
    }
    Ok(out)
}

fn connect(target: &AclTarget) -> anyhow::Result<KafkaClient> {
    connect_as(&target.bootstrap, target.sasl_user.as_deref())
}

/// A connection to `bootstrap`, logged in with SASL PLAIN as `sasl_user` when given
/// (password from `SLUICE_SASL_PASSWORD`); `sluice user` uses it too.
pub fn connect_as(bootstrap: &str, sasl_user: Option<&str>) -> anyhow::Result<KafkaClient> {
    let mut client = KafkaClient::connect(bootstrap)?;
    if let Some(user) = sasl_user {
        let password = std::env::var(SASL_PASSWORD_ENV)
            .with_context(|| format!("--sasl-user {user}: set the password in {SASL_PASSWORD_ENV}"))?;
        client.login_plain(user, &password)?;
    }
    Ok(client)
}

/// A stopped broker's bindings, locked against a broker starting meanwhile.
fn offline(dir: &std::path::Path) -> anyhow::Result<(crate::data_lock::DataDirLock, Acls)> {
    let lock = crate::data_lock::DataDirLock::acquire(dir)?;
    let acls = Acls::open(dir, Vec::new(), false).map_err(anyhow::Error::msg)?;
    Ok((lock, acls))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn add(target: &AclTarget, bindings: &[AclBinding]) -> anyhow::Result<()> {
    if let Some(dir) = &target.data_dir {
        let (_lock, acls) = offline(dir)?;
        return acls.create(bindings.to_vec()).map_err(anyhow::Error::msg);
    }
    let mut request = CreateAclsRequest::default();
    request.creations = bindings
        .iter()
        .map(|b| {
            let mut c = AclCreation::default();
            c.resource_type = b.resource_type;
            c.resource_name = str_bytes(&b.resource_name);
            c.resource_pattern_type = b.pattern_type;
            c.principal = str_bytes(&b.principal);
            c.host = str_bytes(&b.host);
            c.operation = b.operation;
            c.permission_type = b.permission;
            c
        })
        .collect();
    let response = connect(target)?.request(ACLS_VERSION, &request)?;
    for result in response.results {
        let message = result.error_message.as_deref().unwrap_or("").to_string();
        check(result.error_code, || format!("add ACL{}{message}", if message.is_empty() { "" } else { ": " }))?;
    }
    Ok(())
}

fn list(target: &AclTarget, filters: &[AclFilter]) -> anyhow::Result<Vec<AclBinding>> {
    let mut out: Vec<AclBinding> = Vec::new();
    if let Some(dir) = &target.data_dir {
        let (_lock, acls) = offline(dir)?;
        for filter in filters {
            out.extend(acls.describe(filter));
        }
    } else {
        let mut client = connect(target)?;
        for f in filters {
            let mut request = DescribeAclsRequest::default();
            request.resource_type_filter = f.resource_type;
            request.resource_name_filter = f.resource_name.as_deref().map(str_bytes);
            request.pattern_type_filter = f.pattern_type;
            request.principal_filter = f.principal.as_deref().map(str_bytes);
            request.host_filter = f.host.as_deref().map(str_bytes);
            request.operation = f.operation;
            request.permission_type = f.permission;
            let response = client.request(ACLS_VERSION, &request)?;
            let message = response.error_message.as_deref().unwrap_or("").to_string();
            check(response.error_code, || format!("list ACLs{}{message}", if message.is_empty() { "" } else { ": " }))?;
            for r in response.resources {
                for a in r.acls {
                    out.push(AclBinding {
                        resource_type: r.resource_type,
                        resource_name: r.resource_name.to_string(),
                        pattern_type: r.pattern_type,
                        principal: a.principal.to_string(),
                        host: a.host.to_string(),
                        operation: a.operation,
                        permission: a.permission_type,
                    });
                }
            }
        }
    }
    let mut unique = Vec::new();
    for b in out {
        if !unique.contains(&b) {
            unique.push(b);
        }
    }
    Ok(unique)
}

fn delete(target: &AclTarget, filters: &[AclFilter]) -> anyhow::Result<usize> {
    if let Some(dir) = &target.data_dir {
        let (_lock, acls) = offline(dir)?;
        let removed = acls.delete(filters).map_err(anyhow::Error::msg)?;
        return Ok(removed.iter().map(Vec::len).sum());
    }
    let mut request = DeleteAclsRequest::default();
    request.filters = filters
        .iter()
        .map(|f| {
            let mut d = DeleteAclsFilter::default();
            d.resource_type_filter = f.resource_type;
            d.resource_name_filter = f.resource_name.as_deref().map(str_bytes);
            d.pattern_type_filter = f.pattern_type;
            d.principal_filter = f.principal.as_deref().map(str_bytes);
            d.host_filter = f.host.as_deref().map(str_bytes);
            d.operation = f.operation;
            d.permission_type = f.permission;
            d
        })
        .collect();
    let response = connect(target)?.request(ACLS_VERSION, &request)?;
    let mut removed = 0;
    for result in response.filter_results {
        let message = result.error_message.as_deref().unwrap_or("").to_string();
        check(result.error_code, || format!("delete ACLs{}{message}", if message.is_empty() { "" } else { ": " }))?;
        removed += result.matching_acls.len();
    }
    Ok(removed)
}

fn name_of(table: &[(&'static str, i8)], code: i8) -> &'static str {
    table.iter().find(|(_, c)| *c == code).map_or("UNKNOWN", |(n, _)| *n)
}

const RESOURCE_TYPES: [(&str, i8); 4] = [
    ("Topic", resource::TOPIC),
    ("Group", resource::GROUP),
    ("Cluster", resource::CLUSTER),
    ("TransactionalId", resource::TRANSACTIONAL_ID),
];
const PATTERN_TYPES: [(&str, i8); 2] = [("Literal", pattern::LITERAL), ("Prefixed", pattern::PREFIXED)];
const PERMISSIONS: [(&str, i8); 2] = [("Allow", permission::ALLOW), ("Deny", permission::DENY)];

fn print(bindings: Vec<AclBinding>, out: Output) -> anyhow::Result<()> {
    if out.json {
        let json: Vec<serde_json::Value> = bindings
            .iter()
            .map(|b| {
                serde_json::json!({
                    "principal": b.principal,
                    "host": b.host,
                    "operation": name_of(&OPERATIONS, b.operation),
                    "permission": name_of(&PERMISSIONS, b.permission),
                    "resource_type": name_of(&RESOURCE_TYPES, b.resource_type),
                    "resource_name": b.resource_name,
                    "pattern_type": name_of(&PATTERN_TYPES, b.pattern_type),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let mut table = Table::new(&["PRINCIPAL", "HOST", "OPERATION", "PERMISSION", "RESOURCE", "NAME", "PATTERN"]);
    for b in bindings {
        table.row(vec![
            b.principal,
            b.host,
            name_of(&OPERATIONS, b.operation).to_string(),
            name_of(&PERMISSIONS, b.permission).to_string(),
            name_of(&RESOURCE_TYPES, b.resource_type).to_string(),
            b.resource_name,
            name_of(&PATTERN_TYPES, b.pattern_type).to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_acls_spellings_of_operations() {
        assert_eq!(parse_operation("Read").ok(), Some(operation::READ));
        assert_eq!(parse_operation("DESCRIBE_CONFIGS").ok(), Some(operation::DESCRIBE_CONFIGS));
        assert_eq!(parse_operation("idempotent-write").ok(), Some(operation::IDEMPOTENT_WRITE));
        assert!(parse_operation("Fly").is_err());
    }

    #[test]
    fn add_makes_every_combination_and_delete_needs_a_resource() {
        let spec = AclSpec {
            allow_principals: vec!["User:alice".into()],
            deny_principals: vec!["User:eve".into()],
            operations: vec!["Read".into(), "Write".into()],
            topic: vec!["t".into()],
            pattern_type: Some("prefixed".into()),
            ..AclSpec::default()
        };
        let bindings = bindings_to_add(&spec).expect("valid");
        assert_eq!(bindings.len(), 4);
        assert!(bindings.iter().all(|b| b.pattern_type == pattern::PREFIXED && b.host == WILDCARD));
        assert!(filters(&AclSpec::default(), true).is_err());
        let everything = filters(&AclSpec::default(), false).expect("list all");
        assert_eq!(everything.len(), 1);
        assert_eq!((everything[0].resource_type, everything[0].pattern_type), (resource::ANY, pattern::ANY));
    }
}
