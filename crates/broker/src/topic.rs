//! A topic: its partitions and config, persisted as `topics/<name>/topic.json` beside
//! one directory per partition (`topics/<name>/<index>/`).

use crate::error::{BrokerError, BrokerResult};
use crate::health::StorageHealth;
use crate::partition::Partition;
use crate::topic_config::TopicConfig;
use sluice_log::LogConfig;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

const META_FILE: &str = "topic.json";

/// What `topic.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct TopicMeta {
    /// Kafka topic id (UUID), stable for the topic's life.
    id: String,
    partitions: u32,
    #[serde(default)]
    config: TopicConfig,
    /// In a cluster, the metadata group's id of the topic this directory holds (never
    /// reused), so a node tells a re-created topic's data from its predecessor's. None on a
    /// single node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incarnation: Option<u64>,
}

pub struct Topic {
    pub name: Arc<str>,
    pub id: uuid::Uuid,
    /// The cluster's id of this topic (see `TopicMeta::incarnation`), set once.
    incarnation: OnceLock<u64>,
    dir: PathBuf,
    partitions: RwLock<Vec<Arc<Partition>>>,
    config: RwLock<TopicConfig>,
    /// The broker's storage health, handed to every partition (also ones added later).
    health: Arc<StorageHealth>,
}

/// A cluster topic's identity on every node: the metadata group's id of it (never reused)
/// and the Kafka topic id derived from that id and the cluster's, so every node names the
/// topic alike (Metadata, DeleteTopics by id) and a re-created topic gets another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incarnation {
    pub id: u64,
    pub kafka_id: uuid::Uuid,
}

impl Incarnation {
    pub fn new(cluster_id: &str, id: u64) -> Incarnation {
        // FNV-1a of the cluster id, then the incarnation (+1: never Kafka's reserved ids).
        let cluster = cluster_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
        Incarnation { id, kafka_id: uuid::Uuid::from_u64_pair(cluster, id.wrapping_add(1)) }
    }
}

impl Topic {
    /// Creates the topic all or nothing: it is built in `staging` (on the same file system),
    /// renamed to `dir` and opened from there. On failure the staging directory is removed
    /// and nothing is left in `dir`. `incarnation`: the cluster topic's identity, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn create_staged(
        staging: &Path,
        dir: PathBuf,
        name: &str,
        partitions: u32,
        config: TopicConfig,
        incarnation: Option<Incarnation>,
        defaults: &LogConfig,
        health: Arc<StorageHealth>,
    ) -> BrokerResult<Topic> {
        let staged = staging.to_path_buf();
        let built = Topic::create(staged, name, partitions, config, incarnation, defaults, Arc::clone(&health))
            .map(drop)
            .and_then(|()| move_into_place(staging, &dir));
        if let Err(e) = built {
            if let Err(cleanup) = fs::remove_dir_all(staging) {
                tracing::warn!(path = %staging.display(), error = %cleanup, "could not remove a failed topic creation");
            }
            return Err(e);
        }
        Topic::open(dir.clone(), name, defaults, health).inspect_err(|_| {
            // Not registered yet, so nothing refers to it: a start must not find it either.
            if let Err(cleanup) = fs::remove_dir_all(&dir) {
                tracing::warn!(path = %dir.display(), error = %cleanup, "could not remove a failed topic creation");
            }
        })
    }

    /// Creates the topic's directory, metadata and partitions (a cluster topic's with its
    /// identity, a single node's with a random Kafka id).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        dir: PathBuf,
        name: &str,
        partitions: u32,
        config: TopicConfig,
        cluster: Option<Incarnation>,
        defaults: &LogConfig,
        health: Arc<StorageHealth>,
    ) -> BrokerResult<Topic> {
        let log_config = config.log_config(defaults)?;
        sluice_log::durable_dir::create_dir_all(&dir).map_err(|e| storage(&dir, e))?;
        let id = cluster.map_or_else(uuid::Uuid::new_v4, |c| c.kafka_id);
        let incarnation = cluster.map(|c| c.id);
        let meta = TopicMeta { id: id.to_string(), partitions, config: config.clone(), incarnation };
        write_meta(&dir, &meta)?;
        let name: Arc<str> = Arc::from(name);
        let parts = open_partitions(&dir, &name, 0..partitions, &log_config, &health)?;
        let config = RwLock::new(config);
        let incarnation = incarnation.map(OnceLock::from).unwrap_or_default();
        Ok(Topic { name, id, incarnation, dir, partitions: RwLock::new(parts), config, health })
    }

    /// Opens a topic from its directory, recovering every partition.
    pub fn open(dir: PathBuf, name: &str, defaults: &LogConfig, health: Arc<StorageHealth>) -> BrokerResult<Topic> {
        let path = dir.join(META_FILE);
        let text = fs::read_to_string(&path).map_err(|e| storage(&path, e))?;
        let meta: TopicMeta =
            serde_json::from_str(&text).map_err(|e| BrokerError::Storage(format!("{}: {e}", path.display())))?;
        let id =
            uuid::Uuid::parse_str(&meta.id).map_err(|e| BrokerError::Storage(format!("{}: {e}", path.display())))?;
        let log_config = meta.config.log_config(defaults)?;
        let name: Arc<str> = Arc::from(name);
        let parts = open_partitions(&dir, &name, 0..meta.partitions, &log_config, &health)?;
        let incarnation = meta.incarnation.map(OnceLock::from).unwrap_or_default();
        let config = RwLock::new(meta.config);
        Ok(Topic { name, id, incarnation, dir, partitions: RwLock::new(parts), config, health })
    }

    /// Records the cluster's id of the topic in `topic.json` (atomically): for a topic made
    /// before incarnations were recorded, once, when the reconciler first finds it in the
    /// metadata (its Kafka id stays). A cluster topic is created with it.
    pub fn record_incarnation(&self, id: u64) -> BrokerResult<()> {
        if self.incarnation.get().is_some_and(|known| *known != id) {
            return Err(BrokerError::Storage(format!("topic {} already belongs to another incarnation", self.name)));
        }
        let _ = self.incarnation.set(id);
        write_meta(&self.dir, &self.meta(self.partition_count(), self.config()))
    }

    /// The cluster's id of the topic this directory holds; None on a single node, or for a
    /// topic made before incarnations were recorded.
    pub fn incarnation(&self) -> Option<u64> {
        self.incarnation.get().copied()
    }

    fn meta(&self, partitions: u32, config: TopicConfig) -> TopicMeta {
        TopicMeta { id: self.id.to_string(), partitions, config, incarnation: self.incarnation() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().ok()?;
        usize::try_from(index).ok().and_then(|i| parts.get(i).cloned())
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.read().map(|p| p.len() as u32).unwrap_or(0)
    }

    pub fn config(&self) -> TopicConfig {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Grows the topic to `total` partitions (Kafka never shrinks).
    pub fn add_partitions(&self, total: u32, defaults: &LogConfig) -> BrokerResult<()> {
        let config = self.config();
        let log_config = config.log_config(defaults)?;
        let mut parts = self.partitions.write().map_err(|_| lock_poisoned())?;
        let current = parts.len() as u32;
        if total <= current {
            return Err(BrokerError::InvalidPartitions(format!("topic has {current} partitions; can only grow")));
        }
        let mut added = Vec::new();
        let opened = (current..total).try_for_each(|i| {
            added.push(open_partition(&self.dir, &self.name, i, &log_config, &self.health)?);
            Ok(())
        });
        let result = opened.and_then(|()| write_meta(&self.dir, &self.meta(total, config)));
        if let Err(e) = result {
            // Nothing refers to the new partitions yet: remove them, so a retry starts clean.
            drop(added);
            for i in current..total {
                let _ = fs::remove_dir_all(self.dir.join(i.to_string()));
            }
            return Err(e);
        }
        // A cluster's partition appends only through its Raft group, from its first moment.
        if parts.first().is_some_and(|p| p.is_clustered()) {
            added.iter().for_each(|p| p.mark_clustered());
        }
        parts.extend(added);
        Ok(())
    }

    /// Replaces partition `index` with an empty one: a cluster node that is no longer one of
    /// its replicas drops its copy (log and Raft state), so a later move back starts clean.
    /// The old directory is renamed aside first, so a crash leaves either the whole old copy
    /// or none (a leftover `.N.dropped` is removed by the next drop). The new partition is
    /// clustered: it takes no append until a Raft group is attached.
    pub fn reset_partition(&self, index: i32, defaults: &LogConfig) -> BrokerResult<Arc<Partition>> {
        let log_config = self.config().log_config(defaults)?;
        let slot = usize::try_from(index).map_err(|_| BrokerError::UnknownTopicOrPartition)?;
        let mut parts = self.partitions.write().map_err(|_| lock_poisoned())?;
        if slot >= parts.len() {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        let live = self.dir.join(index.to_string());
        let aside = self.dir.join(format!(".{index}.dropped"));
        if aside.exists() {
            fs::remove_dir_all(&aside).map_err(|e| storage(&aside, e))?;
        }
        fs::rename(&live, &aside).map_err(|e| storage(&live, e))?;
        sluice_log::durable_dir::sync_parent(&live).map_err(|e| storage(&live, e))?;
        fs::remove_dir_all(&aside).map_err(|e| storage(&aside, e))?;
        let fresh = open_partition(&self.dir, &self.name, index as u32, &log_config, &self.health)?;
        fresh.mark_clustered();
        parts[slot] = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Replaces the topic's overrides and applies them to every partition's log.
    pub fn set_config(&self, config: TopicConfig, defaults: &LogConfig) -> BrokerResult<()> {
        let log_config = config.log_config(defaults)?;
        let mut current = self.config.write().map_err(|_| lock_poisoned())?;
        write_meta(&self.dir, &self.meta(self.partition_count(), config.clone()))?;
        for partition in self.partitions() {
            partition.log().set_config(log_config.clone());
        }
        *current = config;
        Ok(())
    }

    /// fsyncs every partition (clean shutdown), `PARALLEL_OPENS` at a time: the fsyncs of
    /// a 10,000-partition topic one by one would outlast a shutdown's grace period.
    pub fn flush(&self) {
        let partitions = self.partitions();
        let workers = (PARALLEL_OPENS as usize).min(partitions.len()).max(1);
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let partitions = &partitions;
                scope.spawn(move || {
                    for partition in partitions.iter().skip(worker).step_by(workers) {
                        if let Err(e) = partition.log().flush() {
                            tracing::error!(topic = %self.name, partition = partition.index, error = %e, "flush failed");
                        }
                    }
                });
            }
        });
    }
}

/// Partitions opened (or created) at once: each open is mostly waiting for a directory
/// fsync or a scan, and the file system commits concurrent fsyncs together, so a 10,000
/// partition topic opens several times faster than one by one. Bounded, as every thread
/// holds a few descriptors while it opens.
const PARALLEL_OPENS: u32 = 8;

/// A partition with its index, as a worker of `open_partitions` returns it.
type Indexed = (u32, Arc<Partition>);

/// Opens the partitions `indexes` of the topic in `dir`, in index order, `PARALLEL_OPENS`
/// at a time; the first error wins (the partitions opened are dropped).
fn open_partitions(
    dir: &Path,
    topic: &Arc<str>,
    indexes: std::ops::Range<u32>,
    config: &LogConfig,
    health: &Arc<StorageHealth>,
) -> BrokerResult<Vec<Arc<Partition>>> {
    let workers = PARALLEL_OPENS.min(indexes.len() as u32).max(1);
    let start = indexes.start;
    let opened: Vec<BrokerResult<Vec<Indexed>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let indexes = indexes.clone();
                scope.spawn(move || {
                    indexes
                        .filter(|i| (i - start) % workers == worker)
                        .map(|i| Ok((i, open_partition(dir, topic, i, config, health)?)))
                        .collect::<BrokerResult<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(BrokerError::Storage("partition open panicked".into()))))
            .collect()
    });
    let mut all = Vec::with_capacity(indexes.len());
    for part in opened {
        all.extend(part?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, p)| p).collect())
}

fn open_partition(
    dir: &Path,
    topic: &Arc<str>,
    index: u32,
    config: &LogConfig,
    health: &Arc<StorageHealth>,
) -> BrokerResult<Arc<Partition>> {
    let dir = dir.join(index.to_string());
    let partition =
        Partition::open_reporting(&dir, Arc::clone(topic), index as i32, config.clone(), Arc::clone(health))?;
    Ok(Arc::new(partition))
}

/// Renames a built topic directory to its place and makes the rename durable. Fails if
/// `dir` exists (a directory there, even a damaged one, is never replaced).
fn move_into_place(staging: &Path, dir: &Path) -> BrokerResult<()> {
    // The staging directory's entries (metadata, partitions), then its new name in `topics/`.
    fs::File::open(staging).and_then(|d| d.sync_all()).map_err(|e| storage(staging, e))?;
    if dir.exists() {
        return Err(BrokerError::Storage(format!("{} exists already", dir.display())));
    }
    fs::rename(staging, dir).map_err(|e| storage(dir, e))?;
    sluice_log::durable_dir::sync_parent(dir).map_err(|e| storage(dir, e))
}

/// Writes `topic.json` atomically: temp file, fsync, rename, fsync directory.
fn write_meta(dir: &Path, meta: &TopicMeta) -> BrokerResult<()> {
    let path = dir.join(META_FILE);
    let text = serde_json::to_string_pretty(meta).map_err(|e| BrokerError::Storage(e.to_string()))?;
    sluice_log::atomic_file::replace(&path, text.as_bytes()).map_err(|e| storage(&path, e))
}

fn storage(path: &Path, e: std::io::Error) -> BrokerError {
    BrokerError::Storage(format!("{}: {e}", path.display()))
}

fn lock_poisoned() -> BrokerError {
    BrokerError::Storage("topic lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster topic is created with its identity (the Kafka id the same on every node,
    /// another for each incarnation), which survives a reopen; an older copy adopts one.
    #[test]
    fn a_cluster_topic_keeps_its_incarnation() {
        let root = tempfile::tempdir().unwrap();
        let identity = Incarnation::new("cluster-a", 7);
        assert_eq!(identity, Incarnation::new("cluster-a", 7));
        assert_ne!(identity.kafka_id, Incarnation::new("cluster-a", 8).kafka_id);
        assert_ne!(identity.kafka_id, Incarnation::new("cluster-b", 7).kafka_id);
        let (health, config, defaults) =
            (Arc::new(StorageHealth::default()), TopicConfig::default(), LogConfig::default());
        let dir = root.path().join("t");
        let staging = root.path().join("staging");
        let topic =
            Topic::create_staged(&staging, dir.clone(), "t", 2, config, Some(identity), &defaults, health.clone())
                .unwrap();
        assert_eq!((topic.incarnation(), topic.id), (Some(7), identity.kafka_id));
        topic.add_partitions(3, &defaults).unwrap();
        drop(topic);
        let reopened = Topic::open(dir, "t", &defaults, health.clone()).unwrap();
        assert_eq!((reopened.incarnation(), reopened.id, reopened.partition_count()), (Some(7), identity.kafka_id, 3));
        assert!(reopened.record_incarnation(8).is_err(), "an incarnation is set once");
        let older =
            Topic::create(root.path().join("u"), "u", 1, TopicConfig::default(), None, &defaults, health.clone())
                .unwrap();
        assert_eq!(older.incarnation(), None);
        older.record_incarnation(3).unwrap();
        let reopened = Topic::open(root.path().join("u"), "u", &defaults, health).unwrap();
        assert_eq!((reopened.incarnation(), reopened.id), (Some(3), older.id));
    }

    /// A creation that fails half way (partition 5 cannot be made) leaves neither the topic
    /// directory nor the staging directory, and the same creation then succeeds.
    #[test]
    fn failed_creation_half_way_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let staging = root.path().join("staging").join("t.1");
        let dir = root.path().join("topics").join("t");
        fs::create_dir_all(&staging).unwrap();
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        fs::write(staging.join("5"), b"not a directory").unwrap();
        let create = |staging: &Path| {
            let health = Arc::new(StorageHealth::default());
            let config = TopicConfig::default();
            Topic::create_staged(staging, dir.clone(), "t", 10, config, None, &LogConfig::default(), health)
        };
        assert!(create(&staging).is_err());
        assert!(!staging.exists(), "staging removed");
        assert!(!dir.exists(), "no topic directory");
        let topic = create(&root.path().join("staging").join("t.2")).unwrap();
        assert_eq!(topic.partition_count(), 10);
        assert!(dir.join("9").exists());
    }

    /// A dropped copy is gone from disk and from the topic, the other partitions untouched,
    /// the new one empty and refusing appends (clustered), and the topic reopens as it is.
    #[test]
    fn a_reset_partition_is_empty_and_the_others_are_kept() {
        use kafka_protocol::records::Compression;
        use sluice_records::convert::{encode_batch, new_record};
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t");
        let health = Arc::new(StorageHealth::default());
        let topic =
            Topic::create(dir.clone(), "t", 2, TopicConfig::default(), None, &LogConfig::default(), health).unwrap();
        let record = || new_record(0, 1, None, Some(bytes::Bytes::from_static(b"v")), Vec::new());
        for index in 0..2 {
            let mut batch = encode_batch(&[record()], Compression::None).unwrap();
            topic.partition(index).unwrap().append_written(&mut batch).unwrap();
        }
        fs::create_dir_all(dir.join("0").join("raft")).unwrap();
        let fresh = topic.reset_partition(0, &LogConfig::default()).unwrap();
        assert_eq!(fresh.written_end_offset(), 0);
        assert!(Arc::ptr_eq(&fresh, &topic.partition(0).unwrap()));
        assert!(!dir.join("0").join("raft").exists() && !dir.join(".0.dropped").exists());
        let mut batch = encode_batch(&[record()], Compression::None).unwrap();
        assert!(fresh.submit(std::mem::take(&mut batch)).is_err(), "a dropped copy takes no append");
        assert_eq!(topic.partition(1).unwrap().written_end_offset(), 1);
        assert!(topic.reset_partition(2, &LogConfig::default()).is_err());
        drop(topic);
        let health = Arc::new(StorageHealth::default());
        let reopened = Topic::open(dir, "t", &LogConfig::default(), health).unwrap();
        let ends: Vec<i64> = reopened.partitions().iter().map(|p| p.written_end_offset()).collect();
        assert_eq!(ends, vec![0, 1]);
    }
}
