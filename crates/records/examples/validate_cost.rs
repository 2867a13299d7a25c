//! Prints what `validate_produced` costs per produced batch, against a baseline measured in the
//! same run: copying the batch once (the produce path already copies it into a `Vec`).
//! `cargo run --release -p sluice-records --example validate_cost`

use bytes::Bytes;
use kafka_protocol::records::Compression;
use sluice_records::convert::{encode_batch, new_record, validate_produced};
use std::time::{Duration, Instant};

/// Each measurement runs at least this long, so a shared machine's noise averages out.
const RUN_TIME_MIN: Duration = Duration::from_millis(500);

fn main() {
    println!("records x value bytes | codec | batch bytes | copy us | validate us | validate/copy");
    for (records, size) in [(1, 100), (500, 100), (100, 10_000)] {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let batch = batch(records, size, compression);
            validate_produced(&batch).expect("a valid batch");
            let copy = per_call(|| std::hint::black_box(batch.to_vec()).len());
            let check = per_call(|| usize::from(validate_produced(std::hint::black_box(&batch)).is_ok()));
            println!(
                "{records:>7} x {size:>6} | {compression:?} | {:>11} | {:>7.2} | {:>11.2} | {:>6.1}",
                batch.len(),
                copy.as_secs_f64() * 1e6,
                check.as_secs_f64() * 1e6,
                check.as_secs_f64() / copy.as_secs_f64()
            );
        }
    }
}

fn batch(records: usize, size: usize, compression: Compression) -> Vec<u8> {
    let value: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let records: Vec<_> = (0..records)
        .map(|i| new_record(i as i64, 1_700_000_000_000 + i as i64, None, Some(Bytes::from(value.clone())), Vec::new()))
        .collect();
    encode_batch(&records, compression).expect("encode")
}

/// Mean time of one call of `f`, over at least `RUN_TIME_MIN`.
fn per_call(mut f: impl FnMut() -> usize) -> Duration {
    let started = Instant::now();
    let mut calls = 0u32;
    let mut sink = 0usize;
    while started.elapsed() < RUN_TIME_MIN {
        sink = sink.wrapping_add(f());
        calls += 1;
    }
    std::hint::black_box(sink);
    started.elapsed() / calls
}
