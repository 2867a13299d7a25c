//! A sarama `WaitForAll` SyncProducer (Debian's sarama 1.22, Kafka 2.1.0 protocol,
//! `tests/clients/sarama_cluster/clusterproducer`) writing round-robin to a topic, its
//! sends and outcomes recorded into a history as it prints them.

use super::line_program::LineProgram;
use crate::common::go;
use crate::history::Recorder;
use std::process::Command;
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
    program: LineProgram,
}

impl SaramaProducer {
    /// Starts it: values `<prefix>-<n>`, send n to partition n % `partitions`, at most `max`.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, prefix: &str, max: u64, recorder: &Recorder) -> Self {
        let mut command = Command::new(program());
        command.args(["-brokers", bootstrap, "-topic", topic, "-partitions", &partitions.to_string()]).args([
            "-max",
            &max.to_string(),
            "-prefix",
            prefix,
        ]);
        let recorder = recorder.clone();
        SaramaProducer { program: LineProgram::start(command, EXIT_TIMEOUT, move |line| record_line(&recorder, line)) }
    }

    /// Closes its stdin (it stops after the send in flight) and waits for it; whether it
    /// exited cleanly after printing `done`.
    pub fn stop(&mut self) -> bool {
        self.program.stop()
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
