//! OffsetFetch: committed offsets of one group (v0–7) or several (v8); no commit is
//! offset -1. A null topic list (v2+) asks for every offset of the group.

use super::str_bytes;
use crate::dispatch::RequestMeta;
use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use sluice_broker::group::{Committed, GroupError};

/// (topic, partition, committed) rows of one group, grouped by topic in request order.
type Rows = Vec<(TopicName, Vec<(i32, Option<Committed>)>)>;

pub fn handle(ctx: &Context, request: OffsetFetchRequest, meta: RequestMeta) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if meta.version >= 8 {
        for group in request.groups {
            let wanted =
                group.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect::<Vec<_>>());
            let mut out = OffsetFetchResponseGroup::default();
            match fetch(ctx, &group.group_id.0, wanted) {
                Ok(rows) => {
                    for (name, partitions) in rows {
                        let mut topic = OffsetFetchResponseTopics::default();
                        topic.name = name;
                        topic.partitions = partitions
                            .into_iter()
                            .map(|(index, c)| {
                                let mut p = OffsetFetchResponsePartitions::default();
                                p.partition_index = index;
                                p.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                                p.committed_leader_epoch = c.as_ref().map_or(-1, |c| c.leader_epoch);
                                p.metadata =
                                    Some(str_bytes(c.as_ref().and_then(|c| c.metadata.as_deref()).unwrap_or("")));
                                p.error_code = NONE;
                                p
                            })
                            .collect();
                        out.topics.push(topic);
                    }
                }
                Err(e) => out.error_code = group_code(&e),
            }
            out.group_id = group.group_id;
            response.groups.push(out);
        }
        return response;
    }
    let wanted = request.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect::<Vec<_>>());
    // v0–1 can only carry errors per partition.
    let per_partition_error = meta.version < 2;
    match fetch(ctx, &request.group_id.0, wanted.clone()) {
        Ok(rows) => response.topics = v0_topics(rows, meta.version, NONE),
        Err(e) if per_partition_error => {
            let rows = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(name, ps)| (name, ps.into_iter().map(|p| (p, None)).collect()))
                .collect();
            response.topics = v0_topics(rows, meta.version, group_code(&e));
        }
        Err(e) => response.error_code = group_code(&e),
    }
    response
}

fn v0_topics(rows: Rows, version: i16, error_code: i16) -> Vec<OffsetFetchResponseTopic> {
    rows.into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopic::default();
            topic.name = name;
            topic.partitions = partitions
                .into_iter()
                .map(|(index, c)| {
                    let mut p = OffsetFetchResponsePartition::default();
                    p.partition_index = index;
                    p.committed_offset = c.as_ref().map_or(-1, |c| c.offset);
                    if version >= 5 {
                        p.committed_leader_epoch = c.as_ref().map_or(-1, |c| c.leader_epoch);
                    }
                    p.metadata = Some(str_bytes(c.as_ref().and_then(|c| c.metadata.as_deref()).unwrap_or("")));
                    p.error_code = error_code;
                    p
                })
                .collect();
            topic
        })
        .collect()
}

fn fetch(ctx: &Context, group: &str, wanted: Option<Vec<(TopicName, Vec<i32>)>>) -> Result<Rows, GroupError> {
    let groups = ctx.broker.groups();
    match wanted {
        Some(topics) => {
            let flat: Vec<(String, i32)> =
                topics.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.0.to_string(), *p))).collect();
            let mut found = groups.fetch_offsets(group, Some(&flat))?.into_iter();
            Ok(topics
                .into_iter()
                .map(|(name, ps)| {
                    let rows = ps.into_iter().map(|p| (p, found.next().and_then(|(_, _, c)| c))).collect();
                    (name, rows)
                })
                .collect())
        }
        None => {
            let mut rows: Rows = Vec::new();
            for (topic, partition, c) in groups.fetch_offsets(group, None)? {
                match rows.last_mut() {
                    Some((name, ps)) if *name.0 == *topic => ps.push((partition, c)),
                    _ => rows.push((super::topic_name(&topic), vec![(partition, c)])),
                }
            }
            Ok(rows)
        }
    }
}
