//! Proves acknowledged writes survive power cuts in a cluster. Each of three nodes keeps its
//! data on its own power-cut filesystem (`crates/powercut`: whatever was not fsynced, file
//! data and directory entries, is gone after a cut). While an idempotent `acks=all`
//! librdkafka producer writes to a topic replicated on all three, the power of one node (a
//! minority) is cut twice, first a follower of partition 0, then its leader: each comes back
//! on what its disk kept and catches up from the others. Then the whole cluster loses power at
//! once. A final read of every partition holds every acknowledged record exactly once, at the
//! offset it was acknowledged at (history checker), and the idempotent producer never had a
//! fatal error (a leader restarted by the cut once answered OUT_OF_ORDER_SEQUENCE_NUMBER while
//! it was still re-applying its log).

mod cluster_support;
mod common;
mod history;

use cluster_support::kafka::{create_topic, final_read, metadata_client, wait_for_leader, wait_fully_replicated};
use cluster_support::produce::{produce_in_background, ProduceSpec, Stop};
use cluster_support::{Cluster, ClusterOpts};
use common::{unique_topic, wait_until};
use history::{check, CheckOptions, Recorder};
use sluice_powercut::{CutReport, PowerCutFs};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

const NODES: usize = 3;
const PARTITIONS: i32 = 2;
const REPLICATION: i32 = 3;
/// The partition whose follower, then leader, loses power.
const VICTIM_PARTITION: i32 = 0;
/// The producer's bound: it stops at this many sends even if the cuts take longer.
const SENDS_MAX: u64 = 100_000;
/// The producer sleeps 10 ms after every 20 sends (about 2000 a second at most): the
/// power-cut filesystem holds everything in memory, and the final read stays quick.
const PACE: (u64, Duration) = (20, Duration::from_millis(10));
/// Acknowledgements each round waits for before its cut, so every cut finds fresh data that
/// a disk may or may not have made durable yet.
const ACKS_PER_ROUND: usize = 300;
/// Bound on an acknowledgement after a cut (a new election when the leader was cut).
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a node that lost power catching up into every partition's ISR, and on the whole
/// cluster electing leaders again after the cluster-wide cut.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// One node's disk: a power-cut filesystem mounted on `<mounts>/node-<id>`, its data in `data/`.
struct Disk {
    fs: PowerCutFs,
    data_dir: PathBuf,
}

impl Disk {
    fn mount(mounts: &std::path::Path, id: u64) -> Disk {
        let mountpoint = mounts.join(format!("node-{id}"));
        std::fs::create_dir(&mountpoint).unwrap_or_else(|e| panic!("create {}: {e}", mountpoint.display()));
        let fs = PowerCutFs::mount(&mountpoint).unwrap_or_else(|e| {
            panic!(
                "cannot mount the power-cut FUSE filesystem on {}: {e}. It needs /dev/fuse and fusermount3 \
                 (scripts/install-test-deps.sh installs fuse3)",
                mountpoint.display()
            )
        });
        let data_dir = mountpoint.join("data");
        std::fs::create_dir(&data_dir).expect("create the data dir on the power-cut fs");
        File::open(&mountpoint).and_then(|d| d.sync_all()).expect("fsync the mount root");
        Disk { fs, data_dir }
    }
}

/// Cuts the power of `victims` at one instant (each disk drops what it had not made durable
/// and fails every later operation), kills their processes, powers the disks back on and
/// starts the nodes again on what the disks kept. Returns what each cut dropped.
fn power_cut(cluster: &mut Cluster, disks: &mut [Disk], victims: &[u64]) -> Vec<CutReport> {
    let disk = |id: u64| (id as usize).checked_sub(1).expect("node ids start at 1");
    let reports: Vec<CutReport> = victims.iter().map(|id| disks[disk(*id)].fs.cut()).collect();
    for id in victims {
        cluster.node(*id).kill9();
    }
    for id in victims {
        disks[disk(*id)].fs.restore().unwrap_or_else(|e| panic!("power node {id}'s disk back on: {e}"));
    }
    for id in victims {
        cluster.node(*id).spawn();
    }
    for id in victims {
        cluster.node(*id).wait_up();
    }
    reports
}

/// One power-cut round: what is cut, and which nodes given partition 0's leader.
type Round = (&'static str, fn(i32) -> Vec<u64>);

#[test]
fn acknowledged_writes_survive_power_cuts_of_a_minority_and_of_the_whole_cluster() {
    // Declared in this order so they drop in the reverse one: the nodes die before their
    // disks are unmounted, and the disks before their mount points go.
    let mounts = tempfile::Builder::new().prefix("sluice-cluster-powercut-").tempdir().expect("temp dir");
    let mut disks: Vec<Disk> = (1..=NODES as u64).map(|id| Disk::mount(mounts.path(), id)).collect();
    let data_dirs: BTreeMap<u64, PathBuf> =
        disks.iter().enumerate().map(|(i, d)| (i as u64 + 1, d.data_dir.clone())).collect();
    let mut cluster = Cluster::start_with(NODES, ClusterOpts { data_dirs, ..ClusterOpts::default() });

    let bootstrap = cluster.bootstrap_servers();
    let topic = unique_topic("cluster-powercut");
    create_topic(&bootstrap, &topic, PARTITIONS, REPLICATION).expect("create topic");
    let client = metadata_client(&bootstrap);
    wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);

    let recorder = Recorder::new();
    let stop = Stop::default();
    let spec = ProduceSpec {
        topic: topic.clone(),
        prefix: "c".into(),
        count_max: SENDS_MAX,
        idempotent: true,
        round_robin: Some(PARTITIONS),
        pace: Some(PACE),
    };
    let producer = produce_in_background(&bootstrap, spec, &recorder, &stop);
    wait_until(PROGRESS_TIMEOUT, "the producer's first acknowledgement", || {
        recorder.first_ack_after(VICTIM_PARTITION, Duration::ZERO).is_some()
    });

    let rounds: [Round; 3] = [
        ("a follower", |leader| vec![(1..=NODES as u64).find(|id| *id != leader as u64).unwrap_or(1)]),
        ("the leader", |leader| vec![leader as u64]),
        ("the whole cluster", |_| (1..=NODES as u64).collect()),
    ];
    for (round, (what, victims_of)) in rounds.iter().enumerate() {
        let round = round + 1;
        let leader = wait_for_leader(
            &client,
            &topic,
            VICTIM_PARTITION,
            PROGRESS_TIMEOUT,
            &format!("round {round}: a leader of partition {VICTIM_PARTITION}"),
        );
        let acked = recorder.acknowledged() + ACKS_PER_ROUND;
        wait_until(PROGRESS_TIMEOUT, &format!("round {round}: {acked} acknowledgements before the cut"), || {
            recorder.acknowledged() >= acked
        });
        let victims = victims_of(leader);
        let cut_at = recorder.started().elapsed();
        let reports = power_cut(&mut cluster, &mut disks, &victims);
        eprintln!(
            "round {round}: cut the power of {what} (nodes {victims:?}; leader was {leader}): dropped {reports:?}"
        );
        wait_until(PROGRESS_TIMEOUT, &format!("round {round}: an acknowledgement after the cut"), || {
            recorder.first_ack_after(VICTIM_PARTITION, cut_at).is_some()
        });
        wait_fully_replicated(&client, &topic, PARTITIONS, REPLICATION as usize, CATCH_UP_TIMEOUT);
        cluster.assert_no_panics(&format!("after round {round}"));
    }
    stop.set();
    let produced = producer.join().expect("producer thread");
    let read = final_read(&bootstrap, &topic, PARTITIONS, &recorder, PROGRESS_TIMEOUT);

    let report = check(&recorder.ops(), &CheckOptions::default());
    eprintln!("cluster_power_cut: {report}");
    eprintln!(
        "cluster_power_cut: {} sends, final read {read}, fatal producer errors {:?}, fsyncs per disk {:?}",
        produced.sent,
        produced.fatal_errors,
        disks.iter().map(|d| d.fs.fsyncs()).collect::<Vec<_>>()
    );
    assert!(report.acknowledged > 0, "nothing acknowledged: {}", report.details());
    assert!(report.lost.is_empty(), "{}", report.details());
    assert!(report.misplaced.is_empty(), "{}", report.details());
    assert!(report.inconsistent.is_empty(), "{}", report.details());
    assert!(report.idempotent_duplicates.is_empty(), "{}", report.details());
    assert!(report.unexpected.is_empty(), "{}", report.details());
    assert!(report.non_monotonic.is_empty(), "{}", report.details());
    // The producer's state on a new or restarted leader covers every committed batch, so the
    // idempotent producer never loses track of its sequence (librdkafka makes that fatal).
    assert!(produced.fatal_errors.is_empty(), "fatal producer errors: {:?}", produced.fatal_errors);
}
