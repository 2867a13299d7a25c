//! DescribeCluster: the same brokers, controller and cluster id as Metadata (every node of a
//! cluster; this node alone otherwise), and when asked the cluster's authorized operations
//! (KIP-430: all of them, as Kafka without an authorizer).

use super::authorized_operations::{self as operations, if_asked};
use super::str_bytes;
use crate::error_codes::NONE;
use crate::listener::ListenerInfo;
use crate::server::Context;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

pub fn handle(ctx: &Context, listener: &ListenerInfo, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.error_code = NONE;
    response.cluster_authorized_operations =
        if_asked(request.include_cluster_authorized_operations, operations::CLUSTER);
    response.cluster_id = str_bytes(&super::cluster_id(ctx));
    response.controller_id = BrokerId(super::controller_id(ctx));
    response.brokers = super::brokers(ctx, listener)
        .into_iter()
        .map(|b| {
            let mut node = DescribeClusterBroker::default();
            node.broker_id = BrokerId(b.node_id);
            node.host = str_bytes(&b.host);
            node.port = i32::from(b.port);
            node.rack = b.rack.as_deref().map(str_bytes);
            node
        })
        .collect();
    response
}
