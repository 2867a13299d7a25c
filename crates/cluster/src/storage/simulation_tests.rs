//! Simulation of one partition group on three in-process nodes, each on the real group
//! storage (`open_group_storage` over a real partition log in its own directory), joined by
//! a seeded lossy network (`net`), under tokio's paused clock. Per seed a driver injects
//! message loss and delay, partitions (the leader's included) healed later, crashes
//! (`Raft::shutdown`, then the storage reopened from its directory: the recovery path), and
//! snapshots, Raft log purges and segment retention, while a client proposes record
//! batches to whoever leads. After healing everything it proves: every acknowledged batch
//! is in every node's log at its acknowledged offset (unless retention or a snapshot reset
//! moved that log's start past it); the logs are identical up to the high watermark, which
//! is the log end everywhere; offsets are contiguous; the Raft entries read back through the
//! store map to exactly those offsets, the same on every node; no Raft stopped on an error.
//!
//! The faults are drawn from the seed, but a run is not bit-for-bit repeatable: openraft
//! draws its election timeouts from its own unseeded RNG, and blocking-pool file I/O
//! interleaves with the runtime as the machine lets it, so a seed reruns the same kind of
//! fault schedule and a failure shows up again only with some probability (rerun it a few
//! times). `SIM_SEED=<n>` runs one seed; `SIM_SEEDS=<n>` runs seeds 1..=n.

mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{BasicNode, Config, EntryPayload, LogId, ServerState};
use sluice_log::{BatchHeader, LogConfig, PartitionLog, BATCH_HEADER_LEN};
use tokio::sync::watch;

use super::tests::batch;

use self::net::{NetStats, Rng, SimFactory, SimNet};
use super::log_store::offsets_of;
use super::{open_group_storage, LogStore, NoObserver};
use crate::types::{Batches, NodeId, Raft};

const NODES: [NodeId; 3] = [1, 2, 3];
/// Seeds run by default: enough fault mixes, well inside CI time in a debug build.
const DEFAULT_SEEDS: u64 = 20;
/// Driver steps per seed, each `STEP` of simulated time.
const STEPS: u32 = 60;
const STEP: Duration = Duration::from_millis(200);
/// Bound on waiting for the healed group to converge (simulated time).
const CONVERGE_MAX: Duration = Duration::from_secs(60);
/// How long the client waits for one proposal (simulated time).
const PROPOSE_MAX: Duration = Duration::from_secs(3);

fn raft_config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        // As in production: snapshots and purges only when asked (`log_release`).
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX,
        // Small, so a lagging follower needs several AppendEntries and purges bite.
        max_payload_entries: 16,
        ..Config::default()
    };
    Arc::new(config.validate().unwrap())
}

/// Small segments, so rolling, retention and snapshot resets cross segment boundaries.
fn log_config() -> LogConfig {
    LogConfig { segment_bytes_max: 4096, retention_bytes_max: Some(16 * 1024), ..LogConfig::default() }
}

/// One node: its directory, and while it runs its Raft and store.
struct SimNode {
    id: NodeId,
    dir: PathBuf,
    running: Option<Running>,
    /// Times this node was crashed and reopened.
    restarts: u32,
}

struct Running {
    raft: Raft,
    store: LogStore,
    high_watermark: watch::Receiver<i64>,
}

impl SimNode {
    async fn start(&mut self, net: &Arc<SimNet>) {
        let log = PartitionLog::open(self.dir.join("log"), log_config()).unwrap();
        let raft_dir = self.dir.join("raft");
        std::fs::create_dir_all(&raft_dir).unwrap();
        let (store, machine) = open_group_storage(&raft_dir, Arc::new(log), Arc::new(NoObserver))
            .unwrap_or_else(|e| panic!("node {} storage does not reopen: {e}", self.id));
        let high_watermark = machine.committed_watch();
        let factory = SimFactory { net: Arc::clone(net), from: self.id };
        let raft = Raft::new(self.id, raft_config(), factory, store.clone(), machine).await.unwrap();
        net.set_raft(self.id, Some(raft.clone()));
        self.running = Some(Running { raft, store, high_watermark });
    }

    /// Stops the node's Raft as a crash would (its storage is then reopened from disk by
    /// `start`). A Raft that had stopped on an error or panicked fails the run.
    async fn crash(&mut self, net: &SimNet) {
        let Some(running) = self.running.take() else { return };
        net.set_raft(self.id, None);
        let state = running.raft.metrics().borrow().running_state.clone();
        assert!(state.is_ok(), "node {} Raft had stopped: {state:?}", self.id);
        running.raft.shutdown().await.unwrap_or_else(|e| panic!("node {} Raft panicked: {e}", self.id));
    }

    /// Leaves what a crash between an append's two writes leaves: a batch in the segments
    /// with no side record (never reported durable, so never acknowledged). The reopen must
    /// cut it and the next entry take its offsets.
    fn leave_orphan_batch(&self) {
        let log = PartitionLog::open(self.dir.join("log"), log_config()).unwrap();
        let epoch = log.recent_batch_headers(1).unwrap().last().map_or(0, |h| h.partition_leader_epoch);
        log.append_with_epoch(&mut batch(2, b"orphan: written, never acknowledged"), epoch).unwrap();
        log.flush().unwrap();
    }

    fn raft(&self) -> Option<&Raft> {
        self.running.as_ref().map(|r| &r.raft)
    }
}

/// An acknowledged write: the offsets the commit returned and the body proposed.
#[derive(Debug, Clone)]
struct Acked {
    first: i64,
    last: i64,
    body: Vec<u8>,
}

/// What one seed did, printed per seed.
#[derive(Debug, Default)]
struct Summary {
    crashes: u32,
    leader_crashes: u32,
    /// Crashes that left a batch in the segments without its side record.
    orphans: u32,
    partitions: u32,
    leader_partitions: u32,
    snapshots: u32,
    purges: u32,
    retentions: u32,
    proposed: u64,
    acked: usize,
    leader_changes: u32,
    final_term: u64,
    checked_copies: usize,
    below_log_start: usize,
    /// AppendEntries dropped for not following their `prev_log_id` (known bug).
    gapped_appends: usize,
    net: NetStats,
}

/// The node that leads now by its own metrics, among the running ones.
fn leader_of(net: &SimNet) -> Option<(NodeId, Raft)> {
    net.rafts().into_iter().find(|(id, raft)| {
        let m = raft.metrics().borrow().clone();
        m.state == ServerState::Leader && m.current_leader == Some(*id)
    })
}

/// The client: proposes batches one at a time to whoever leads, records what commits.
async fn client(net: Arc<SimNet>, acked: Arc<Mutex<Vec<Acked>>>, proposed: Arc<Mutex<u64>>, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x00C1_1E47);
    loop {
        let Some((_, raft)) = leader_of(&net) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let n = {
            let mut p = proposed.lock().unwrap();
            *p += 1;
            *p
        };
        let records = 1 + rng.below(4) as i32;
        let body = format!("seed {seed} write {n} {}", "x".repeat(rng.below(200) as usize)).into_bytes();
        let mut bytes = batch(records, &body);
        if rng.percent(20) {
            // Two batches in one entry, as a produce request with several batches.
            bytes.extend(batch(1, format!("seed {seed} write {n} second").as_bytes()));
        }
        let entry = Batches(Bytes::from(bytes));
        if let Ok(Ok(written)) = tokio::time::timeout(PROPOSE_MAX, raft.client_write(entry)).await {
            if let Some((first, _)) = written.data.offsets {
                let last = first + i64::from(records) - 1;
                acked.lock().unwrap().push(Acked { first, last, body });
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
}

/// A snapshot on `raft`, then its log purged up to it, as `log_release` does, each waited
/// for with a bound (on a follower only if `faults.purge_on_followers`); then, if `retain`, the segments wholly below what the Raft log still
/// needs deleted by retention. Failures (no leader, timeouts) are fine: the next one retries.
async fn snapshot_purge_retain(raft: &Raft, store: &LogStore, faults: &Faults, retain: bool, summary: &mut Summary) {
    let before = raft.metrics().borrow().snapshot;
    if raft.trigger().snapshot().await.is_err() {
        return;
    }
    let built = raft.wait(Some(Duration::from_secs(2))).metrics(|m| m.snapshot != before, "snapshot").await;
    let Ok(metrics) = built else { return };
    summary.snapshots += 1;
    let Some(snapshot) = metrics.snapshot else { return };
    let leads = raft.metrics().borrow().state == ServerState::Leader;
    if !leads && !faults.purge_on_followers {
        return;
    }
    if raft.trigger().purge_log(snapshot.index).await.is_ok() {
        summary.purges += 1;
    }
    let purged = raft
        .wait(Some(Duration::from_secs(2)))
        .metrics(|m| m.purged.map(|p| p.index) >= Some(snapshot.index), "purged")
        .await;
    if purged.is_ok() && retain {
        let (log, below) = (Arc::clone(store.partition_log()), store.first_needed_offset());
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let report = tokio::task::spawn_blocking(move || log.enforce_retention_below(now_ms as i64, None, below));
        if let Ok(Ok(report)) = report.await {
            if report.segments_deleted > 0 {
                summary.retentions += 1;
            }
        }
    }
}

/// Which faults a run injects beyond the always-on ones.
struct Faults {
    /// Purge the Raft log of followers too, as `log_release` does on every replica.
    purge_on_followers: bool,
    /// Fail the seed on an AppendEntries whose entries do not follow its `prev_log_id` (the
    /// network drops such requests either way). Before the log reader refused reads from a
    /// purged index, a stepped-down leader's stale replication task sent such requests after
    /// a follower-side purge or a snapshot install (seeds 22, 26, 27, 31, 337 showed it).
    fail_on_gapped_appends: bool,
}

/// Runs one seed: faults while the client writes, then heal, converge, check.
async fn run_seed(seed: u64, faults: &Faults) -> Summary {
    let root = temp_root();
    let net = SimNet::new(seed);
    let mut nodes: Vec<SimNode> = NODES
        .iter()
        .map(|&id| SimNode { id, dir: root.path().join(format!("node-{id}")), running: None, restarts: 0 })
        .collect();
    for node in &mut nodes {
        node.start(&net).await;
    }
    let members: BTreeMap<NodeId, BasicNode> = NODES.iter().map(|&id| (id, BasicNode::default())).collect();
    nodes[0].raft().unwrap().initialize(members).await.unwrap();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let proposed = Arc::new(Mutex::new(0u64));
    let client = tokio::spawn(client(Arc::clone(&net), Arc::clone(&acked), Arc::clone(&proposed), seed));

    let mut summary = Summary::default();
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut crashed: Option<(usize, u32)> = None; // node index, step it comes back at
    let mut heal_at: Option<u32> = None;
    let mut last_leader = None;
    for step in 0..STEPS {
        tokio::time::sleep(STEP).await;
        let leader = leader_of(&net).map(|(id, _)| id);
        if leader.is_some() && leader != last_leader {
            summary.leader_changes += 1;
            last_leader = leader;
        }
        if crashed.is_some_and(|(_, at)| at <= step) {
            let (index, _) = crashed.take().unwrap();
            nodes[index].start(&net).await;
            nodes[index].restarts += 1;
        }
        if heal_at.is_some_and(|at| at <= step) {
            heal_at = None;
            net.heal();
        }
        match rng.below(10) {
            0 | 1 => {
                let (loss, delay) = (rng.below(30), rng.below(60));
                net.set_weather(loss, delay);
            }
            2 if crashed.is_none() => {
                // Half the crashes hit the leader.
                let index = match leader {
                    Some(id) if rng.percent(50) => NODES.iter().position(|&n| n == id).unwrap(),
                    _ => rng.below(3) as usize,
                };
                if leader == Some(NODES[index]) {
                    summary.leader_crashes += 1;
                }
                nodes[index].crash(&net).await;
                summary.crashes += 1;
                if rng.percent(30) {
                    nodes[index].leave_orphan_batch();
                    summary.orphans += 1;
                }
                crashed = Some((index, step + 1 + rng.below(10) as u32));
            }
            3 if heal_at.is_none() => {
                let id = match leader {
                    Some(id) if rng.percent(50) => id,
                    _ => NODES[rng.below(3) as usize],
                };
                if leader == Some(id) {
                    summary.leader_partitions += 1;
                }
                net.isolate(id);
                summary.partitions += 1;
                heal_at = Some(step + 1 + rng.below(10) as u32);
            }
            4 => {
                let index = rng.below(3) as usize;
                if let Some(running) = &nodes[index].running {
                    let (raft, store) = (running.raft.clone(), running.store.clone());
                    let retain = rng.percent(30);
                    snapshot_purge_retain(&raft, &store, faults, retain, &mut summary).await;
                }
            }
            _ => {}
        }
    }

    // Heal everything, bring every node back, and let one last write commit everywhere.
    net.heal();
    for node in &mut nodes {
        if node.running.is_none() {
            node.start(&net).await;
            node.restarts += 1;
        }
    }
    let converged = tokio::time::timeout(CONVERGE_MAX, converge(&net, &nodes, &acked)).await;
    client.abort();
    let _ = client.await;
    let violations = net.violations();
    summary.gapped_appends = violations.len();
    for violation in &violations {
        eprintln!("sim seed {seed}: an AppendEntries broke Raft's log matching: {violation}");
    }
    if faults.fail_on_gapped_appends {
        assert!(violations.is_empty(), "seed {seed}: Raft rules broken on the wire: {violations:#?}");
    }
    assert!(converged.is_ok(), "seed {seed}: the healed group did not converge (SIM_SEED={seed} reruns it)");
    summary.proposed = *proposed.lock().unwrap();
    summary.net = net.stats();
    summary.final_term =
        nodes.iter().filter_map(|n| n.raft()).map(|r| r.metrics().borrow().current_term).max().unwrap();

    // Stop every Raft, then read what the storage holds.
    let stores: Vec<(NodeId, LogStore, i64)> = nodes
        .iter()
        .map(|n| {
            let running = n.running.as_ref().unwrap();
            (n.id, running.store.clone(), *running.high_watermark.borrow())
        })
        .collect();
    for node in &mut nodes {
        node.crash(&net).await;
    }
    let acked = acked.lock().unwrap().clone();
    summary.acked = acked.len();
    check(seed, &stores, &acked, &mut summary).await;
    drop(stores);
    summary
}

/// Waits until a write made after healing is applied on every node, each node's high
/// watermark at its log end.
async fn converge(net: &SimNet, nodes: &[SimNode], acked: &Mutex<Vec<Acked>>) {
    let before = acked.lock().unwrap().len();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().unwrap().len() <= before {
            continue;
        }
        let Some((_, leader)) = leader_of(net) else { continue };
        let Some(last) = leader.metrics().borrow().last_log_index else { continue };
        let done = nodes.iter().all(|n| {
            let running = n.running.as_ref().unwrap();
            let applied = running.raft.metrics().borrow().last_applied.map(|l| l.index);
            applied >= Some(last) && *running.high_watermark.borrow() == running.store.partition_log().log_end_offset()
        });
        if done {
            return;
        }
    }
}

/// One batch as read from a node's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredBatch {
    last: i64,
    epoch: i32,
    body: Vec<u8>,
}

/// Every batch in `log`, by base offset; asserts they are contiguous from its start.
fn read_batches(seed: u64, id: NodeId, log: &PartitionLog) -> BTreeMap<i64, StoredBatch> {
    let mut batches = BTreeMap::new();
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    while next < end {
        let read = log.read(next, 64 * 1024).unwrap_or_else(|e| panic!("seed {seed} node {id}: read at {next}: {e}"));
        let mut at = 0;
        let before = next;
        while let Ok(header) = BatchHeader::parse(&read.bytes[at..]) {
            let len = header.total_len();
            if at + len > read.bytes.len() {
                break;
            }
            assert_eq!(header.base_offset, next, "seed {seed} node {id}: offsets not contiguous");
            let body = read.bytes[at + BATCH_HEADER_LEN..at + len].to_vec();
            let stored = StoredBatch { last: header.last_offset(), epoch: header.partition_leader_epoch, body };
            batches.insert(header.base_offset, stored);
            next = header.last_offset() + 1;
            at += len;
        }
        assert!(next > before, "seed {seed} node {id}: no batch readable at offset {next} below the log end {end}");
    }
    batches
}

/// The Raft entries a store holds, each with the offsets of its batches (None for an entry
/// without records); asserts indexes are consecutive, every batch carries its entry's term
/// as its epoch, and the batch entries cover the log contiguously from the first offset the
/// store still needs to the log end, and `epoch_end_offset` says where each term ends.
async fn read_entries(seed: u64, id: NodeId, store: &LogStore) -> BTreeMap<u64, (LogId<NodeId>, Option<(i64, i64)>)> {
    let mut reader = store.clone();
    let state = reader.get_log_state().await.unwrap();
    let from = state.last_purged_log_id.map_or(0, |l| l.index + 1);
    let entries = reader.try_get_log_entries(from..).await.unwrap_or_else(|e| panic!("seed {seed} node {id}: {e}"));
    assert_eq!(entries.last().map(|e| e.log_id), state.last_log_id.filter(|l| l.index >= from));
    let mut out = BTreeMap::new();
    let mut next_offset = store.first_needed_offset();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.log_id.index, from + i as u64, "seed {seed} node {id}: Raft indexes not consecutive");
        let offsets = match &entry.payload {
            EntryPayload::Normal(Batches(bytes)) if !bytes.is_empty() => {
                let (first, last) = offsets_of(bytes).unwrap();
                assert_eq!(first, next_offset, "seed {seed} node {id}: entry {} does not follow on", entry.log_id);
                let epoch = BatchHeader::parse(bytes).unwrap().partition_leader_epoch;
                assert_eq!(
                    epoch as u64, entry.log_id.leader_id.term,
                    "seed {seed} node {id}: epoch of {}",
                    entry.log_id
                );
                next_offset = last + 1;
                Some((first, last))
            }
            _ => None,
        };
        out.insert(entry.log_id.index, (entry.log_id, offsets));
    }
    let log_end = store.partition_log().log_end_offset();
    assert_eq!(next_offset, log_end, "seed {seed} node {id}: entries end before the log");
    // OffsetForLeaderEpoch from the store agrees with the entries: each kept term ends where
    // the first batch of a later term begins, or at the log end.
    let terms: BTreeSet<u64> = out.values().map(|(l, _)| l.leader_id.term).collect();
    for term in terms {
        let later = out.values().filter(|(l, _)| l.leader_id.term > term);
        let end = later.filter_map(|(_, offsets)| offsets.map(|o| o.0)).next().unwrap_or(log_end);
        assert_eq!(store.epoch_end_offset(term), Some((term, end)), "seed {seed} node {id}: epoch end of term {term}");
    }
    out
}

async fn check(seed: u64, stores: &[(NodeId, LogStore, i64)], acked: &[Acked], summary: &mut Summary) {
    let mut logs = Vec::new();
    let mut entries = Vec::new();
    for (id, store, high_watermark) in stores {
        let log = store.partition_log();
        assert_eq!(*high_watermark, log.log_end_offset(), "seed {seed} node {id}: high watermark is not the log end");
        logs.push((*id, log.log_start_offset(), read_batches(seed, *id, log)));
        entries.push((*id, read_entries(seed, *id, store).await));
    }
    let high_watermark = stores[0].2;
    assert!(stores.iter().all(|s| s.2 == high_watermark), "seed {seed}: high watermarks differ");

    // Every acknowledged batch, at its offset, everywhere the log still reaches it.
    for write in acked {
        assert!(write.last < high_watermark, "seed {seed}: acknowledged {write:?} above the high watermark");
        for (id, start, batches) in &logs {
            if write.first < *start {
                summary.below_log_start += 1;
                continue;
            }
            let stored = batches.get(&write.first);
            let found = stored.is_some_and(|b| b.last == write.last && b.body == write.body);
            assert!(found, "seed {seed} node {id}: acknowledged {write:?} is not in the log, found {stored:?}");
            summary.checked_copies += 1;
        }
    }
    // The logs agree wherever they all reach (the offset map and epochs included).
    let common_start = logs.iter().map(|l| l.1).max().unwrap();
    for pair in logs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ra: Vec<_> = a.2.range(common_start..).collect();
        let rb: Vec<_> = b.2.range(common_start..).collect();
        assert!(ra == rb, "seed {seed}: logs of nodes {} and {} differ from offset {common_start}", a.0, b.0);
    }
    // The Raft index -> offsets map agrees across nodes for every index they all hold.
    let all_indexes: BTreeSet<u64> = entries.iter().flat_map(|e| e.1.keys().copied()).collect();
    for index in all_indexes {
        let seen: Vec<_> = entries.iter().filter_map(|e| e.1.get(&index)).collect();
        if seen.len() == entries.len() {
            assert!(seen.windows(2).all(|w| w[0] == w[1]), "seed {seed}: Raft entry {index} differs: {seen:?}");
        }
    }
}

/// A fresh directory for one seed's three nodes, in memory when /dev/shm exists (fsyncs
/// there cost nothing, so the run stays short; the code path is the same).
fn temp_root() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("sluice-sim-").tempdir_in(shm);
    match builder {
        Ok(dir) if shm.is_dir() => dir,
        _ => tempfile::tempdir().unwrap(),
    }
}

fn seeds() -> Vec<u64> {
    let var = |name| std::env::var(name).ok().and_then(|v: String| v.parse::<u64>().ok());
    match (var("SIM_SEED"), var("SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => (1..=DEFAULT_SEEDS).collect(),
    }
}

/// Many seeds of faults against the real storage, purges on every replica as in the
/// cluster: nothing acknowledged is lost or moved, the replicas' logs and Raft index maps
/// agree, every AppendEntries follows its `prev_log_id`, nothing panics (see the module
/// comment).
#[tokio::test(start_paused = true)]
async fn simulated_faults_lose_nothing_acknowledged() {
    run_seeds(seeds(), &Faults { purge_on_followers: true, fail_on_gapped_appends: true }).await;
}

async fn run_seeds(seeds: Vec<u64>, faults: &Faults) {
    for seed in seeds {
        eprintln!("sim seed {seed}: running (SIM_SEED={seed} reruns it)");
        let s = run_seed(seed, faults).await;
        eprintln!(
            "sim seed {seed}: crashes {} (leader {}, orphan batch left {}), partitions {} (leader {}), snapshots {}, purges {}, \
             retentions {}, proposed {}, acked {}, leader changes {}, elections (final term) {}, copies checked {}, \
             copies below a log start {}, messages delivered {} lost {} refused {}, snapshot sends {}, gapped appends dropped {}",
            s.crashes,
            s.leader_crashes,
            s.orphans,
            s.partitions,
            s.leader_partitions,
            s.snapshots,
            s.purges,
            s.retentions,
            s.proposed,
            s.acked,
            s.leader_changes,
            s.final_term,
            s.checked_copies,
            s.below_log_start,
            s.net.delivered,
            s.net.lost,
            s.net.refused,
            s.net.snapshot_chunks,
            s.gapped_appends
        );
        assert!(s.acked > 0, "seed {seed}: nothing was acknowledged");
    }
}
