//! DescribeClientQuotas and AlterClientQuotas (KIP-546): the client quotas of this node's
//! store, by entity (`user`, `client-id`; a null name is the default). With an authorizer,
//! Kafka's rule: DESCRIBE_CONFIGS (ALTER_CONFIGS) on the cluster, else
//! CLUSTER_AUTHORIZATION_FAILED.

use super::str_bytes;
use crate::error_codes::{CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST, NONE};
use crate::quota::store::{Change, Entity, Match, Name, QuotaStore};
use kafka_protocol::messages::alter_client_quotas_response::{EntityData as AlteredEntity, EntryData as Altered};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";

pub fn describe(
    store: &QuotaStore,
    request: DescribeClientQuotasRequest,
    allowed: bool,
) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    if !allowed {
        response.error_code = CLUSTER_AUTHORIZATION_FAILED;
        response.error_message = Some(str_bytes("Cluster authorization failed."));
        return response;
    }
    let mut filter = Vec::new();
    for component in &request.components {
        let kind = component.entity_type.to_string();
        let wanted = match (component.match_type, &component._match) {
            (0, Some(name)) => Match::Exact(name.to_string()),
            (0, None) | (1, _) => Match::Default,
            (2, _) => Match::Any,
            (other, _) => return refused(INVALID_REQUEST, &format!("Unknown match type {other}")),
        };
        if kind != USER && kind != CLIENT_ID {
            return refused(INVALID_REQUEST, &format!("Unsupported quota entity type {kind}"));
        }
        filter.push((kind, wanted));
    }
    response.error_code = NONE;
    let found = store.describe(&filter, request.strict);
    response.entries = Some(
        found
            .into_iter()
            .map(|(entity, values)| {
                let mut entry = EntryData::default();
                entry.entity = components(&entity)
                    .into_iter()
                    .map(|(kind, name)| {
                        EntityData::default()
                            .with_entity_type(str_bytes(kind))
                            .with_entity_name(name.map(|n| str_bytes(&n)))
                    })
                    .collect();
                entry.values = values
                    .into_iter()
                    .map(|(key, value)| ValueData::default().with_key(str_bytes(&key)).with_value(value))
                    .collect();
                entry
            })
            .collect(),
    );
    response
}

fn refused(code: i16, message: &str) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    response.error_code = code;
    response.error_message = Some(str_bytes(message));
    response
}

pub fn alter(store: &QuotaStore, request: AlterClientQuotasRequest, allowed: bool) -> AlterClientQuotasResponse {
    let mut response = AlterClientQuotasResponse::default();
    let mut changes = Vec::new();
    let mut early: Vec<Option<(i16, String)>> = Vec::new();
    for entry in &request.entries {
        let parsed = entity(entry);
        let ops =
            entry.ops.iter().map(|op| Change { key: op.key.to_string(), value: op.value, remove: op.remove }).collect();
        match (allowed, parsed) {
            (false, _) => early.push(Some((CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.".into()))),
            (true, Err(message)) => early.push(Some((INVALID_REQUEST, message))),
            (true, Ok(entity)) => {
                early.push(None);
                changes.push((entity, ops));
            }
        }
    }
    let mut applied = store.alter(changes, request.validate_only).into_iter();
    for (entry, refusal) in request.entries.iter().zip(early) {
        let outcome = refusal.map_or_else(|| applied.next().unwrap_or(Ok(())), Err);
        let mut answer = Altered::default();
        answer.entity = entry
            .entity
            .iter()
            .map(|e| {
                AlteredEntity::default().with_entity_type(e.entity_type.clone()).with_entity_name(e.entity_name.clone())
            })
            .collect();
        match outcome {
            Ok(()) => answer.error_code = NONE,
            Err((code, message)) => {
                answer.error_code = code;
                answer.error_message = Some(str_bytes(&message));
            }
        }
        response.entries.push(answer);
    }
    response
}

/// An entry's entity: user and client-id components, at most one of each.
fn entity(entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData) -> Result<Entity, String> {
    let mut entity = Entity { user: None, client_id: None };
    for component in &entry.entity {
        let name = match &component.entity_name {
            Some(name) => Name::Named(name.to_string()),
            None => Name::Default,
        };
        let slot = match component.entity_type.as_str() {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            other => return Err(format!("Unsupported quota entity type {other}")),
        };
        if slot.replace(name).is_some() {
            return Err(format!("Duplicate quota entity type {}", component.entity_type.as_str()));
        }
    }
    Ok(entity)
}

/// An entity's components as the protocol names them (a None name is the default).
fn components(entity: &Entity) -> Vec<(&'static str, Option<String>)> {
    let name = |n: &Name| match n {
        Name::Default => None,
        Name::Named(s) => Some(s.clone()),
    };
    let mut out = Vec::new();
    if let Some(user) = &entity.user {
        out.push((USER, name(user)));
    }
    if let Some(client) = &entity.client_id {
        out.push((CLIENT_ID, name(client)));
    }
    out
}
