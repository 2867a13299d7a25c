//! A librdkafka group consumer worker recording every record it reads into a history, and a
//! `Reset` of each partition it is assigned (a rebalance, or a rejoin at another coordinator,
//! moves its position back to the committed offset: the checker then judges its reads from
//! there afresh).

use crate::history::Recorder;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientConfig, ClientContext, Message};
use std::time::Duration;

use super::produce::Stop;

/// One poll's bound: short, so the stop flag is seen quickly.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Records each assignment as a reset of the assigned partitions, before any record read from
/// them under it (librdkafka calls this inside `poll`).
struct RecordingContext {
    recorder: Recorder,
    consumer: String,
}

/// Set to print librdkafka's group, topic and fetch debug log of the consumer (to stderr).
const DEBUG_ENV: &str = "SLUICE_TEST_CONSUMER_DEBUG";

impl ClientContext for RecordingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        if std::env::var_os(DEBUG_ENV).is_some() {
            eprintln!("consumer {:?} {level:?} {fac}: {log_message}", std::time::SystemTime::now());
        }
    }
}

impl ConsumerContext for RecordingContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            for tp in assigned.elements() {
                self.recorder.reset(&self.consumer, tp.partition());
            }
        }
    }
}

/// What the consumer saw beyond the history.
#[derive(Debug, Default, Clone)]
pub struct Consumed {
    pub records: u64,
    /// Errors `poll` returned (a failover shows some; they are retried by the client).
    pub errors: u64,
}

/// Reads `topic` in consumer group `group` as `name` until `stop`.
pub fn consume(bootstrap: &str, topic: &str, group: &str, name: &str, recorder: &Recorder, stop: &Stop) -> Consumed {
    let context = RecordingContext { recorder: recorder.clone(), consumer: name.to_string() };
    let mut config = ClientConfig::new();
    if std::env::var_os(DEBUG_ENV).is_some() {
        config.set("debug", "cgrp,topic,fetch").set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    let consumer: BaseConsumer<RecordingContext> = config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        // A new coordinator knows no member (the consumer rejoins at once with a new id); the
        // short session only makes a member that stops answering go quickly.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(context)
        .unwrap_or_else(|e| panic!("create consumer: {e}"));
    consumer.subscribe(&[topic]).unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"));
    let mut out = Consumed::default();
    while !stop.is_set() {
        match consumer.poll(POLL_TIMEOUT) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                recorder.poll(name, m.partition(), m.offset(), &value);
                out.records += 1;
            }
            Some(Err(_)) => out.errors += 1,
            None => {}
        }
    }
    out
}

/// `consume` on its own thread (join it after `stop.set()`).
pub fn consume_in_background(
    bootstrap: &str,
    topic: &str,
    group: &str,
    name: &str,
    recorder: &Recorder,
    stop: &Stop,
) -> std::thread::JoinHandle<Consumed> {
    let (bootstrap, topic, group, name) =
        (bootstrap.to_string(), topic.to_string(), group.to_string(), name.to_string());
    let (recorder, stop) = (recorder.clone(), stop.clone());
    std::thread::spawn(move || consume(&bootstrap, &topic, &group, &name, &recorder, &stop))
}
