//! Proves the history checker finds each anomaly of Jepsen's Kafka workload in a synthetic
//! history built to hold exactly it, and finds nothing in a clean one.

mod history;

use history::{check, CheckOptions, Op, Recorder, Report, FINAL_READ};

fn send(value: &str, idempotent: bool) -> Op {
    Op::Send { value: value.into(), partition: None, idempotent }
}

fn ok(value: &str, partition: i32, offset: i64) -> Op {
    Op::SendOk { value: value.into(), partition, offset }
}

fn poll(consumer: &str, partition: i32, offset: i64, value: &str) -> Op {
    Op::Poll { consumer: consumer.into(), partition, offset, value: value.into() }
}

fn final_read(partition: i32, offset: i64, value: &str) -> Op {
    poll(FINAL_READ, partition, offset, value)
}

/// Three values sent, acknowledged, read by a consumer and by the final read, all in place.
fn clean_history() -> Vec<Op> {
    let mut h = Vec::new();
    for (i, (partition, offset)) in [(0, 0), (1, 0), (0, 1)].into_iter().enumerate() {
        let value = format!("v-{i}");
        h.push(send(&value, true));
        h.push(ok(&value, partition, offset));
    }
    h.extend([poll("c1", 0, 0, "v-0"), poll("c1", 1, 0, "v-1"), poll("c1", 0, 1, "v-2")]);
    h.extend([final_read(0, 0, "v-0"), final_read(0, 1, "v-2"), final_read(1, 0, "v-1")]);
    h
}

fn checked(history: &[Op]) -> Report {
    check(history, &CheckOptions::default())
}

/// The counts of every anomaly, in the order of the report's fields.
fn anomalies(r: &Report) -> [usize; 7] {
    [
        r.lost.count,
        r.misplaced.count,
        r.inconsistent.count,
        r.duplicates.count,
        r.idempotent_duplicates.count,
        r.non_monotonic.count,
        r.unexpected.count,
    ]
}

#[test]
fn a_clean_history_has_no_anomaly() {
    let report = checked(&clean_history());
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
    assert!(report.is_valid());
    assert_eq!((report.sent, report.acknowledged, report.failed, report.unknown), (3, 3, 0, 0));
    assert_eq!((report.consumer_reads, report.final_reads), (3, 3));
    let text = report.to_string();
    assert!(text.contains("acknowledged 3 (0 without an offset), "), "{text}");
    assert!(text.contains("lost 0, "), "{text}");
    assert!(text.contains("duplicates 0 (idempotent 0)"), "{text}");
}

#[test]
fn an_acknowledged_value_missing_from_the_final_read_is_lost() {
    let mut h = clean_history();
    h.retain(|op| *op != final_read(1, 0, "v-1"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [1, 0, 0, 0, 0, 0, 0], "{}", report.details());
    assert_eq!(report.lost.examples[0].value, "v-1");
    assert_eq!((report.lost.examples[0].partition, report.lost.examples[0].offset), (1, 0));
    assert!(!report.is_valid());
    assert!(report.to_string().contains("lost 1, "), "{report}");
}

#[test]
fn a_value_read_by_a_consumer_but_missing_from_the_final_read_is_still_lost() {
    // The consumer saw it before a failover truncated it away: acknowledged, then gone.
    let mut h = clean_history();
    h.retain(|op| *op != final_read(0, 1, "v-2"));
    let report = checked(&h);
    assert_eq!(report.lost.count, 1, "{}", report.details());
    assert_eq!(report.lost.examples[0].value, "v-2");
}

#[test]
fn an_unacknowledged_value_missing_from_the_final_read_is_not_lost() {
    let mut h = clean_history();
    h.push(send("maybe", false));
    h.push(Op::SendUnknown { value: "maybe".into() });
    h.push(send("refused", false));
    h.push(Op::SendFail { value: "refused".into() });
    h.push(send("pending", false));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
    assert_eq!((report.sent, report.acknowledged, report.failed, report.unknown), (6, 3, 1, 2));
    assert_eq!(report.unacknowledged_but_read, 0);
}

#[test]
fn an_unknown_send_found_in_the_log_is_counted_not_an_anomaly() {
    let mut h = clean_history();
    h.push(send("maybe", false));
    h.push(Op::SendUnknown { value: "maybe".into() });
    h.push(final_read(1, 1, "maybe"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
    assert_eq!((report.unknown, report.unacknowledged_but_read), (1, 1));
}

#[test]
fn a_value_acknowledged_at_one_offset_and_read_at_another_is_misplaced() {
    let mut h = clean_history();
    // v-1 was acknowledged at 1/0; the log holds it at 1/5 instead.
    for op in h.iter_mut() {
        if *op == final_read(1, 0, "v-1") {
            *op = final_read(1, 5, "v-1");
        }
        if *op == poll("c1", 1, 0, "v-1") {
            *op = poll("c1", 1, 5, "v-1");
        }
    }
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 1, 0, 0, 0, 0, 0], "{}", report.details());
    let misplaced = &report.misplaced.examples[0];
    assert_eq!((misplaced.value.as_str(), misplaced.acknowledged), ("v-1", (1, 0)));
    assert_eq!(misplaced.read_at, vec![(1, 5)]);
}

#[test]
fn an_offset_read_with_another_value_than_acknowledged_is_inconsistent() {
    let mut h = clean_history();
    h.push(send("x", false));
    h.push(ok("x", 0, 7));
    h.push(final_read(0, 7, "y-unsent-but-sent"));
    h.push(send("y-unsent-but-sent", false));
    h.push(final_read(0, 8, "x"));
    let report = checked(&h);
    assert_eq!(report.inconsistent.count, 1, "{}", report.details());
    let inconsistent = &report.inconsistent.examples[0];
    assert_eq!((inconsistent.partition, inconsistent.offset), (0, 7));
    assert_eq!(inconsistent.values, vec!["x".to_string(), "y-unsent-but-sent".to_string()]);
    // x itself is stored, but not where the broker said: that is misplaced too.
    assert_eq!(report.misplaced.count, 1, "{}", report.details());
    assert_eq!(report.lost.count, 0);
}

#[test]
fn one_offset_read_with_two_values_by_two_consumers_is_inconsistent() {
    let mut h = clean_history();
    h.push(send("a", false));
    h.push(send("b", false));
    h.push(poll("c1", 2, 0, "a"));
    h.push(poll("c2", 2, 0, "b"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 0, 1, 0, 0, 0, 0], "{}", report.details());
    assert_eq!(report.inconsistent.examples[0].values, vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn a_value_stored_twice_by_a_plain_producer_is_a_duplicate_but_allowed() {
    let mut h = clean_history();
    h.push(send("twice", false));
    h.push(ok("twice", 1, 1));
    h.push(final_read(1, 1, "twice"));
    h.push(final_read(1, 2, "twice"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 0, 0, 1, 0, 0, 0], "{}", report.details());
    assert_eq!(report.duplicates.examples[0].at, vec![(1, 1), (1, 2)]);
    assert!(report.is_valid(), "a retried non-idempotent send may be stored twice");
}

#[test]
fn a_value_stored_twice_by_an_idempotent_producer_is_an_error() {
    let mut h = clean_history();
    h.push(final_read(0, 2, "v-0"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 0, 0, 1, 1, 0, 0], "{}", report.details());
    assert_eq!(report.idempotent_duplicates.examples[0].value, "v-0");
    assert_eq!(report.idempotent_duplicates.examples[0].at, vec![(0, 0), (0, 2)]);
    assert!(!report.is_valid());
    assert!(report.to_string().contains("duplicates 1 (idempotent 1)"), "{report}");
}

#[test]
fn a_consumer_reading_a_partition_backwards_is_non_monotonic() {
    let mut h = clean_history();
    h.push(poll("c1", 0, 0, "v-0"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 0, 0, 0, 0, 1, 0], "{}", report.details());
    let back = &report.non_monotonic.examples[0];
    assert_eq!((back.consumer.as_str(), back.partition, back.previous, back.offset), ("c1", 0, 1, 0));
}

#[test]
fn reading_the_same_offset_twice_in_a_row_is_non_monotonic() {
    let mut h = clean_history();
    h.push(poll("c1", 0, 1, "v-2"));
    let report = checked(&h);
    assert_eq!(report.non_monotonic.count, 1, "{}", report.details());
}

#[test]
fn a_reset_marker_allows_a_consumer_to_read_again_from_the_start() {
    let mut h = clean_history();
    h.push(Op::Reset { consumer: "c1".into(), partition: 0 });
    h.push(poll("c1", 0, 0, "v-0"));
    h.push(poll("c1", 0, 1, "v-2"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
}

#[test]
fn a_reset_of_one_partition_does_not_excuse_another() {
    let mut h = clean_history();
    h.push(Op::Reset { consumer: "c1".into(), partition: 1 });
    h.push(poll("c1", 0, 0, "v-0"));
    let report = checked(&h);
    assert_eq!(report.non_monotonic.count, 1, "{}", report.details());
}

#[test]
fn consumers_and_partitions_are_judged_apart() {
    // c2 starting at offset 0 after c1 read offset 1, and c1 moving between partitions, are fine.
    let mut h = clean_history();
    h.extend([poll("c2", 0, 0, "v-0"), poll("c2", 1, 0, "v-1"), poll("c2", 0, 1, "v-2")]);
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
}

#[test]
fn a_value_read_that_nobody_sent_is_unexpected() {
    let mut h = clean_history();
    h.push(final_read(1, 1, "stranger"));
    h.push(poll("c1", 1, 1, "stranger"));
    let report = checked(&h);
    assert_eq!(anomalies(&report), [0, 0, 0, 0, 0, 0, 1], "{}", report.details());
    assert_eq!(report.unexpected.examples[0].value, "stranger");
    assert_eq!((report.unexpected.examples[0].partition, report.unexpected.examples[0].offset), (1, 1));
}

#[test]
fn examples_are_capped_but_counts_are_not() {
    let mut h = Vec::new();
    for i in 0..50 {
        let value = format!("gone-{i}");
        h.push(send(&value, false));
        h.push(ok(&value, 0, i));
    }
    let report = check(&h, &CheckOptions { examples_max: 4 });
    assert_eq!(report.lost.count, 50);
    assert_eq!(report.lost.examples.len(), 4);
    let details = report.details();
    assert!(details.contains("... and 46 more lost"), "{details}");
    assert!(details.contains("gone-0"), "{details}");
}

#[test]
fn the_recorder_keeps_every_event_from_every_thread_in_order_per_thread() {
    let recorder = Recorder::new();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let value = format!("t{t}-{i}");
                    recorder.send(&value, Some(t), true);
                    recorder.send_ok(&value, t, i);
                    recorder.poll(FINAL_READ, t, i, &value);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let stamped = recorder.stamped();
    assert_eq!(stamped.len(), 3000);
    assert!(stamped.windows(2).all(|w| w[0].at <= w[1].at), "stamps follow recording order");
    let report = check(&recorder.ops(), &CheckOptions::default());
    assert_eq!(anomalies(&report), [0; 7], "{}", report.details());
    assert_eq!((report.acknowledged, report.final_reads), (1000, 1000));
}

#[test]
fn the_first_acknowledgement_after_a_moment_counts_only_sends_made_after_it() {
    let recorder = Recorder::new();
    recorder.send("before", Some(0), true);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let moment = recorder.started().elapsed();
    recorder.send("after-other-partition", Some(1), true);
    recorder.send("after", Some(0), true);
    // The send made before the moment is acknowledged after it: it does not count.
    recorder.send_ok("before", 0, 0);
    assert_eq!(recorder.first_ack_after(0, moment), None);
    recorder.send_ok("after-other-partition", 1, 0);
    assert_eq!(recorder.first_ack_after(0, moment), None);
    recorder.send_ok("after", 0, 1);
    let acked = recorder.first_ack_after(0, moment).expect("acknowledged after the moment");
    assert!(acked >= moment);
    assert_eq!(recorder.stamped().last().map(|s| s.at), Some(acked));
}

// librdkafka acknowledges a message it knows is stored without saying where with offset -1001:
// that is no claim of a position (not misplaced, no offset with two values), but it must
// still be in the final read, and once.
#[test]
fn an_acknowledgement_without_an_offset_is_checked_for_loss_and_duplicates_only() {
    let mut ops = Vec::new();
    for (i, value) in ["a", "b", "c"].iter().enumerate() {
        ops.push(Op::Send { value: value.to_string(), partition: Some(0), idempotent: true });
        ops.push(Op::SendOk { value: value.to_string(), partition: 0, offset: -1001 });
        ops.push(Op::Poll { consumer: FINAL_READ.into(), partition: 0, offset: i as i64, value: value.to_string() });
    }
    let report = check(&ops, &CheckOptions::default());
    assert!(report.is_valid(), "{}", report.details());
    assert_eq!(report.acknowledged_without_offset, 3);

    ops.push(Op::Poll { consumer: FINAL_READ.into(), partition: 0, offset: 3, value: "a".into() });
    ops.push(Op::Send { value: "d".into(), partition: Some(0), idempotent: true });
    ops.push(Op::SendOk { value: "d".into(), partition: 0, offset: -1001 });
    let report = check(&ops, &CheckOptions::default());
    assert_eq!(report.idempotent_duplicates.count, 1, "{}", report.details());
    assert_eq!(report.lost.count, 1, "{}", report.details());
}
