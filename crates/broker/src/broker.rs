//! The broker core: the registry of topics, the entry point every listener calls.

use crate::clients::Clients;
use crate::cluster_view::{ClusterView, NewTopic};
use crate::config::BrokerConfig;
use crate::error::{BrokerError, BrokerResult};
use crate::group::GroupCoordinator;
use crate::health::StorageHealth;
use crate::metrics::Metrics;
use crate::names::validate_topic_name;
use crate::partition::Partition;
use crate::producer_ids::ProducerIds;
use crate::topic::{Incarnation, Topic};
use crate::topic_config::TopicConfig;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};

pub struct Broker {
    config: BrokerConfig,
    cluster_id: String,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic creation and deletion, which touch the disk.
    admin: Mutex<()>,
    producer_ids: ProducerIds,
    /// Consumer groups and their committed offsets.
    groups: Arc<GroupCoordinator>,
    /// Readers that need records kept past retention (NSQ channels); weak, so a holder
    /// that owns the broker does not keep itself alive through it.
    retention_holders: RwLock<Vec<Weak<dyn RetentionHolder>>>,
    /// Connected clients of every listener, admitted under `config.client_limits`.
    clients: Arc<Clients>,
    /// Request latency histograms for `/metrics` (the rest is read from state at scrape time).
    metrics: Arc<Metrics>,
    /// Whether storage takes writes; every partition reports to it.
    health: Arc<StorageHealth>,
    /// The cluster this node is part of (set once at start); None on a single node.
    cluster: std::sync::OnceLock<Arc<dyn ClusterView>>,
    /// In a cluster: the rest of the producer-id block this node got from the metadata
    /// group, as (next, end).
    cluster_producer_ids: Mutex<(i64, i64)>,
    /// Moves when a topic is created or deleted or gains partitions: readers of every topic
    /// (MQTT wildcard subscriptions) start on the new ones without polling.
    topology: tokio::sync::watch::Sender<u64>,
}

/// Producer ids a node reserves from the metadata group at a time, as Kafka's brokers do.
pub const CLUSTER_PRODUCER_ID_BLOCK: i64 = 1000;

/// Something that still needs a partition's records: retention keeps what it needs.
pub trait RetentionHolder: Send + Sync {
    /// The lowest offset of `topic`/`partition` still needed, or None.
    fn retention_floor(&self, topic: &str, partition: i32) -> Option<i64>;
    /// `topic` was deleted: drop what is kept of it (called before a re-create can start).
    fn topic_deleted(&self, _topic: &str) {}
}

impl Broker {
    /// Opens the data directory, recovering every topic found in it.
    pub fn open(config: BrokerConfig) -> BrokerResult<Arc<Broker>> {
        let topics_dir = config.data_dir.join("topics");
        sluice_log::durable_dir::create_dir_all(&topics_dir).map_err(|e| storage(&topics_dir, e))?;
        remove_leftovers(&config.data_dir.join(DELETED_DIR))?;
        remove_leftovers(&config.data_dir.join(STAGING_DIR))?;
        let cluster_id = load_or_create_cluster_id(&config.data_dir)?;
        let producer_ids = ProducerIds::open(&config.data_dir)?;
        let health = Arc::new(StorageHealth::default());
        let topics = load_topics(&topics_dir, &config, &health)?;
        accept_data_loss(&topics, &config.accept_data_loss_partitions);
        // Commits are as durable as the default flush policy makes produced records.
        let group_config = crate::group::GroupConfig {
            sync_commits: config.log_defaults.flush == sluice_log::FlushPolicy::Always,
            ..config.groups.clone()
        };
        let groups = Arc::new(GroupCoordinator::open(&config.data_dir, group_config)?);
        Ok(Arc::new(Broker {
            cluster_id,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            producer_ids,
            groups,
            retention_holders: RwLock::new(Vec::new()),
            clients: Arc::new(Clients::new(config.client_limits)),
            metrics: Arc::new(Metrics::new()),
            health,
            config,
            cluster: std::sync::OnceLock::new(),
            cluster_producer_ids: Mutex::new((0, 0)),
            topology: tokio::sync::watch::channel(0).0,
        }))
    }

    /// Registers a reader whose floor retention must respect (see `retention_hold`).
    pub fn add_retention_holder(&self, holder: Weak<dyn RetentionHolder>) {
        if let Ok(mut holders) = self.retention_holders.write() {
            holders.retain(|h| h.strong_count() > 0);
            holders.push(holder);
        }
    }

    /// What retention must keep of a partition: the lowest floor of every live holder,
    /// capped by `retention_hold_bytes_max`.
    pub fn retention_hold(&self, topic: &str, partition: i32) -> Option<sluice_log::RetentionHold> {
        let holders = self.retention_holders.read().ok()?;
        let floor =
            holders.iter().filter_map(Weak::upgrade).filter_map(|h| h.retention_floor(topic, partition)).min()?;
        Some(sluice_log::RetentionHold { keep_from_offset: floor, log_bytes_max: self.config.retention_hold_bytes_max })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().ok()?.get(name).cloned()
    }

    /// Changes whenever a topic is created or deleted or gains partitions.
    pub fn subscribe_topology(&self) -> tokio::sync::watch::Receiver<u64> {
        self.topology.subscribe()
    }

    fn topology_changed(&self) {
        self.topology.send_modify(|version| *version += 1);
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.topics.read().map(|t| t.values().cloned().collect()).unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn partition(&self, topic: &str, index: i32) -> BrokerResult<Arc<Partition>> {
        self.topic(topic).and_then(|t| t.partition(index)).ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// Makes this broker part of a cluster: topics are then created through `cluster`.
    /// Every partition, those there now and those created later, is marked clustered under
    /// the topics lock, so none can take an unreplicated append in between.
    pub fn set_cluster(&self, cluster: Arc<dyn ClusterView>) -> BrokerResult<()> {
        let topics = self.topics.write().map_err(|_| lock_poisoned())?;
        self.cluster
            .set(cluster)
            .map_err(|_| BrokerError::Storage("the broker is already part of a cluster".into()))?;
        topics.values().flat_map(|t| t.partitions()).for_each(|p| p.mark_clustered());
        Ok(())
    }

    /// Changes that only this node would make (the metadata group does not carry them yet)
    /// are refused in a cluster rather than letting the nodes disagree.
    fn refuse_in_cluster(&self, what: &str) -> BrokerResult<()> {
        match self.cluster.get() {
            Some(_) => Err(BrokerError::NotInCluster(format!("{what} is not supported in a cluster yet"))),
            None => Ok(()),
        }
    }

    /// The cluster this node is part of, if any.
    pub fn cluster(&self) -> Option<&Arc<dyn ClusterView>> {
        self.cluster.get()
    }

    /// The topic, created with the default partition count if unknown and auto-creation is on.
    /// In a cluster the creation goes through the metadata group and this answers
    /// `LeaderNotAvailable` meanwhile, as Kafka does; clients retry.
    pub fn topic_or_auto_create(&self, name: &str) -> BrokerResult<Arc<Topic>> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        validate_topic_name(name)?;
        // The broker makes its internal topics itself, with their own settings.
        if !self.config.auto_create_topics || crate::group::offsets_partition::is_internal_topic(name) {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        if let Some(cluster) = self.cluster.get() {
            let creating = cluster.create_topic(NewTopic {
                name: name.to_string(),
                partitions: None,
                replication_factor: None,
                configs: BTreeMap::new(),
            });
            let topic = name.to_string();
            tokio::spawn(async move {
                match creating.await {
                    Ok(()) | Err(BrokerError::TopicAlreadyExists) => {}
                    Err(e) => tracing::warn!(topic, error = %e, "auto-creating a topic failed"),
                }
            });
            return Err(BrokerError::LeaderNotAvailable);
        }
        match self.create_topic(name, None, BTreeMap::new()) {
            Ok(topic) => Ok(topic),
            Err(BrokerError::TopicAlreadyExists) => self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition),
            Err(e) => Err(e),
        }
    }

    /// Creates a topic where this broker's topics are made: locally on a single node, through
    /// the metadata group in a cluster (blocking this thread until this node has it, so call
    /// it from a blocking context or a multi-threaded runtime's worker).
    pub fn create_topic_anywhere(
        &self,
        name: &str,
        partitions: Option<u32>,
        configs: BTreeMap<String, String>,
    ) -> BrokerResult<Arc<Topic>> {
        let Some(cluster) = self.cluster.get() else {
            return self.create_topic(name, partitions, configs);
        };
        self.validate_new_topic(name, partitions, &configs)?;
        let creating =
            cluster.create_topic(NewTopic { name: name.to_string(), partitions, replication_factor: None, configs });
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| BrokerError::Storage("topic creation needs the runtime".into()))?;
        tokio::task::block_in_place(|| handle.block_on(creating))?;
        self.topic(name).ok_or(BrokerError::LeaderNotAvailable)
    }

    /// Checks what `create_topic` would check, without creating anything.
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        overrides: &BTreeMap<String, String>,
    ) -> BrokerResult<TopicConfig> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(BrokerError::TopicAlreadyExists);
        }
        let topics_max = self.config.topics_max;
        if topics_max > 0 && self.topics.read().map(|t| t.len()).unwrap_or(0) >= topics_max {
            return Err(BrokerError::TopicLimitReached { max: topics_max });
        }
        let count = partitions.unwrap_or(self.config.default_partitions);
        if count == 0 || count > self.config.partitions_per_topic_max {
            return Err(BrokerError::InvalidPartitions(format!(
                "partition count must be between 1 and {}",
                self.config.partitions_per_topic_max
            )));
        }
        let config = TopicConfig::from_overrides(overrides.clone())?;
        config.log_config(&self.config.log_defaults)?;
        Ok(config)
    }

    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<u32>,
        overrides: BTreeMap<String, String>,
    ) -> BrokerResult<Arc<Topic>> {
        self.create_topic_as(name, partitions, overrides, None)
    }

    /// Creates this node's copy of a cluster topic, recording its identity (the metadata
    /// group's id of it, the Kafka id every node gives it) with the topic. In a cluster only
    /// the reconciler calls this.
    pub fn create_local_cluster_topic(
        &self,
        name: &str,
        partitions: u32,
        overrides: BTreeMap<String, String>,
        incarnation: Incarnation,
    ) -> BrokerResult<Arc<Topic>> {
        self.create_topic_as(name, Some(partitions), overrides, Some(incarnation))
    }

    fn create_topic_as(
        &self,
        name: &str,
        partitions: Option<u32>,
        overrides: BTreeMap<String, String>,
        incarnation: Option<Incarnation>,
    ) -> BrokerResult<Arc<Topic>> {
        let _admin = self.admin.lock().map_err(|_| lock_poisoned())?;
        let config = self.validate_new_topic(name, partitions, &overrides)?;
        let count = partitions.unwrap_or(self.config.default_partitions);
        let dir = self.topic_dir(name);
        let staging = self.config.data_dir.join(STAGING_DIR).join(format!("{name}.{}", uuid::Uuid::new_v4().simple()));
        let health = Arc::clone(&self.health);
        let defaults = &self.config.log_defaults;
        let topic = Arc::new(Topic::create_staged(&staging, dir, name, count, config, incarnation, defaults, health)?);
        let mut topics = self.topics.write().map_err(|_| lock_poisoned())?;
        if self.cluster.get().is_some() {
            topic.partitions().iter().for_each(|p| p.mark_clustered());
        }
        topics.insert(name.to_string(), Arc::clone(&topic));
        drop(topics);
        self.topology_changed();
        tracing::info!(topic = name, partitions = count, "topic created");
        Ok(topic)
    }

    /// Deletes the topic and its data from disk. Crash-safe: the directory is first
    /// renamed into `deleted/`, whose contents are removed again on start.
    /// In a cluster, deletion goes through the metadata group (`delete_topic_anywhere`).
    pub fn delete_topic(&self, name: &str) -> BrokerResult<()> {
        self.refuse_in_cluster("deleting a topic")?;
        self.delete_local_topic(name)
    }

    /// `delete_topic` on this node only: in a cluster, the reconciler's, once the metadata
    /// group has deleted the topic (its Raft groups stopped first).
    pub fn delete_local_topic(&self, name: &str) -> BrokerResult<()> {
        let _admin = self.admin.lock().map_err(|_| lock_poisoned())?;
        let topic = self
            .topics
            .write()
            .map_err(|_| lock_poisoned())?
            .remove(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let graveyard = self.config.data_dir.join(DELETED_DIR);
        sluice_log::durable_dir::create_dir_all(&graveyard).map_err(|e| storage(&graveyard, e))?;
        let target = graveyard.join(format!("{}.{}", name, topic.id.simple()));
        fs::rename(topic.dir(), &target).map_err(|e| storage(topic.dir(), e))?;
        fs::remove_dir_all(&target).map_err(|e| storage(&target, e))?;
        tracing::info!(topic = name, "topic deleted");
        self.topology_changed();
        // Its readers' state goes with it (committed offsets, NSQ channels), still under
        // the admin lock so a re-created topic never sees it.
        let _ = self.groups.topic_deleted(name);
        if let Ok(holders) = self.retention_holders.read() {
            holders.iter().filter_map(Weak::upgrade).for_each(|h| h.topic_deleted(name));
        }
        Ok(())
    }

    pub fn create_partitions(&self, name: &str, total: u32) -> BrokerResult<()> {
        self.refuse_in_cluster("adding partitions")?;
        self.add_local_partitions(name, total)
    }

    /// `create_partitions` on this node only: in a cluster, the reconciler's.
    pub fn add_local_partitions(&self, name: &str, total: u32) -> BrokerResult<()> {
        let _admin = self.admin.lock().map_err(|_| lock_poisoned())?;
        let topic = self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        if total > self.config.partitions_per_topic_max {
            return Err(BrokerError::InvalidPartitions(format!(
                "at most {} partitions per topic",
                self.config.partitions_per_topic_max
            )));
        }
        topic.add_partitions(total, &self.config.log_defaults)?;
        self.topology_changed();
        tracing::info!(topic = name, partitions = total, "partitions added");
        Ok(())
    }

    /// Replaces a topic's config overrides (validated first; nothing changes on error).
    pub fn set_topic_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> BrokerResult<()> {
        let topic = self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let config = self.check_topic_config(overrides)?;
        if validate_only {
            return Ok(());
        }
        self.refuse_in_cluster("changing a topic's configs")?;
        topic.set_config(config, &self.config.log_defaults)
    }

    /// A topic's config overrides as they would be set, or why not (`InvalidConfig`).
    pub fn check_topic_config(&self, overrides: BTreeMap<String, String>) -> BrokerResult<TopicConfig> {
        let config = TopicConfig::from_overrides(overrides)?;
        config.log_config(&self.config.log_defaults)?;
        Ok(config)
    }

    /// What `/metrics` renders, and where listeners record request latency.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The group coordinator (this node coordinates every group).
    /// Connected clients of every protocol.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    /// Whether storage takes writes (see `storage_problem`).
    pub fn storage_health(&self) -> &Arc<StorageHealth> {
        &self.health
    }

    /// Why storage does not take writes now, or None: the latest write failure until a
    /// write or probe succeeds, or a partition poisoned by a failed fsync (until restart).
    pub fn storage_problem(&self) -> Option<String> {
        if let Some(problem) = self.health.problem() {
            return Some(problem);
        }
        let partitions: Vec<_> = self.topics().into_iter().flat_map(|t| t.partitions()).collect();
        if let Some((p, damage)) = partitions.iter().find_map(|p| Some((p, p.log().damage()?))) {
            return Some(format!(
                "partition {}-{} is refused: {damage}; start with --accept-data-loss-partitions {}-{} to accept it",
                p.topic, p.index, p.topic, p.index
            ));
        }
        let poisoned = partitions.into_iter().find(|p| p.log().is_poisoned())?;
        Some(format!(
            "partition {}-{} refuses writes after a failed fsync; restart the broker to recover it",
            poisoned.topic, poisoned.index
        ))
    }

    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    pub fn allocate_producer_id(&self) -> BrokerResult<i64> {
        self.producer_ids.allocate()
    }

    /// A producer id unique where this broker is: from its own file on a single node, from a
    /// block of the metadata group in a cluster (so two nodes never hand out the same id).
    pub async fn allocate_producer_id_anywhere(&self) -> BrokerResult<i64> {
        let Some(cluster) = self.cluster.get() else {
            return self.allocate_producer_id();
        };
        loop {
            {
                let mut block = self.cluster_producer_ids.lock().map_err(|_| lock_poisoned())?;
                if block.0 < block.1 {
                    block.0 += 1;
                    return Ok(block.0 - 1);
                }
            }
            let first = cluster.allocate_producer_ids(CLUSTER_PRODUCER_ID_BLOCK).await?;
            let mut block = self.cluster_producer_ids.lock().map_err(|_| lock_poisoned())?;
            // Another request may have refilled meanwhile: the spare block is never reused.
            if block.0 >= block.1 {
                *block = (first, first + CLUSTER_PRODUCER_ID_BLOCK);
            }
        }
    }

    /// fsyncs every partition: the last step of a clean shutdown.
    pub fn flush_all(&self) {
        for topic in self.topics() {
            topic.flush();
        }
    }

    fn topic_dir(&self, name: &str) -> PathBuf {
        self.config.data_dir.join("topics").join(name)
    }
}

/// Where deleted topics go before their files are removed (emptied on start).
const DELETED_DIR: &str = "deleted";
/// Where a topic is built before it is renamed into `topics/` (emptied on start), so a
/// creation that fails half way leaves nothing a start could trip on.
const STAGING_DIR: &str = "staging";

/// Every topic in `topics/`. A topic that cannot be opened is reported and left out, so one
/// damaged topic does not keep the broker (and every other topic) down.
fn load_topics(
    topics_dir: &Path,
    config: &BrokerConfig,
    health: &Arc<StorageHealth>,
) -> BrokerResult<HashMap<String, Arc<Topic>>> {
    let mut topics = HashMap::new();
    for entry in fs::read_dir(topics_dir).map_err(|e| storage(topics_dir, e))? {
        let entry = entry.map_err(|e| storage(topics_dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if validate_topic_name(&name).is_err() || !entry.path().join("topic.json").exists() {
            tracing::warn!(path = %entry.path().display(), "ignoring unexpected entry in topics directory");
            continue;
        }
        match Topic::open(entry.path(), &name, &config.log_defaults, Arc::clone(health)) {
            Ok(topic) => {
                tracing::info!(topic = %name, partitions = topic.partition_count(), "topic loaded");
                topics.insert(name, Arc::new(topic));
            }
            Err(e) => tracing::error!(
                topic = %name, path = %entry.path().display(), error = %e,
                "topic cannot be opened; it is not served until repaired, the other topics are"
            ),
        }
    }
    Ok(topics)
}

/// The operator's `accept_data_loss_partitions`: `topic-N` names one partition, `topic`
/// every partition of the topic.
fn accept_data_loss(topics: &HashMap<String, Arc<Topic>>, accepted: &[String]) {
    for entry in accepted {
        let (topic, partitions) = match topics.get(entry.as_str()) {
            Some(topic) => (topic, topic.partitions()),
            None => {
                let found = entry.rsplit_once('-').and_then(|(name, index)| {
                    let topic = topics.get(name)?;
                    Some((topic, vec![topic.partition(index.parse().ok()?)?]))
                });
                let Some(found) = found else {
                    tracing::warn!(partition = %entry, "no such topic or partition to accept data loss for");
                    continue;
                };
                found
            }
        };
        for partition in partitions {
            if partition.log().damage().is_none() {
                continue;
            }
            if let Err(e) = partition.log().accept_data_loss() {
                tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "could not accept data loss");
            }
        }
    }
}

/// Empties `deleted/` or `staging/` (removing a stray file of that name too).
fn remove_leftovers(dir: &Path) -> BrokerResult<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(dir).map_err(|e| storage(dir, e)),
        Ok(_) => fs::remove_file(dir).map_err(|e| storage(dir, e)),
        Err(_) => Ok(()),
    }
}

/// The cluster id clients see in Metadata: random on first start, then stable. Only a
/// missing file makes a new one: any other failure (unreadable, not text, empty) fails
/// start-up, since a silently new id would make the node a different cluster.
fn load_or_create_cluster_id(data_dir: &Path) -> BrokerResult<String> {
    let path = data_dir.join("cluster_id");
    match fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        Ok(_) => Err(BrokerError::Storage(format!(
            "{} is empty; restore it, or delete it to give this node a new cluster id",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            sluice_log::atomic_file::replace(&path, id.as_bytes()).map_err(|e| storage(&path, e))?;
            Ok(id)
        }
        Err(e) => Err(BrokerError::Storage(format!(
            "cannot read the cluster id from {}: {e}; restore it, or delete it to give this node a new cluster id",
            path.display()
        ))),
    }
}

fn storage(path: &Path, e: std::io::Error) -> BrokerError {
    BrokerError::Storage(format!("{}: {e}", path.display()))
}

fn lock_poisoned() -> BrokerError {
    BrokerError::Storage("broker lock poisoned".into())
}
