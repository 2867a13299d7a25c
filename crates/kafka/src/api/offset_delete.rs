//! OffsetDelete: removes committed offsets of partitions the group no longer consumes.

use crate::error_codes::{group_code, NONE};
use crate::server::Context;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

pub fn handle(ctx: &Context, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let results = match ctx.broker.groups().delete_offsets(&request.group_id.0, &wanted) {
        Ok(r) => r,
        Err(e) => {
            response.error_code = group_code(&e);
            return response;
        }
    };
    let mut results = results.into_iter();
    for topic in request.topics {
        let mut out = OffsetDeleteResponseTopic::default();
        out.name = topic.name;
        for p in topic.partitions {
            let mut r = OffsetDeleteResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = results.next().and_then(|x| x.err()).as_ref().map_or(NONE, group_code);
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    response
}
