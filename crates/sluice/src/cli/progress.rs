//! A live progress line on stderr for `sluice bench`, drawn only when stderr is a terminal
//! (logs and CI output stay clean). Hand-written: one thread redrawing every 200 ms.

use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(200);
const BAR_WIDTH: usize = 30;

/// Counters the workers bump and the progress line reads.
#[derive(Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing `label` progress towards `total` messages, if stderr is a terminal.
    pub fn start(label: &str, total: u64, counters: Arc<Counters>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { stop, thread: None };
        }
        let label = label.to_string();
        let stop_flag = Arc::clone(&stop);
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                std::thread::sleep(REDRAW_EVERY);
                draw(&label, total, &counters, started.elapsed());
            }
        });
        Progress { stop, thread: Some(thread) }
    }

    /// Stops drawing and clears the line, so the summary starts on a clean one.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
            eprint!("\r\x1b[2K");
        }
    }
}

fn draw(label: &str, total: u64, counters: &Counters, elapsed: Duration) {
    let done = counters.messages.load(Ordering::Relaxed);
    let bytes = counters.bytes.load(Ordering::Relaxed);
    let fraction = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
    let filled = (fraction * BAR_WIDTH as f64) as usize;
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let line = format!(
        "\r\x1b[2K{label} [{}{}] {done}/{total} msgs  {:.0} msg/s  {:.2} MB/s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        done as f64 / seconds,
        // MB = 10^6 bytes, as in the summary.
        bytes as f64 / 1e6 / seconds
    );
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.flush();
}
