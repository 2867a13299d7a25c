//! A Python group member reading a topic, its assignments and reads recorded into a history
//! as it prints them (the same lines as the sarama program): kafka-python's KafkaConsumer
//! (Debian's 2.0.2, `tests/clients/python/cluster_group_member.py`) or confluent-kafka's
//! Consumer over librdkafka (`cluster_group_member_confluent.py`).

use super::line_program::LineProgram;
use super::sarama_group::record_line;
use crate::history::Recorder;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Bound on the program leaving its group and exiting once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which Python client library.
#[derive(Debug, Clone, Copy)]
pub enum PythonClient {
    KafkaPython,
    ConfluentKafka,
}

impl PythonClient {
    fn script(self) -> &'static str {
        match self {
            PythonClient::KafkaPython => "cluster_group_member.py",
            PythonClient::ConfluentKafka => "cluster_group_member_confluent.py",
        }
    }
}

pub struct PythonGroupConsumer {
    program: LineProgram,
    /// Errors it reported (both libraries retry most themselves).
    pub errors: Arc<AtomicU64>,
}

impl PythonGroupConsumer {
    /// Starts it as consumer `name` of `group` on `topic`.
    pub fn start(
        client: PythonClient,
        bootstrap: &str,
        topic: &str,
        group: &str,
        name: &str,
        recorder: &Recorder,
    ) -> Self {
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/clients/python")
            .join(client.script());
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
