//! Helpers for the consumer-group tests: child clients whose output is read line by line
//! while they run, and raw group requests through the shared wire client.
#![allow(dead_code)]

pub mod rebalances;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::common::raw::Raw;
use crate::common::{use_system_libraries, Broker};

/// Which stream a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Out(String),
    Err(String),
}

/// A running client process; killed (SIGKILL) on drop so a failed test leaves nothing behind.
pub struct Streaming {
    pub child: Child,
    lines: Receiver<Line>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<Line>,
}

impl Streaming {
    pub fn spawn(cmd: &mut Command) -> Streaming {
        use_system_libraries(cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(Line::Out(line)).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx2.send(Line::Err(line)).is_err() {
                    break;
                }
            }
        });
        Streaming { child, lines, seen: Vec::new() }
    }

    /// Next line within `timeout`, or `None`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<Line> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads lines until `pred` matches one (returned) or `timeout` passes (panics).
    pub fn wait_for(&mut self, timeout: Duration, what: &str, mut pred: impl FnMut(&Line) -> bool) -> Line {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(line) = self.next_line(left.min(Duration::from_millis(200))) {
                if pred(&line) {
                    return line;
                }
            }
        }
        panic!("timed out after {timeout:?} waiting for {what}; output so far:\n{}", self.transcript());
    }

    /// Every line received so far without blocking.
    pub fn drain(&mut self) -> Vec<Line> {
        let mut got = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line.clone());
            got.push(line);
        }
        got
    }

    pub fn transcript(&self) -> String {
        let lines: Vec<String> = self
            .seen
            .iter()
            .map(|l| match l {
                Line::Out(s) => format!("out| {s}"),
                Line::Err(s) => format!("err| {s}"),
            })
            .collect();
        let start = lines.len().saturating_sub(60);
        lines[start..].join("\n")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: &str) {
        crate::common::send_signal(self.child.id(), signal);
    }

    /// Waits for the process to exit within `timeout`; true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        crate::common::wait_timeout(&mut self.child, timeout).is_some()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Committed offsets of `group` for partitions `0..partitions` of `topic` (OffsetFetch v1
/// over a raw connection: no client caches involved). -1 means no commit.
pub fn committed(broker: &Broker, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let mut raw = Raw::connect(broker);
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes = (0..partitions).collect();
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.topics = Some(vec![t]);
    let resp = raw.request(1, &req);
    let mut out = vec![-1; partitions as usize];
    for topic in resp.topics {
        for p in topic.partitions {
            assert_eq!(p.error_code, 0, "OffsetFetch error for partition {}", p.partition_index);
            if let Some(slot) = out.get_mut(p.partition_index as usize) {
                *slot = p.committed_offset;
            }
        }
    }
    out
}
