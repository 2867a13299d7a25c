//! tokio-nsq, a Rust NSQ client, used unchanged: PUB/MPUB/DPUB, two channels with two
//! consumers each, REQ with a delay (attempts counted), and a snappy connection.

mod common;
mod nsq_common;

use nsq_common::{http, NsqBroker};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_nsq::{
    NSQChannel, NSQConfigShared, NSQConfigSharedCompression, NSQConsumerConfig, NSQConsumerConfigSources, NSQEvent,
    NSQProducer, NSQProducerConfig, NSQRequeueDelay, NSQTopic,
};

const WAIT: Duration = Duration::from_secs(20);

async fn producer(addr: &str) -> NSQProducer {
    let mut p = NSQProducerConfig::new(addr).build();
    let healthy = tokio::time::timeout(WAIT, p.consume()).await.expect("producer handshake");
    assert!(matches!(healthy, Some(NSQEvent::Healthy())), "{healthy:?}");
    p
}

async fn acked(p: &mut NSQProducer) {
    let event = tokio::time::timeout(WAIT, p.consume()).await.expect("publish ack");
    assert!(matches!(event, Some(NSQEvent::Ok())), "{event:?}");
}

/// A consumer task forwarding (consumer index, body, attempts, received at) and finishing
/// each message unless `requeue_first` asks it to REQ first deliveries for that long.
fn consume(
    addr: String,
    topic: &str,
    channel: &str,
    index: usize,
    shared: NSQConfigShared,
    requeue_first: Option<Duration>,
    out: mpsc::Sender<(usize, String, u16, Instant)>,
) {
    let topic = NSQTopic::new(topic).expect("topic");
    let channel = NSQChannel::new(channel).expect("channel");
    tokio::spawn(async move {
        let mut consumer = NSQConsumerConfig::new(topic, channel)
            .set_max_in_flight(3)
            .set_shared(shared)
            .set_sources(NSQConsumerConfigSources::Daemons(vec![addr]))
            .build();
        while let Some(message) = consumer.consume_filtered().await {
            let body = String::from_utf8_lossy(&message.body).to_string();
            let attempts = message.attempt;
            if out.send((index, body, attempts, Instant::now())).await.is_err() {
                break;
            }
            match requeue_first {
                Some(delay) if attempts == 1 => message.requeue(NSQRequeueDelay::CustomDelay(delay)).await,
                _ => message.finish().await,
            }
        }
    });
}

#[test]
fn tokio_nsq_publishes_and_consumes_on_two_channels() {
    let nsq = NsqBroker::start(&[]);
    let addr = format!("127.0.0.1:{}", nsq.tcp);
    // As nsqd, a channel is created on an existing topic.
    assert_eq!(http(nsq.http, "POST", "/topic/create?topic=tk", b"").0, 200);
    for ch in ["a", "b"] {
        assert_eq!(http(nsq.http, "POST", &format!("/channel/create?topic=tk&channel={ch}"), b"").0, 200);
    }
    common::runtime().block_on(async {
        let (tx, mut rx) = mpsc::channel(1024);
        for (i, ch) in ["a", "a", "b", "b"].into_iter().enumerate() {
            consume(addr.clone(), "tk", ch, i, NSQConfigShared::new(), None, tx.clone());
        }
        // Blocking here is fine: block_on's thread is not one of the runtime's workers.
        for ch in ["a", "b"] {
            nsq.wait_subscribed("tk", ch, 2);
        }
        let topic = NSQTopic::new("tk").expect("topic");
        let mut p = producer(&addr).await;
        for i in 0..30 {
            p.publish(&topic, format!("t{i:02}").into_bytes()).await.expect("publish");
            acked(&mut p).await;
        }
        p.publish_multiple(&topic, (30..40).map(|i| format!("t{i:02}").into_bytes()).collect()).await.expect("mpub");
        acked(&mut p).await;
        let deferred_at = Instant::now();
        p.publish_deferred(&topic, b"t40".to_vec(), 1500).await.expect("dpub");
        acked(&mut p).await;
        let mut per_consumer = [0usize; 4];
        let mut per_channel = [HashSet::new(), HashSet::new()];
        while per_channel.iter().any(|s| s.len() < 41) {
            let (i, body, _, at) = tokio::time::timeout(WAIT, rx.recv()).await.expect("message").expect("open");
            if body == "t40" {
                assert!(at.duration_since(deferred_at) >= Duration::from_millis(1400), "DPUB early");
            }
            per_consumer[i] += 1;
            per_channel[i / 2].insert(body);
        }
        assert!(per_consumer.iter().all(|&n| n > 0), "a consumer got nothing: {per_consumer:?}");
    });
}

#[test]
fn tokio_nsq_requeue_with_delay_and_snappy() {
    let nsq = NsqBroker::start(&[]);
    let addr = format!("127.0.0.1:{}", nsq.tcp);
    common::runtime().block_on(async {
        let (tx, mut rx) = mpsc::channel(64);
        let snappy = NSQConfigShared::new().set_compression(NSQConfigSharedCompression::Snappy);
        consume(addr.clone(), "tkr", "c", 0, snappy, Some(Duration::from_millis(1200)), tx);
        nsq.wait_subscribed("tkr", "c", 1);
        let mut p = producer(&addr).await;
        let big = "x".repeat(100_000);
        p.publish(&NSQTopic::new("tkr").expect("topic"), big.clone().into_bytes()).await.expect("publish");
        acked(&mut p).await;
        let (_, first, attempts, at) = tokio::time::timeout(WAIT, rx.recv()).await.expect("first").expect("open");
        assert_eq!((first.len(), attempts), (big.len(), 1));
        let (_, again, attempts, at2) = tokio::time::timeout(WAIT, rx.recv()).await.expect("again").expect("open");
        assert_eq!((again == big, attempts), (true, 2));
        assert!(at2.duration_since(at) >= Duration::from_millis(1100), "REQ delay not honoured");
    });
}
