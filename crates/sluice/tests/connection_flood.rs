//! Proves a flood of 5,000 loopback connections to the Kafka and NSQ ports does not bring
//! the broker down: with `--max-connections 3000` it holds up to the limit and closes the
//! rest at once, clients connected before the flood keep producing and consuming on both
//! protocols, and once the flood closes its sockets the broker's file descriptors return to
//! their baseline and new clients are served.

mod common;
mod limits_support;
mod nsq_common;

use common::{acks_all_producer, consume_exact, plain_consumer, produce_one, runtime, unique_topic, Broker};
use limits_support::{open_fds, raise_nofile, rss_kib};
use nsq_common::{http, Wire};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const FLOOD: usize = 5_000;
const CONNECTIONS_MAX: usize = 3_000;
/// Open files this test needs: the flood, the clients, the harness, with room to spare.
const NOFILE_WANTED: u64 = 16_384;
/// Records each surviving client sends while the flood is held.
const RECORDS_DURING: usize = 50;
/// Bound on each wait for the broker to catch up with the flood.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Broker fds beyond its baseline tolerated after the flood (listeners' accept backlog, logs).
const FDS_SLACK: usize = 16;

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}

/// Whether the broker closed `stream` (EOF or reset); held connections would block.
fn is_closed(mut stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Polls the flood until the count of closed connections stops changing; returns it.
fn settled_closed_count(flood: &[TcpStream]) -> usize {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut previous = usize::MAX;
    loop {
        let closed = flood.iter().filter(|s| is_closed(s)).count();
        if closed == previous && closed >= FLOOD - CONNECTIONS_MAX {
            return closed;
        }
        assert!(Instant::now() < deadline, "the broker did not settle the flood within {SETTLE_TIMEOUT:?}");
        previous = closed;
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_flood_of_connections_is_refused_beyond_the_limit_while_existing_clients_keep_working() {
    let nofile = raise_nofile(NOFILE_WANTED);
    // The limit is raised as far as the hard limit allows; below what the flood needs the
    // test cannot prove anything, so it fails rather than passing without running.
    assert!(
        nofile >= (FLOOD + 512) as u64,
        "connection flood cannot run: the open-file limit is {nofile} even after raising it to the hard limit, \
         and the flood needs {}; raise the hard limit (`ulimit -Hn {NOFILE_WANTED}`, or run as root)",
        FLOOD + 512
    );
    let broker = Broker::start(&["--max-connections", &CONNECTIONS_MAX.to_string()]);
    let pid = broker.pid().expect("broker pid");
    let (kafka_port, nsq_port) = (broker.port(), port_of(&broker.nsq_tcp_addr()));
    let topic = unique_topic("flood");
    let rt = runtime();

    // Clients connected before the flood: a Kafka producer and consumer, NSQ PUB and SUB.
    let producer = acks_all_producer(&broker.bootstrap(), &[]);
    produce_one(&rt, &producer, &topic, 0, b"k", b"before-flood");
    let consumer = plain_consumer(&broker.bootstrap(), &[]);
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning).expect("assign");
    consumer.assign(&assignment).expect("assign");
    let first = consumer.poll(Duration::from_secs(30)).expect("first record").expect("no consumer error");
    assert_eq!(first.payload(), Some(&b"before-flood"[..]));
    let mut nsq_pub = Wire::connect(nsq_port);
    let mut nsq_sub = Wire::connect(nsq_port);
    nsq_sub.subscribe("flood_nsq", "survivor", 100);
    nsq_pub.publish("flood_nsq", b"before-flood");
    assert_eq!(nsq_sub.message().expect("nsq message").body, b"before-flood");
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));

    // The flood: half to each listener, every socket kept open and silent.
    let started = Instant::now();
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let port = if i % 2 == 0 { kafka_port } else { nsq_port };
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("loopback connect during the flood");
        stream.set_nonblocking(true).expect("nonblocking");
        flood.push(stream);
    }
    let closed = settled_closed_count(&flood);
    let held = FLOOD - closed;
    let (fds_peak, rss_peak) = (open_fds(pid), rss_kib(pid));
    eprintln!(
        "flood of {FLOOD} opened in {:?}: {held} held, {closed} refused; broker fds {fds_before} -> {fds_peak}, \
         rss {rss_before} -> {rss_peak} KiB",
        started.elapsed()
    );
    assert!(held <= CONNECTIONS_MAX, "{held} flood connections held beyond max.connections {CONNECTIONS_MAX}");
    assert!(held + 32 >= CONNECTIONS_MAX, "only {held} held: the broker should serve up to its limit");
    assert!(broker.log_contents().contains("too many connections"), "refusals are logged with their reason");

    // Existing clients keep working while the broker is at its limit.
    for i in 0..RECORDS_DURING {
        let value = format!("during-{i}");
        produce_one(&rt, &producer, &topic, 0, b"k", value.as_bytes());
        let message = consumer.poll(Duration::from_secs(30)).expect("record during the flood").expect("no error");
        assert_eq!(message.payload(), Some(value.as_bytes()), "the consumer reads on during the flood");
        nsq_pub.publish("flood_nsq", value.as_bytes());
        let message = nsq_sub.message().expect("nsq message during the flood");
        assert_eq!(message.body, value.as_bytes());
        nsq_sub.line(&format!("FIN {}", message.id));
    }
    let (status, body) = http(port_of(&broker.http_addr()), "GET", "/ping", b"");
    assert_eq!((status, body.as_str()), (200, "OK"), "/ping during the flood");

    // The flood leaves: the broker lets go of every connection it held.
    drop(flood);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while open_fds(pid) > fds_before + FDS_SLACK {
        assert!(Instant::now() < deadline, "broker fds stayed at {} (baseline {fds_before})", open_fds(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("after the flood: broker fds {}, rss {} KiB", open_fds(pid), rss_kib(pid));
    // New clients are served again: a fresh consumer reads everything.
    let records =
        consume_exact(&broker.bootstrap(), &topic, 0, Offset::Beginning, RECORDS_DURING + 1, Duration::from_secs(30));
    assert_eq!(records.len(), RECORDS_DURING + 1);
    let mut fresh = Wire::connect(nsq_port);
    fresh.publish("flood_nsq", b"after-flood");
}
