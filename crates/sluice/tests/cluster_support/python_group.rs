//! A kafka-python (Debian's 2.0.2) KafkaConsumer group member
//! (`tests/clients/python/cluster_group_member.py`) reading a topic, its assignments and reads
//! recorded into a history as it prints them (the same lines as the sarama program).

use super::line_program::LineProgram;
use super::sarama_group::record_line;
use crate::history::Recorder;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Bound on the program leaving its group and exiting once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct PythonGroupConsumer {
    program: LineProgram,
    /// Errors it reported (kafka-python retries most itself).
    pub errors: Arc<AtomicU64>,
}

impl PythonGroupConsumer {
    /// Starts it as consumer `name` of `group` on `topic`.
    pub fn start(bootstrap: &str, topic: &str, group: &str, name: &str, recorder: &Recorder) -> Self {
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/clients/python/cluster_group_member.py");
        let mut command = Command::new("/usr/bin/python3");
        command.arg(script).args([bootstrap, topic, group]);
        let (recorder, name) = (recorder.clone(), name.to_string());
        let errors = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&errors);
        let program =
            LineProgram::start(command, EXIT_TIMEOUT, move |line| record_line(&recorder, &name, &counted, line));
        PythonGroupConsumer { program, errors }
    }

    /// Closes its stdin (it leaves the group) and waits for it; whether it exited cleanly
    /// after printing `done`.
    pub fn stop(&mut self) -> bool {
        self.program.stop()
    }
}
