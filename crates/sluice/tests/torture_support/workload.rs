//! The mixed load both broker-killing tests run (crash_torture, power_cut): rdkafka
//! `acks=all` producers (idempotent and not), an NSQ publisher, a Kafka group consumer
//! committing and an NSQ channel consumer, each on its own thread.

use super::{kafka, nsq, Stop};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the workload writes and reads.
#[derive(Clone, Copy)]
pub struct Names {
    pub kafka_topic: &'static str,
    pub nsq_topic: &'static str,
    pub nsq_channel: &'static str,
    pub group: &'static str,
}

/// The running workers; `producers` stops the three writers, `consumers` the two readers.
pub struct Workload {
    pub producers: Stop,
    pub consumers: Stop,
    /// Offsets whose commit the broker acknowledged, per partition.
    pub acked_commits: kafka::AckedCommits,
    /// What the channel consumer was delivered and confirmed finishing.
    pub nsq_seen: Arc<Mutex<nsq::Consumed>>,
    pub idempotent: JoinHandle<kafka::Produced>,
    pub plain: JoinHandle<kafka::Produced>,
    pub publisher: JoinHandle<nsq::Published>,
    pub group: JoinHandle<kafka::Consumed>,
    pub channel: JoinHandle<()>,
}

impl Workload {
    /// Starts every worker against the broker at `bootstrap` (Kafka) and `nsq_tcp`.
    pub fn start(bootstrap: &str, nsq_tcp: u16, names: Names) -> Workload {
        let (producers, consumers) = (Stop::default(), Stop::default());
        let acked_commits = kafka::AckedCommits::default();
        let nsq_seen = Arc::new(Mutex::new(nsq::Consumed::default()));
        let producer = |tag: &'static str, idempotent: bool| {
            let (bootstrap, stop) = (bootstrap.to_string(), producers.clone());
            std::thread::spawn(move || kafka::produce(bootstrap, names.kafka_topic.into(), tag, idempotent, stop))
        };
        let idempotent = producer("ki", true);
        let plain = producer("kp", false);
        let publisher = {
            let stop = producers.clone();
            std::thread::spawn(move || nsq::publish(nsq_tcp, names.nsq_topic.into(), "n", stop))
        };
        let group = {
            let (bootstrap, acked, stop) = (bootstrap.to_string(), Arc::clone(&acked_commits), consumers.clone());
            std::thread::spawn(move || {
                kafka::consume_and_commit(bootstrap, names.kafka_topic.into(), names.group.into(), acked, stop)
            })
        };
        let channel = {
            let (stop, seen) = (consumers.clone(), Arc::clone(&nsq_seen));
            std::thread::spawn(move || {
                nsq::consume(nsq_tcp, names.nsq_topic.into(), names.nsq_channel.into(), stop, seen)
            })
        };
        Workload { producers, consumers, acked_commits, nsq_seen, idempotent, plain, publisher, group, channel }
    }
}

/// Creates the workload's Kafka topic with `partitions` through the admin API (librdkafka).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let rt = crate::common::runtime();
    let admin: AdminClient<DefaultClientContext> = crate::common::client_config(bootstrap).create().expect("admin");
    let topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let created = rt
        .block_on(admin.create_topics(&[topic], &AdminOptions::new().request_timeout(Some(Duration::from_secs(15)))))
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}
