//! A sarama ConsumerGroup member (Debian's sarama 1.22, Kafka 2.1.0 protocol,
//! `tests/clients/sarama_cluster/clustergroup`) reading a topic, its assignments recorded as
//! resets and its reads as polls into a history as it prints them.

use crate::common::{go, wait_timeout};
use crate::history::Recorder;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Bound on the program leaving its group and exiting once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn program() -> std::path::PathBuf {
    go::build_programs("sarama_cluster", "sluiceclustertest", &["./clustergroup"]).join("clustergroup")
}

/// The running program.
pub struct SaramaGroupConsumer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Records its output; true once it printed `done`.
    reader: Option<JoinHandle<bool>>,
    /// Errors it reported (a coordinator change shows some; sarama retries them).
    pub errors: Arc<AtomicU64>,
}

impl SaramaGroupConsumer {
    /// Starts it as consumer `name` of `group` on `topic`.
    pub fn start(bootstrap: &str, topic: &str, group: &str, name: &str, recorder: &Recorder) -> Self {
        let program = program();
        let mut child = Command::new(&program)
            .args(["-brokers", bootstrap, "-topic", topic, "-group", group])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (recorder, name) = (recorder.clone(), name.to_string());
        let errors = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&errors);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !record_line(&recorder, &name, &counted, &line) {
                    return true;
                }
            }
            false
        });
        SaramaGroupConsumer { child, stdin, reader: Some(reader), errors }
    }

    /// Closes its stdin (it leaves the group) and waits for it; whether it exited cleanly
    /// after printing `done`.
    pub fn stop(&mut self) -> bool {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, EXIT_TIMEOUT);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let done = self.reader.take().is_some_and(|r| r.join().unwrap_or(false));
        status.is_some_and(|s| s.success()) && done
    }
}

impl Drop for SaramaGroupConsumer {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records one line of the program's output; returns false on `done`.
fn record_line(recorder: &Recorder, name: &str, errors: &AtomicU64, line: &str) -> bool {
    let mut words = line.splitn(4, ' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("assigned"), Some(partition), None, None) => {
            recorder.reset(name, partition.parse().unwrap_or_else(|e| panic!("bad partition in {line}: {e}")));
        }
        (Some("read"), Some(partition), Some(offset), Some(value)) => {
            let partition = partition.parse().unwrap_or_else(|e| panic!("bad partition in {line}: {e}"));
            let offset = offset.parse().unwrap_or_else(|e| panic!("bad offset in {line}: {e}"));
            recorder.poll(name, partition, offset, value);
        }
        (Some("error"), ..) => {
            // Shown, so a test that times out says what sarama saw.
            eprintln!("sarama group consumer {name}: {line}");
            errors.fetch_add(1, Ordering::Relaxed);
        }
        (Some("done"), Some(_), None, None) => return false,
        _ => panic!("clustergroup printed an unknown line: {line}"),
    }
    true
}
