//! DescribeCluster: this node, which is also the controller.

use super::str_bytes;
use crate::error_codes::NONE;
use crate::server::Context;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

pub fn handle(ctx: &Context, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let config = ctx.broker.config();
    let mut response = DescribeClusterResponse::default();
    response.error_code = NONE;
    response.cluster_id = str_bytes(ctx.broker.cluster_id());
    response.controller_id = BrokerId(ctx.broker.node_id());
    let mut node = DescribeClusterBroker::default();
    node.broker_id = BrokerId(ctx.broker.node_id());
    node.host = str_bytes(&config.advertised_host);
    node.port = i32::from(config.advertised_port);
    response.brokers = vec![node];
    response
}
