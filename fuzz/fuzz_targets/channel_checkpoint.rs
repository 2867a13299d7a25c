//! An arbitrary file as a durable NSQ channel's checkpoint (`channels/<topic>/<channel>.json`)
//! when the broker starts: the channel must come up (restored, or from the log start when the
//! file is damaged), deliver only messages that exist, and write a checkpoint that reads back.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_broker::channel::{Channels, ChannelsConfig, ClientInfo};
use sluice_broker::{Broker, BrokerConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

/// Messages published to the topic once; every run starts from a copy of that data dir.
const MESSAGES: i64 = 5;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    copy_tree(template(), dir.path());
    let checkpoint = dir.path().join("channels/t/c.json");
    std::fs::write(&checkpoint, data).expect("writing the checkpoint");
    let channels = open(dir.path());
    let channel = channels.existing_channel("t", "c").expect("a channel with a checkpoint file comes up");
    let me = ClientInfo { id: 1, ..ClientInfo::default() };
    me.ready_count.store(100, Ordering::Relaxed);
    for _ in 0..2 * MESSAGES {
        let Some(delivery) = channel.try_pop(&me, Duration::from_secs(60)) else { break };
        assert_eq!(delivery.id.partition, 0, "delivered from a partition that does not exist");
        assert!((0..MESSAGES).contains(&delivery.id.offset), "delivered offset {} not in the log", delivery.id.offset);
        let _ = channel.fin(delivery.id, &me);
    }
    channels.checkpoint(true);
    drop((channel, channels));
    let channels = open(dir.path());
    channels.existing_channel("t", "c").expect("the channel comes back from the checkpoint it wrote");
});

fn open(dir: &Path) -> std::sync::Arc<Channels> {
    let broker = Broker::open(BrokerConfig::new(dir)).expect("broker opens");
    Channels::open(broker, ChannelsConfig::default()).expect("channels open")
}

/// A data dir holding topic `t` with `MESSAGES` messages and a checkpointed channel `c`.
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let channels = open(&dir);
            let bodies: Vec<Bytes> = (0..MESSAGES).map(|i| Bytes::from(format!("m{i}"))).collect();
            channels.publish("t", &bodies, None).await.expect("publish");
            channels.channel_or_create("t", "c").expect("channel");
            channels.checkpoint(true);
        });
        dir
    })
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("template dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
