//! librdkafka group members that record every rebalance callback, for the tests that check
//! what was assigned and revoked (eager and cooperative-sticky).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

use crate::common::{client_config, Broker};

/// The members' session timeout unless a test sets its own (short, so a dead member is
/// noticed within the tests' bounds).
const SESSION_TIMEOUT_MS: &str = "6000";

/// One rebalance callback: ("assign" | "revoke", partitions).
pub type Event = (&'static str, Vec<i32>);

/// Records every rebalance callback.
#[derive(Clone, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (kind, tpl) = match rebalance {
            Rebalance::Assign(tpl) => ("assign", *tpl),
            Rebalance::Revoke(tpl) => ("revoke", *tpl),
            Rebalance::Error(_) => return,
        };
        let parts = tpl.elements().iter().map(|e| e.partition()).collect();
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push((kind, parts));
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Callbacks that moved partitions (librdkafka also reports empty incremental ones).
    pub fn moves(&self) -> Vec<Event> {
        self.events().into_iter().filter(|(_, p)| !p.is_empty()).collect()
    }
}

/// A member of `group` subscribed to `topic`: manual commits, reading from the earliest
/// offset, heartbeats every 500 ms; `extra` settings come last and win.
pub fn member(broker: &Broker, group: &str, topic: &str, extra: &[(&str, &str)]) -> (BaseConsumer<Recorder>, Recorder) {
    let mut config = client_config(&broker.bootstrap());
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "500");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    let recorder = Recorder::default();
    let consumer: BaseConsumer<Recorder> = config.create_with_context(recorder.clone()).expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    (consumer, recorder)
}

/// The partitions assigned to `consumer` now.
pub fn assignment(consumer: &BaseConsumer<Recorder>) -> BTreeSet<i32> {
    consumer.assignment().map(|t| t.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default()
}
