//! PUB/SUB throughput over NSQ protocol V2, the shape of nsq's `bench_writer`/`bench_reader`:
//! writers send MPUB batches of fixed-size messages, one reader subscribes with RDY 2500 and
//! FINs everything, reporting msgs/s and delivery latency (publish → receipt) percentiles.
//!
//! usage: nsq_bench [ADDR=127.0.0.1:4150] [MESSAGES=200000] [SIZE=200] [BATCH=200] [WRITERS=2]
//! Works against nsqd or Sluice alike. A benchmark program, not a test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// FINs sent per write: well under RDY 2500.
const FIN_BATCH: usize = 500;
/// `FIN <16-byte id>\n`.
const FIN_LEN: usize = 21;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(b"  V2")?;
    Ok(s)
}

/// Reads one frame: (type, data).
fn frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<i32> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let kind = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    buf.resize(size.saturating_sub(4), 0);
    s.read_exact(buf)?;
    Ok(kind)
}

fn writer(addr: String, topic: String, count: usize, size: usize, batch: usize) -> std::io::Result<()> {
    let mut s = connect(&addr)?;
    let body = vec![b'a'; size];
    let mut buf = Vec::new();
    let mut sent = 0;
    while sent < count {
        let n = batch.min(count - sent);
        let mut cmd = format!("MPUB {topic}\n").into_bytes();
        let len = 4 + n * (4 + size);
        cmd.extend_from_slice(&(len as u32).to_be_bytes());
        cmd.extend_from_slice(&(n as u32).to_be_bytes());
        for _ in 0..n {
            cmd.extend_from_slice(&(size as u32).to_be_bytes());
            cmd.extend_from_slice(&body);
        }
        s.write_all(&cmd)?;
        loop {
            let kind = frame(&mut s, &mut buf)?;
            if kind == 0 && buf == b"_heartbeat_" {
                s.write_all(b"NOP\n")?;
                continue;
            }
            if kind != 0 || buf != b"OK" {
                return Err(std::io::Error::other(format!("MPUB failed: {}", String::from_utf8_lossy(&buf))));
            }
            break;
        }
        sent += n;
    }
    Ok(())
}

/// Receives `count` messages, FINs each, returns latencies in ms.
fn reader(addr: String, topic: String, count: usize) -> std::io::Result<Vec<f64>> {
    let mut s = connect(&addr)?;
    s.write_all(format!("SUB {topic} bench\nRDY 2500\n").as_bytes())?;
    let mut buf = Vec::new();
    let mut latencies = Vec::with_capacity(count);
    let mut fins = Vec::new();
    while latencies.len() < count {
        match frame(&mut s, &mut buf)? {
            2 => {
                let ts = i64::from_be_bytes(buf[0..8].try_into().unwrap_or_default());
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
                latencies.push((now - ts) as f64 / 1e6);
                fins.extend_from_slice(b"FIN ");
                fins.extend_from_slice(&buf[10..26]);
                fins.push(b'\n');
                // Flush FINs well before RDY 2500 is used up, or the server stops sending.
                if fins.len() >= FIN_BATCH * FIN_LEN {
                    s.write_all(&fins)?;
                    fins.clear();
                }
            }
            0 if buf == b"_heartbeat_" => s.write_all(b"NOP\n")?,
            0 => {}
            _ => return Err(std::io::Error::other(String::from_utf8_lossy(&buf).to_string())),
        }
    }
    Ok(latencies)
}

fn main() -> std::io::Result<()> {
    let addr: String = arg(1, "127.0.0.1:4150".to_string());
    let count: usize = arg(2, 200_000);
    let size: usize = arg(3, 200);
    let batch: usize = arg(4, 200);
    let writers: usize = arg(5, 2).max(1);
    let topic = format!("bench_{}", SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0));
    // Create the topic and its channel first so the reader sees every message.
    let mut setup = connect(&addr)?;
    setup.write_all(format!("SUB {topic} bench\n").as_bytes())?;
    frame(&mut setup, &mut Vec::new())?;
    drop(setup);
    std::thread::sleep(Duration::from_millis(200));

    let reader_thread = {
        let (addr, topic) = (addr.clone(), topic.clone());
        std::thread::spawn(move || reader(addr, topic, count))
    };
    let started = Instant::now();
    let per_writer = count / writers;
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let n = if i == writers - 1 { count - per_writer * (writers - 1) } else { per_writer };
            let (addr, topic) = (addr.clone(), topic.clone());
            std::thread::spawn(move || writer(addr, topic, n, size, batch))
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| std::io::Error::other("writer panicked"))??;
    }
    let pub_secs = started.elapsed().as_secs_f64();
    let mut latencies = reader_thread.join().map_err(|_| std::io::Error::other("reader panicked"))??;
    let sub_secs = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let mb = (count * size) as f64 / 1e6;
    println!("PUB: {count} msgs x {size} B in {pub_secs:.2}s = {:.0} msgs/s, {:.1} MB/s (MPUB batch {batch}, {writers} writers)",
        count as f64 / pub_secs, mb / pub_secs);
    println!(
        "SUB: {} msgs in {sub_secs:.2}s = {:.0} msgs/s (RDY 2500, FIN each)",
        latencies.len(),
        latencies.len() as f64 / sub_secs
    );
    println!(
        "latency ms (publish timestamp → receipt; ms resolution): p50 {:.1} p99 {:.1} max {:.1}",
        pct(0.50).unwrap_or(&0.0),
        pct(0.99).unwrap_or(&0.0),
        latencies.last().unwrap_or(&0.0)
    );
    Ok(())
}
