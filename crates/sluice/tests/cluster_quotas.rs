//! Proves client quotas are cluster-wide state (the metadata group): on a 3-node cluster, a
//! quota set with AlterClientQuotas through node 1 is described by node 3, still after node
//! 3 restarted, and enforced there (librdkafka's statistics report node 3's throttle); one
//! removed through node 2 is gone from every node.

mod cluster_support;
mod common;
mod history;

use cluster_support::Cluster;
use common::raw::Raw;
use common::{runtime, unique_topic, wait_until, ThrottleSeen};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::sync::atomic::Ordering;
use std::time::Duration;

const NODES: usize = 3;
/// Bound on a change made through one node taking effect on another.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT: &str = "tenant-a";
const QUOTA: f64 = 50_000.0;

fn alter(addr: &str, remove: bool) -> i16 {
    let entity = EntityData::default()
        .with_entity_type(StrBytes::from_static_str("client-id"))
        .with_entity_name(Some(StrBytes::from_static_str(CLIENT)));
    let op = OpData::default()
        .with_key(StrBytes::from_static_str("producer_byte_rate"))
        .with_value(QUOTA)
        .with_remove(remove);
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(vec![entity]).with_ops(vec![op])]);
    let response = Raw::connect_addr(addr.parse().expect("address")).request(1, &request);
    response.entries[0].error_code
}

/// The producer_byte_rate of `CLIENT` as the node at `addr` describes it.
fn described(addr: &str) -> Option<f64> {
    let mut component =
        ComponentData::default().with_entity_type(StrBytes::from_static_str("client-id")).with_match_type(0);
    component._match = Some(StrBytes::from_static_str(CLIENT));
    let request = DescribeClientQuotasRequest::default().with_components(vec![component]);
    let response = Raw::connect_addr(addr.parse().expect("address")).request(1, &request);
    let entries = response.entries.unwrap_or_default();
    entries.iter().flat_map(|e| &e.values).find(|v| v.key.as_str() == "producer_byte_rate").map(|v| v.value)
}

#[test]
fn quotas_set_on_one_node_hold_on_every_node() {
    let mut cluster = Cluster::start(NODES);
    assert_eq!(alter(&cluster.kafka_addr(1), false), 0);
    for id in 1..=NODES as u64 {
        let addr = cluster.kafka_addr(id);
        wait_until(PROPAGATION_TIMEOUT, &format!("node {id} to describe the quota"), || {
            described(&addr) == Some(QUOTA)
        });
    }
    cluster.node(3).restart();
    let node3 = cluster.kafka_addr(3);
    wait_until(PROPAGATION_TIMEOUT, "node 3 to describe the quota after its restart", || {
        described(&node3) == Some(QUOTA)
    });

    // Enforced on node 3: 600 KB at 50 KB/s to the partition it holds alone.
    let topic = unique_topic("cluster-quotas");
    let bootstrap = cluster.bootstrap_servers();
    cluster_support::kafka::create_topic(&bootstrap, &topic, NODES as i32, 1).expect("create the topic");
    let client = cluster_support::kafka::metadata_client(&bootstrap);
    let mut on_node3 = None;
    wait_until(PROPAGATION_TIMEOUT, "the partition on node 3 to have its leader", || {
        on_node3 = (0..NODES as i32).find(|p| cluster_support::kafka::leader_of(&client, &topic, *p) == Some(3));
        on_node3.is_some()
    });
    let partition = on_node3.expect("a partition on node 3");
    let seen = ThrottleSeen::default();
    let producer: FutureProducer<ThrottleSeen> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("client.id", CLIENT)
        .set("statistics.interval.ms", "100")
        .create_with_context(seen.clone())
        .expect("producer");
    let rt = runtime();
    let value = vec![b'q'; 10_000];
    let sends: Vec<_> = (0..60)
        .map(|_| {
            producer
                .send_result(FutureRecord::<(), _>::to(&topic).partition(partition).payload(&value))
                .expect("queued")
        })
        .collect();
    for send in sends {
        rt.block_on(send).expect("delivery report").unwrap_or_else(|(e, _)| panic!("a send failed: {e}"));
    }
    wait_until(Duration::from_secs(5), "librdkafka to report node 3's throttle", || seen.0.load(Ordering::Relaxed) > 0);

    // Removed through node 2: gone everywhere.
    assert_eq!(alter(&cluster.kafka_addr(2), true), 0);
    for id in 1..=NODES as u64 {
        let addr = cluster.kafka_addr(id);
        wait_until(PROPAGATION_TIMEOUT, &format!("node {id} to drop the quota"), || described(&addr).is_none());
    }
    cluster.assert_no_panics("after the cluster quota test");
}
