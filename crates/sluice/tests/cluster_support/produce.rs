//! A Kafka producer worker recording every send and its outcome into a history: values
//! `<prefix>-<n>`, `acks=all`, idempotent or not, keyed or round-robin over explicit partitions.

use crate::history::Recorder;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sends awaiting their acknowledgement at once: keeps the client busy without a huge backlog
/// at the end of a run.
const IN_FLIGHT_MAX: usize = 100;
/// How long the client keeps retrying one send: long enough to ride out a failover; a send
/// still pending at the end of the run is not acknowledged.
const MESSAGE_TIMEOUT_MS: u32 = 30_000;
/// Backoff after the client's own queue refuses a send.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(20);

/// Shared stop flag of a worker.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What to produce.
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    pub topic: String,
    /// Values are `<prefix>-<n>`, n from 0.
    pub prefix: String,
    /// Sends at most; the worker returns after this many (or at `stop`).
    pub count_max: u64,
    pub idempotent: bool,
    /// `Some(k)`: send n to partition n % k. `None`: key `k-<n>`, the client's partitioner picks.
    pub round_robin: Option<i32>,
    /// After every `pace.0` sends, sleep `pace.1` (keeps a long run a size the final read handles).
    pub pace: Option<(u64, Duration)>,
}

/// What the worker saw beyond the history.
#[derive(Debug, Default, Clone)]
pub struct Produced {
    pub sent: u64,
    /// Fatal errors of an idempotent producer (each replaced the producer with a new one).
    pub fatal_errors: Vec<String>,
}

/// The value of send `n`.
pub fn value(prefix: &str, n: u64) -> String {
    format!("{prefix}-{n}")
}

pub fn producer(bootstrap: &str, idempotent: bool) -> FutureProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("enable.idempotence", if idempotent { "true" } else { "false" })
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string())
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "1000");
    cfg.create().unwrap_or_else(|e| panic!("create producer: {e}"))
}

/// Produces per `spec` until `count_max` or `stop`, then waits for every send in flight.
/// Records `Send` before each send and `SendOk`/`SendFail`/`SendUnknown` for each outcome.
pub fn produce(bootstrap: &str, spec: &ProduceSpec, recorder: &Recorder, stop: &Stop) -> Produced {
    let rt = crate::common::runtime();
    let mut out = Produced::default();
    let mut client = producer(bootstrap, spec.idempotent);
    let mut in_flight = VecDeque::new();
    rt.block_on(async {
        while !stop.is_set() && out.sent < spec.count_max {
            let n = out.sent;
            let value = value(&spec.prefix, n);
            let key = format!("k-{n}");
            let partition = spec.round_robin.map(|k| (n % k.max(1) as u64) as i32);
            let mut record = FutureRecord::to(&spec.topic).key(&key).payload(&value);
            if let Some(p) = partition {
                record = record.partition(p);
            }
            recorder.send(&value, partition, spec.idempotent);
            match client.send_result(record) {
                Ok(delivery) => in_flight.push_back((value, delivery)),
                Err(_) => {
                    // Refused by the client's own queue: it never left, so it definitely failed.
                    recorder.send_fail(&value);
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
            }
            out.sent += 1;
            if let Some((every, pause)) = spec.pace {
                if every > 0 && out.sent % every == 0 {
                    tokio::time::sleep(pause).await;
                }
            }
            while in_flight.len() >= IN_FLIGHT_MAX {
                if let Some((value, delivery)) = in_flight.pop_front() {
                    settle(recorder, &value, delivery.await);
                }
            }
            if spec.idempotent {
                if let Some(fatal) = client.client().fatal_error() {
                    out.fatal_errors.push(format!("{fatal:?}"));
                    for (value, delivery) in in_flight.drain(..) {
                        settle(recorder, &value, delivery.await);
                    }
                    client = producer(bootstrap, spec.idempotent);
                }
            }
        }
        for (value, delivery) in in_flight.drain(..) {
            settle(recorder, &value, delivery.await);
        }
    });
    out
}

fn settle<E, C>(
    recorder: &Recorder,
    value: &str,
    result: Result<Result<rdkafka::producer::future_producer::Delivery, E>, C>,
) {
    match result {
        Ok(Ok(delivery)) => recorder.send_ok(value, delivery.partition, delivery.offset),
        // A timeout or a broker error after the send left: it may be stored or not.
        _ => recorder.send_unknown(value),
    }
}

/// `produce` on its own thread (join it after `stop.set()`).
pub fn produce_in_background(
    bootstrap: &str,
    spec: ProduceSpec,
    recorder: &Recorder,
    stop: &Stop,
) -> std::thread::JoinHandle<Produced> {
    let (bootstrap, recorder, stop) = (bootstrap.to_string(), recorder.clone(), stop.clone());
    std::thread::spawn(move || produce(&bootstrap, &spec, &recorder, &stop))
}
