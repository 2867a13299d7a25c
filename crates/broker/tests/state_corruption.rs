//! Damaged broker state files at start-up: a half-written NSQ channel checkpoint and a torn
//! or garbled offsets log. Start-up always succeeds, keeps everything intact, and never loses
//! a message (a damaged checkpoint redelivers from the log start rather than skip anything).

use bytes::Bytes;
use sluice_broker::channel::{Channels, ChannelsConfig, ClientInfo};
use sluice_broker::group::offsets::OffsetStore;
use sluice_broker::group::Committed;
use sluice_broker::{Broker, BrokerConfig};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: i64 = 6;

fn open(dir: &Path) -> Arc<Channels> {
    let broker = Broker::open(BrokerConfig::new(dir)).expect("broker");
    Channels::open(broker, ChannelsConfig::default()).expect("channels")
}

fn client() -> ClientInfo {
    let me = ClientInfo { id: 1, ..ClientInfo::default() };
    me.ready_count.store(100, Ordering::Relaxed);
    me
}

/// Offsets the channel delivers, finishing each.
fn drain(channels: &Channels) -> Vec<i64> {
    let channel = channels.existing_channel("t", "c").expect("channel");
    let me = client();
    let mut got = Vec::new();
    while let Some(d) = channel.try_pop(&me, Duration::from_secs(60)) {
        assert!(got.len() < 2 * MESSAGES as usize, "more deliveries than messages");
        channel.fin(d.id, &me).expect("fin");
        got.push(d.id.offset);
    }
    got
}

/// A topic with `MESSAGES` messages and a channel that finished the first half and checkpointed.
async fn checkpointed(dir: &Path) -> Vec<u8> {
    let channels = open(dir);
    let bodies: Vec<Bytes> = (0..MESSAGES).map(|i| Bytes::from(format!("m{i}"))).collect();
    channels.publish("t", &bodies, None).await.expect("publish");
    let channel = channels.channel_or_create("t", "c").expect("channel");
    let me = client();
    for _ in 0..MESSAGES / 2 {
        let d = channel.try_pop(&me, Duration::from_secs(60)).expect("delivery");
        channel.fin(d.id, &me).expect("fin");
    }
    channels.checkpoint(true);
    std::fs::read(dir.join("channels/t/c.json")).expect("checkpoint written")
}

/// A checkpoint cut at every length (as a write without the atomic rename would leave it):
/// the channel comes back from the log start and delivers every message again; the intact
/// checkpoint redelivers exactly the unfinished half.
#[tokio::test]
async fn half_written_channel_checkpoint_redelivers_everything() {
    let template = tempfile::tempdir().expect("tempdir");
    let full = checkpointed(template.path()).await;
    for cut in 0..=full.len() {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(template.path(), dir.path());
        std::fs::write(dir.path().join("channels/t/c.json"), &full[..cut]).expect("write");
        let channels = open(dir.path());
        let expected: Vec<i64> = match cut == full.len() {
            true => (MESSAGES / 2..MESSAGES).collect(),
            false => (0..MESSAGES).collect(),
        };
        assert_eq!(drain(&channels), expected, "checkpoint cut at {cut} of {}", full.len());
    }
}

/// A half-written temp file left by a crash mid-checkpoint is ignored: the last complete
/// checkpoint (renamed into place atomically) is the one restored.
#[tokio::test]
async fn leftover_checkpoint_temp_file_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = checkpointed(dir.path()).await;
    std::fs::write(dir.path().join("channels/t/c.json.tmp"), &full[..full.len() / 2]).expect("write");
    let channels = open(dir.path());
    assert_eq!(drain(&channels), (MESSAGES / 2..MESSAGES).collect::<Vec<_>>());
}

fn committed(offset: i64) -> Committed {
    Committed { offset, leader_epoch: 0, metadata: Some("meta".into()), commit_ts_ms: 1_700_000_000_000 }
}

/// The offsets log cut at every byte of its last record: the earlier commits survive, the
/// torn one is dropped (the file is cut back to the intact prefix), and commits go on.
#[test]
fn offsets_log_torn_at_every_byte_of_its_last_record() {
    let template = tempfile::tempdir().expect("tempdir");
    let mut store = OffsetStore::open(template.path()).expect("open");
    store.commit("g", &[("t".into(), 0, committed(5)), ("t".into(), 1, committed(7))]).expect("commit");
    let path = template.path().join("offsets.log");
    let before_last = std::fs::metadata(&path).expect("stat").len();
    store.commit("g", &[("t".into(), 0, committed(9))]).expect("commit");
    drop(store);
    let full = std::fs::read(&path).expect("read");
    for cut in before_last..full.len() as u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("offsets.log"), &full[..cut as usize]).expect("write");
        let mut store = OffsetStore::open(dir.path()).expect("recovery");
        assert_eq!(store.get("g", "t", 0), Some(&committed(5)), "cut at {cut}");
        assert_eq!(store.get("g", "t", 1), Some(&committed(7)), "cut at {cut}");
        let kept = std::fs::metadata(dir.path().join("offsets.log")).expect("stat").len();
        assert_eq!(kept, before_last, "cut at {cut}: torn bytes left in the file");
        store.commit("g", &[("t".into(), 0, committed(11))]).expect("commit after recovery");
        drop(store);
        let store = OffsetStore::open(dir.path()).expect("reopen");
        assert_eq!(store.get("g", "t", 0), Some(&committed(11)), "cut at {cut}: commit after recovery lost");
    }
}

/// A flipped bit in the middle of the offsets log: replay stops at the damaged record (it
/// cannot know which later records depend on it), keeps what precedes it, and starts cleanly.
#[test]
fn offsets_log_bit_flip_keeps_the_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = OffsetStore::open(dir.path()).expect("open");
    store.commit("g", &[("t".into(), 0, committed(1))]).expect("commit");
    let path = dir.path().join("offsets.log");
    let first_len = std::fs::metadata(&path).expect("stat").len() as usize;
    store.commit("g", &[("t".into(), 1, committed(2))]).expect("commit");
    store.commit("g", &[("t".into(), 2, committed(3))]).expect("commit");
    drop(store);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[first_len + 20] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write");
    let store = OffsetStore::open(dir.path()).expect("recovery");
    assert_eq!(store.get("g", "t", 0), Some(&committed(1)));
    assert_eq!((store.get("g", "t", 1), store.get("g", "t", 2)), (None, None));
    assert_eq!(std::fs::metadata(&path).expect("stat").len() as usize, first_len);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
