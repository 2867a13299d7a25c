//! Channel cursor behaviour without a network: delivery, FIN/REQ/timeout, and what a
//! checkpoint brings back after reopening the broker.

use super::{Channels, ChannelsConfig, ClientInfo, MessageId};
use crate::{Broker, BrokerConfig};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn client(id: u64, rdy: i64) -> ClientInfo {
    let c = ClientInfo { id, ..ClientInfo::default() };
    c.ready_count.store(rdy, Ordering::Relaxed);
    c
}

async fn open(dir: &std::path::Path) -> Arc<Channels> {
    let broker = Broker::open(BrokerConfig::new(dir)).expect("broker");
    Channels::open(broker, ChannelsConfig::default()).expect("channels")
}

#[tokio::test]
async fn fin_req_timeout_and_restore_from_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channels = open(dir.path()).await;
    let bodies: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("b{i}"))).collect();
    channels.publish("t", &bodies, None).await.expect("publish");
    let channel = channels.channel_or_create("t", "c").expect("channel");
    let me = client(1, 10);
    let got: Vec<_> = (0..5).filter_map(|_| channel.try_pop(&me, Duration::from_millis(50))).collect();
    assert_eq!(got.iter().map(|d| d.id.offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert!(channel.try_pop(&me, Duration::from_secs(1)).is_none());
    channel.fin(got[0].id, &me).expect("fin");
    channel.fin(got[1].id, &me).expect("fin");
    assert!(channel.fin(got[1].id, &me).is_err(), "double FIN accepted");
    assert!(channel.fin(got[2].id, &client(2, 1)).is_err(), "FIN by another client accepted");
    channel.req(got[2].id, &me, Duration::ZERO).expect("req");
    let again = channel.try_pop(&me, Duration::from_secs(60)).expect("requeued");
    assert_eq!((again.id, again.attempts), (got[2].id, 2));
    // Offsets 3 and 4 time out (50 ms) and come back with attempts 2.
    std::thread::sleep(Duration::from_millis(80));
    let channel_ref = channels.existing_channel("t", "c").expect("exists");
    assert!(channel_ref.stats().in_flight_count == 3);
    channel_ref.sweep(Instant::now());
    let timed_out = channel.try_pop(&me, Duration::from_secs(60)).expect("timed out message");
    assert_eq!(timed_out.attempts, 2);
    assert_eq!(channel.stats().timeout_count, 2);
    channels.checkpoint(true);
    drop((channel, channel_ref, channels));

    let channels = open(dir.path()).await;
    let channel = channels.existing_channel("t", "c").expect("restored channel");
    let me = client(3, 10);
    let back: Vec<_> = (0..5).filter_map(|_| channel.try_pop(&me, Duration::from_secs(60))).collect();
    let ids: Vec<MessageId> = back.iter().map(|d| d.id).collect();
    assert_eq!(ids.iter().map(|id| id.offset).collect::<Vec<_>>(), [2, 3, 4], "finished or lost after restore");
    // Each delivery before the restart counted: 2 and 3 went out twice, 4 once.
    assert_eq!(back.iter().map(|d| d.attempts).collect::<Vec<_>>(), [3, 3, 2], "attempts not restored");
}

#[tokio::test]
async fn later_channels_start_at_the_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channels = open(dir.path()).await;
    channels.publish("t", &[Bytes::from_static(b"old")], None).await.expect("publish");
    let first = channels.channel_or_create("t", "first").expect("first");
    let second = channels.channel_or_create("t", "second").expect("second");
    channels.publish("t", &[Bytes::from_static(b"new")], None).await.expect("publish");
    let me = client(1, 10);
    let a: Vec<_> = (0..3).filter_map(|_| first.try_pop(&me, Duration::from_secs(60))).map(|d| d.body).collect();
    let b: Vec<_> = (0..3).filter_map(|_| second.try_pop(&me, Duration::from_secs(60))).map(|d| d.body).collect();
    assert_eq!(a, [Bytes::from_static(b"old"), Bytes::from_static(b"new")]);
    assert_eq!(b, [Bytes::from_static(b"new")]);
    // Nothing finished yet: retention must keep everything from offset 0.
    assert_eq!(channels.retention_floor("t", 0), Some(0));
}

/// A topic deleted and re-created behind a channel (Kafka) does not leave the channel stuck
/// past the new log's end after a restart; ephemeral topics do not survive a restart.
#[tokio::test]
async fn recreated_topic_and_ephemeral_topic_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channels = open(dir.path()).await;
    let bodies: Vec<Bytes> = (0..3).map(|i| Bytes::from(format!("old{i}"))).collect();
    channels.publish("t", &bodies, None).await.expect("publish");
    channels.publish("e#ephemeral", &bodies, None).await.expect("publish ephemeral");
    let channel = channels.channel_or_create("t", "c").expect("channel");
    let me = client(1, 10);
    while let Some(d) = channel.try_pop(&me, Duration::from_secs(60)) {
        channel.fin(d.id, &me).expect("fin");
    }
    channels.checkpoint(true);
    let broker = Arc::clone(channels.broker());
    drop((channel, channels));
    broker.delete_topic("t").expect("delete");
    broker.create_topic("t", Some(1), Default::default()).expect("recreate");
    drop(broker);

    let channels = open(dir.path()).await;
    assert!(channels.topic("e#ephemeral").is_none(), "ephemeral topic survived a restart");
    channels.publish("t", &[Bytes::from_static(b"new")], None).await.expect("publish");
    let channel = channels.existing_channel("t", "c").expect("restored");
    let got = channel.try_pop(&client(2, 10), Duration::from_secs(60)).expect("new message");
    assert_eq!(got.body, Bytes::from_static(b"new"));
}

#[tokio::test]
async fn touch_loop_and_fast_fin_keep_the_deadline_heap_bounded_by_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channels = open(dir.path()).await;
    let bodies: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("b{i}"))).collect();
    for _ in 0..500 {
        channels.publish("t", &bodies, None).await.expect("publish");
    }
    let channel = channels.channel_or_create("t", "c").expect("channel");
    let me = client(1, 10);
    let bound = |in_flight: usize| 2 * in_flight + super::cursor::DEADLINE_STALE_MAX;

    // A TOUCH loop on ten in-flight messages.
    let held: Vec<_> = (0..10).filter_map(|_| channel.try_pop(&me, Duration::from_secs(60))).collect();
    let mut peak = 0;
    for _ in 0..2_000 {
        for d in &held {
            channel.touch(d.id, &me, Duration::from_secs(60)).expect("touch");
        }
        peak = peak.max(channel.deadline_entries());
    }
    assert!(peak <= bound(10), "heap reached {peak} entries for 10 in flight");
    for d in &held {
        channel.fin(d.id, &me).expect("fin");
    }

    // A consumer that finishes each message at once.
    let mut peak = 0;
    let mut finished = 0;
    while let Some(d) = channel.try_pop(&me, Duration::from_secs(60)) {
        channel.fin(d.id, &me).expect("fin");
        finished += 1;
        peak = peak.max(channel.deadline_entries());
    }
    assert_eq!(finished, 4_990);
    assert!(peak <= bound(1), "heap reached {peak} entries for 1 in flight");
}

#[tokio::test]
async fn the_ready_queue_is_bounded_in_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channels = open(dir.path()).await;
    let body = Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..200 {
        channels.publish("t", std::slice::from_ref(&body), None).await.expect("publish");
    }
    let channel = channels.channel_or_create("t", "c").expect("channel");
    let me = client(1, 1000);
    let first = channel.try_pop(&me, Duration::from_secs(60)).expect("a message");
    let ready_bytes = channel.ready_bytes();
    assert!(ready_bytes <= super::READY_BYTES_MAX, "ready queue holds {ready_bytes} bytes");
    assert!(ready_bytes > 0, "nothing read ahead");
    channel.fin(first.id, &me).expect("fin");
    let mut delivered = 1;
    while let Some(d) = channel.try_pop(&me, Duration::from_secs(60)) {
        assert!(channel.ready_bytes() <= super::READY_BYTES_MAX);
        channel.fin(d.id, &me).expect("fin");
        delivered += 1;
    }
    assert_eq!(delivered, 200, "a bound on bytes must not lose messages");
}
