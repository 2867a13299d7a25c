//! A client program driven over its standard streams (the sarama runners): started with its
//! stdout read line by line on a thread, stopped by closing its stdin (bounded wait, killed
//! past it), and killed when dropped. Only our own child, by its handle.

use crate::common::wait_timeout;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct LineProgram {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Hands each line to `on_line`; true once `on_line` said the program is done.
    reader: Option<JoinHandle<bool>>,
    exit_timeout: Duration,
}

impl LineProgram {
    /// Starts `command`; `on_line` gets each output line and returns false on the last one.
    pub fn start(
        mut command: Command,
        exit_timeout: Duration,
        mut on_line: impl FnMut(&str) -> bool + Send + 'static,
    ) -> LineProgram {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let name = command.get_program().to_string_lossy().to_string();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !on_line(&line) {
                    return true;
                }
            }
            // Said at once, so a test waiting on its output does not read it as a stall.
            eprintln!("{name}: output ended before its last line (the program exited or crashed)");
            false
        });
        LineProgram { child, stdin, reader: Some(reader), exit_timeout }
    }

    /// Closes its stdin and waits for it; whether it exited cleanly after its last line.
    pub fn stop(&mut self) -> bool {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child, self.exit_timeout);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let done = self.reader.take().is_some_and(|r| r.join().unwrap_or(false));
        status.is_some_and(|s| s.success()) && done
    }
}

impl Drop for LineProgram {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
