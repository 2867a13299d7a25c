//! Per-partition, per-group, per-channel and per-protocol figures, read from the broker's
//! own state when `/metrics` is scraped. The names and labels are documented in
//! `docs/metrics.md`; they are a contract with dashboards and alerts, so change neither.

use super::families::{histogram, Family, HistogramFigures};
use crate::channel::Channels;
use crate::clients::Protocol;
use crate::Broker;
use prometheus::proto::MetricFamily;
use sluice_log::stats::{fsync_snapshot, FSYNC_BUCKETS_SECONDS};
use std::sync::atomic::Ordering;

pub fn collect(channels: &Channels, out: &mut Vec<MetricFamily>) {
    let broker = channels.broker();
    partitions(broker, out);
    groups(broker, out);
    nsq_channels(channels, out);
    connections(broker, out);
    fsyncs(out);
    storage(channels, out);
}

/// Storage health and what start-up recovery of the non-log state files dropped.
fn storage(channels: &Channels, out: &mut Vec<MetricFamily>) {
    let broker = channels.broker();
    let health = broker.storage_health();
    let figures = [
        (
            Family::gauge(
                "sluice_storage_failing",
                "1 while storage refuses writes (a full disk): /ping is unhealthy.",
            ),
            if health.is_failing() { 1.0 } else { 0.0 },
        ),
        (
            Family::counter("sluice_storage_write_failures_total", "Partition writes or fsyncs that failed."),
            health.failures_total() as f64,
        ),
        (
            Family::counter(
                "sluice_offsets_recovery_truncated_bytes_total",
                "Bytes cut from a torn or corrupt tail of the committed-offsets log at start-up.",
            ),
            broker.groups().offsets_truncated_at_open() as f64,
        ),
        (
            Family::counter(
                "sluice_nsq_checkpoints_damaged_total",
                "NSQ channel checkpoints found damaged at start-up (those channels redeliver from the log start).",
            ),
            channels.damaged_checkpoints() as f64,
        ),
    ];
    for (mut family, value) in figures {
        family.add(&[], value);
        family.finish(out);
    }
}

fn partitions(broker: &Broker, out: &mut Vec<MetricFamily>) {
    let mut messages_in = Family::counter(
        "sluice_partition_messages_in_total",
        "Records appended to the partition (Kafka Produce, NSQ PUB/MPUB/DPUB, HTTP publish).",
    );
    let mut bytes_in =
        Family::counter("sluice_partition_bytes_in_total", "Bytes of record batches appended to the partition.");
    let mut messages_out = Family::counter(
        "sluice_partition_messages_out_total",
        "Records served from the partition: Kafka Fetch records at or past the fetch offset, NSQ deliveries.",
    );
    let mut bytes_out = Family::counter(
        "sluice_partition_bytes_out_total",
        "Bytes served from the partition: Kafka Fetch record-set bytes, NSQ message body bytes.",
    );
    let mut start = Family::gauge("sluice_partition_log_start_offset", "First offset still in the log.");
    let mut end = Family::gauge("sluice_partition_log_end_offset", "Next offset to be assigned (high watermark).");
    let mut size = Family::gauge("sluice_partition_size_bytes", "Bytes of segment files on disk.");
    let mut segments = Family::gauge("sluice_partition_segments", "Segments in the log.");
    let mut truncated = Family::counter(
        "sluice_log_recovery_truncated_bytes_total",
        "Bytes cut from a torn or corrupt log tail by recovery when the partition was opened.",
    );
    let mut rebuilt = Family::counter(
        "sluice_log_recovery_indexes_rebuilt_total",
        "Index files rebuilt by recovery when the partition was opened (missing or damaged).",
    );
    let mut compactions = Family::counter(
        "sluice_log_compactions_total",
        "Compaction passes run over the partition's closed segments (cleanup.policy=compact) since it was opened.",
    );
    let mut compacted_records = Family::counter(
        "sluice_log_compaction_records_removed_total",
        "Records compaction removed from the partition (superseded by a later record of their key, or expired tombstones).",
    );
    let mut compacted_bytes =
        Family::counter("sluice_log_compaction_bytes_removed_total", "Bytes of segment files compaction reclaimed.");
    let mut partition_count = Family::gauge("sluice_topic_partitions", "Partitions of the topic.");
    for topic in broker.topics() {
        let parts = topic.partitions();
        partition_count.add(&[("topic", &topic.name)], parts.len() as f64);
        for p in parts {
            let index = p.index.to_string();
            let labels = [("topic", &*topic.name), ("partition", index.as_str())];
            messages_in.add(&labels, p.traffic.messages_in.load(Ordering::Relaxed) as f64);
            bytes_in.add(&labels, p.traffic.bytes_in.load(Ordering::Relaxed) as f64);
            messages_out.add(&labels, p.traffic.messages_out.load(Ordering::Relaxed) as f64);
            bytes_out.add(&labels, p.traffic.bytes_out.load(Ordering::Relaxed) as f64);
            start.add(&labels, p.log_start_offset() as f64);
            end.add(&labels, p.log_end_offset() as f64);
            size.add(&labels, p.size_bytes() as f64);
            segments.add(&labels, p.log().segment_count() as f64);
            let report = p.log().recovery_report();
            truncated.add(&labels, report.truncated_bytes as f64);
            rebuilt.add(&labels, report.indexes_rebuilt as f64);
            let compaction = p.log().compaction_totals();
            compactions.add(&labels, compaction.passes.load(Ordering::Relaxed) as f64);
            compacted_records.add(&labels, compaction.records_removed.load(Ordering::Relaxed) as f64);
            compacted_bytes.add(&labels, compaction.bytes_removed.load(Ordering::Relaxed) as f64);
        }
    }
    for family in [
        messages_in,
        bytes_in,
        messages_out,
        bytes_out,
        start,
        end,
        size,
        segments,
        truncated,
        rebuilt,
        compactions,
        compacted_records,
        compacted_bytes,
        partition_count,
    ] {
        family.finish(out);
    }
}

fn groups(broker: &Broker, out: &mut Vec<MetricFamily>) {
    let mut committed = Family::gauge("sluice_group_committed_offset", "Offset the consumer group committed.");
    let mut lag = Family::gauge("sluice_group_lag", "Log end offset minus committed offset (messages behind).");
    let mut members = Family::gauge("sluice_group_members", "Members of the consumer group.");
    let mut generation =
        Family::gauge("sluice_group_generation", "Generation of the consumer group (bumped by every rebalance).");
    let coordinator = broker.groups();
    for listing in coordinator.list() {
        let group = listing.group_id.as_str();
        if let Ok(description) = coordinator.describe(group) {
            members.add(&[("group", group)], description.members.len() as f64);
            generation.add(&[("group", group)], description.generation as f64);
        }
        for p in coordinator.lag(broker, group) {
            let index = p.partition.to_string();
            let labels = [("group", group), ("topic", p.topic.as_str()), ("partition", index.as_str())];
            committed.add(&labels, p.committed as f64);
            lag.add(&labels, p.lag as f64);
        }
    }
    for family in [committed, lag, members, generation] {
        family.finish(out);
    }
}

fn nsq_channels(channels: &Channels, out: &mut Vec<MetricFamily>) {
    let mut depth = Family::gauge("sluice_nsq_channel_depth", "Messages waiting to be delivered on the channel.");
    let mut in_flight = Family::gauge(
        "sluice_nsq_channel_in_flight",
        "Messages delivered and not yet finished, requeued or timed out.",
    );
    let mut deferred =
        Family::gauge("sluice_nsq_channel_deferred", "Messages deferred (DPUB, REQ with delay), not yet due.");
    let mut messages =
        Family::counter("sluice_nsq_channel_messages_total", "Messages the channel took from its topic's log.");
    let mut requeued = Family::counter("sluice_nsq_channel_requeued_total", "Messages requeued by clients (REQ).");
    let mut timed_out =
        Family::counter("sluice_nsq_channel_timed_out_total", "In-flight messages whose timeout expired.");
    let mut finished = Family::counter("sluice_nsq_channel_finished_total", "Messages finished by clients (FIN).");
    let mut clients = Family::gauge("sluice_nsq_channel_clients", "Clients subscribed to the channel.");
    let mut paused = Family::gauge("sluice_nsq_channel_paused", "1 when the channel or its topic is paused.");
    for topic in channels.topics() {
        for channel in topic.channels() {
            let stats = channel.stats();
            let labels = [("topic", &*topic.name), ("channel", &*channel.name)];
            depth.add(&labels, stats.depth as f64);
            in_flight.add(&labels, stats.in_flight_count as f64);
            deferred.add(&labels, stats.deferred_count as f64);
            messages.add(&labels, stats.message_count as f64);
            requeued.add(&labels, stats.requeue_count as f64);
            timed_out.add(&labels, stats.timeout_count as f64);
            finished.add(&labels, stats.finish_count as f64);
            clients.add(&labels, stats.clients.len() as f64);
            paused.add(&labels, if channel.is_paused() { 1.0 } else { 0.0 });
        }
    }
    for family in [depth, in_flight, deferred, messages, requeued, timed_out, finished, clients, paused] {
        family.finish(out);
    }
}

fn connections(broker: &Broker, out: &mut Vec<MetricFamily>) {
    let clients = broker.clients();
    let mut open = Family::gauge("sluice_connections_open", "Client connections open now.");
    let mut accepted =
        Family::counter("sluice_connections_accepted_total", "Client connections accepted since the broker started.");
    let mut refused = Family::counter(
        "sluice_connections_refused_total",
        "Client connections closed at once because a connection limit was reached.",
    );
    for protocol in [Protocol::Kafka, Protocol::Nsq, Protocol::Mqtt] {
        let labels = [("protocol", protocol.as_str())];
        open.add(&labels, clients.open_count(protocol) as f64);
        accepted.add(&labels, clients.accepted_total(protocol) as f64);
        refused.add(&labels, clients.refused_total(protocol) as f64);
    }
    for family in [open, accepted, refused] {
        family.finish(out);
    }
}

fn fsyncs(out: &mut Vec<MetricFamily>) {
    let snapshot = fsync_snapshot();
    out.push(histogram(
        "sluice_log_fsync_duration_seconds",
        "Time each fsync of a segment file or log directory took (its _count is the number of fsyncs).",
        HistogramFigures {
            count: snapshot.count,
            sum: snapshot.sum_seconds,
            bounds: &FSYNC_BUCKETS_SECONDS,
            cumulative: &snapshot.cumulative,
        },
    ));
}
