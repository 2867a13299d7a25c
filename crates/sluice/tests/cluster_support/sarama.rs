//! A sarama `WaitForAll` SyncProducer (Debian's sarama 1.22, Kafka 2.1.0 protocol,
//! `tests/clients/sarama_cluster/clusterproducer`) writing round-robin to a topic, its
//! sends and outcomes recorded into a history as it prints them.

use crate::common::{go, wait_timeout};
use crate::history::Recorder;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bound on the program finishing its send in flight and exiting once its stdin is closed
/// (a send retries for at most about 40 × 250 ms plus its timeouts).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the Go program once; its path.
fn program() -> std::path::PathBuf {
    go::build_programs("sarama_cluster", "sluiceclustertest", &["./clusterproducer"]).join("clusterproducer")
}

/// The running program.
pub struct SaramaProducer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Records its output; true once it printed `done`.
    reader: Option<JoinHandle<bool>>,
}

impl SaramaProducer {
    /// Starts it: values `<prefix>-<n>`, send n to partition n % `partitions`, at most `max`.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, prefix: &str, max: u64, recorder: &Recorder) -> Self {
        let program = program();
        let mut child = Command::new(&program)
            .args(["-brokers", bootstrap, "-topic", topic, "-partitions", &partitions.to_string()])
            .args(["-max", &max.to_string(), "-prefix", prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let recorder = recorder.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !record_line(&recorder, &line) {
                    return true;
                }
            }
            false
        });
        SaramaProducer { child, stdin, reader: Some(reader) }
    }

    /// Closes its stdin (it stops after the send in flight) and waits for it; whether it
    /// exited cleanly after printing `done`.
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

impl Drop for SaramaProducer {
    fn drop(&mut self) {
        // Only our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records one line of the program's output; returns false on `done`.
fn record_line(recorder: &Recorder, line: &str) -> bool {
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some("send"), Some(value), None) => recorder.send(value, None, false),
        (Some("ok"), Some(value), Some(at)) => {
            let (partition, offset) = at.split_once(' ').unwrap_or_else(|| panic!("bad ok line: {line}"));
            let partition = partition.parse().unwrap_or_else(|e| panic!("bad partition in {line}: {e}"));
            let offset = offset.parse().unwrap_or_else(|e| panic!("bad offset in {line}: {e}"));
            recorder.send_ok(value, partition, offset);
        }
        // An error after the send left: it may be stored or not.
        (Some("err"), Some(value), _) => recorder.send_unknown(value),
        (Some("done"), Some(_), None) => return false,
        _ => panic!("clusterproducer printed an unknown line: {line}"),
    }
    true
}
