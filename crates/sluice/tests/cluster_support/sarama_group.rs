//! A sarama ConsumerGroup member (Debian's sarama 1.22, Kafka 2.1.0 protocol,
//! `tests/clients/sarama_cluster/clustergroup`) reading a topic, its assignments recorded as
//! resets and its reads as polls into a history as it prints them.

use super::line_program::LineProgram;
use crate::common::go;
use crate::history::Recorder;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bound on the program leaving its group and exiting once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

fn program() -> std::path::PathBuf {
    go::build_programs("sarama_cluster", "sluiceclustertest", &["./clustergroup"]).join("clustergroup")
}

/// The running program.
pub struct SaramaGroupConsumer {
    program: LineProgram,
    /// Errors it reported (a coordinator change shows some; sarama retries them).
    pub errors: Arc<AtomicU64>,
}

impl SaramaGroupConsumer {
    /// Starts it as consumer `name` of `group` on `topic`.
    pub fn start(bootstrap: &str, topic: &str, group: &str, name: &str, recorder: &Recorder) -> Self {
        let mut command = Command::new(program());
        command.args(["-brokers", bootstrap, "-topic", topic, "-group", group]);
        let (recorder, name) = (recorder.clone(), name.to_string());
        let errors = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&errors);
        let program =
            LineProgram::start(command, EXIT_TIMEOUT, move |line| record_line(&recorder, &name, &counted, line));
        SaramaGroupConsumer { program, errors }
    }

    /// Closes its stdin (it leaves the group) and waits for it; whether it exited cleanly
    /// after printing `done`.
    pub fn stop(&mut self) -> bool {
        self.program.stop()
    }
}

/// Records one line of the program's output; returns false on `done`.
pub(super) fn record_line(recorder: &Recorder, name: &str, errors: &AtomicU64, line: &str) -> bool {
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
            eprintln!("group consumer {name}: {line}");
            errors.fetch_add(1, Ordering::Relaxed);
        }
        (Some("done"), Some(_), None, None) => return false,
        _ => panic!("clustergroup printed an unknown line: {line}"),
    }
    true
}
