//! FindCoordinator's answer: which node coordinates a group. A single node coordinates every
//! group; in a cluster it is the Raft leader of the group's `__consumer_offsets` partition.
//!
//! The topic is created on the first FindCoordinator, as Kafka does, rather than when the
//! cluster forms: a cluster nobody uses groups on carries no offsets partitions (each one a
//! Raft group with its own heartbeats on every replica), and by the time a consumer comes
//! the nodes have registered, so the topic gets the cluster's full replication factor.

use super::offsets_partition::{partition_of, OFFSETS_TOPIC};
use super::GroupError;
use crate::broker::Broker;
use crate::cluster_view::{BrokerAddress, NewTopic};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two attempts to create the offsets topic (a failed or slow creation is
/// retried by the clients' next FindCoordinator, not by every one of them at once).
const CREATE_RETRY: Duration = Duration::from_secs(1);

/// When this node last asked the metadata group to create the offsets topic.
static LAST_CREATE: Mutex<Option<Instant>> = Mutex::new(None);

/// The node coordinating `group_id`, or `CoordinatorNotAvailable` while the offsets topic is
/// being created or the group's partition has no leader (clients ask again).
pub fn coordinator_of(broker: &Broker, group_id: &str) -> Result<BrokerAddress, GroupError> {
    let Some(cluster) = broker.cluster() else {
        let config = broker.config();
        return Ok(BrokerAddress {
            node_id: broker.node_id(),
            host: config.advertised_host.clone(),
            port: config.advertised_port,
            rack: None,
        });
    };
    let Some(topic) = broker.topic(OFFSETS_TOPIC) else {
        create_offsets_topic(broker, broker.groups().config().offsets_topic_partitions);
        return Err(GroupError::CoordinatorNotAvailable);
    };
    // The topic's own count: the same on every node, whatever each was started with.
    let index = partition_of(group_id, topic.partition_count());
    let placement = cluster.placement(OFFSETS_TOPIC, index).ok_or(GroupError::CoordinatorNotAvailable)?;
    let leader = placement.leader.ok_or(GroupError::CoordinatorNotAvailable)?;
    cluster.brokers().into_iter().find(|b| b.node_id == leader).ok_or(GroupError::CoordinatorNotAvailable)
}

/// Asks the metadata group for `__consumer_offsets` (compacted; the cluster's replication
/// factor), at most once per `CREATE_RETRY`; the answer comes back through the reconciler.
fn create_offsets_topic(broker: &Broker, partitions: u32) {
    let Some(cluster) = broker.cluster() else { return };
    {
        let Ok(mut last) = LAST_CREATE.lock() else { return };
        if last.is_some_and(|at| at.elapsed() < CREATE_RETRY) {
            return;
        }
        *last = Some(Instant::now());
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    // Kafka's offsets topic is compacted (each replica compacts its copy, `compactor`); the
    // policy also turns time and size retention off, which must never drop offsets.
    let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    let creating = cluster.create_topic(NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: Some(partitions),
        replication_factor: None,
        configs,
    });
    runtime.spawn(async move {
        match creating.await {
            Ok(()) => tracing::info!(partitions, "{OFFSETS_TOPIC} created"),
            Err(crate::error::BrokerError::TopicAlreadyExists) => {}
            Err(e) => tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}"),
        }
    });
}
