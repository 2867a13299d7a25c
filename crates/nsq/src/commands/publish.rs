//! PUB <topic>, MPUB <topic> (atomic: one batch), DPUB <topic> <defer_ms>.

use crate::codec::Command;
use crate::connection::Conn;
use crate::error::{quoted, NsqError, NsqResult};
use bytes::{Buf, Bytes};
use sluice_broker::channel::is_valid_nsq_name;
use std::time::Duration;

/// MPUB messages accepted in one command (bounds the batch it becomes).
pub const MPUB_MESSAGES_MAX: usize = sluice_broker::channel::records::MESSAGES_PER_BATCH_MAX;

pub(super) fn topic<'a>(command: &'a Command, verb: &str) -> NsqResult<&'a str> {
    let Some(topic) = command.params.get(1) else {
        return Err(NsqError::fatal("E_INVALID", format!("{verb} insufficient number of parameters")));
    };
    // nsqd 1.3 repeats the code inside MPUB's description; clients matching the text see it so.
    let code_again = if verb == "MPUB" { "E_BAD_TOPIC " } else { "" };
    std::str::from_utf8(topic).ok().filter(|t| is_valid_nsq_name(t)).ok_or_else(|| {
        NsqError::fatal("E_BAD_TOPIC", format!("{code_again}{verb} topic name {} is not valid", quoted(topic)))
    })
}

/// The single message body of PUB/DPUB, checked as nsqd checks it.
fn message_body(conn: &Conn, command: &Command, verb: &str) -> NsqResult<Bytes> {
    let size = command
        .body_size
        .ok_or_else(|| NsqError::fatal("E_BAD_MESSAGE", format!("{verb} failed to read message body size")))?;
    if size <= 0 {
        return Err(NsqError::fatal("E_BAD_MESSAGE", format!("{verb} invalid message body size {size}")));
    }
    let max = conn.config.max_msg_size;
    if size as u32 > max {
        return Err(NsqError::fatal("E_BAD_MESSAGE", format!("{verb} message too big {size} > {max}")));
    }
    command.body.clone().ok_or_else(|| NsqError::fatal("E_BAD_MESSAGE", format!("{verb} failed to read message body")))
}

pub async fn publish(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let topic = topic(command, "PUB")?;
    let body = message_body(conn, command, "PUB")?;
    super::auth::check(conn, "PUB", topic, "").await?;
    conn.channels
        .publish(topic, &[body], None)
        .await
        .map_err(|e| NsqError::fatal("E_PUB_FAILED", format!("PUB failed {e}")))?;
    count_published(conn, topic, 1);
    conn.respond(b"OK");
    Ok(())
}

pub async fn dpub(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let topic = topic(command, "DPUB")?;
    let Some(timeout) = command.params.get(2) else {
        return Err(NsqError::fatal("E_INVALID", "DPUB insufficient number of parameters"));
    };
    let defer_ms = super::base10(timeout).ok_or_else(|| {
        NsqError::fatal("E_INVALID", format!("DPUB could not parse timeout {}", String::from_utf8_lossy(timeout)))
    })?;
    let max_ms = conn.config.max_req_timeout.as_millis() as i64;
    if !(0..=max_ms).contains(&defer_ms) {
        return Err(NsqError::fatal("E_INVALID", format!("DPUB timeout {defer_ms} out of range 0-{max_ms}")));
    }
    let body = message_body(conn, command, "DPUB")?;
    super::auth::check(conn, "DPUB", topic, "").await?;
    conn.channels
        .publish(topic, &[body], Some(Duration::from_millis(defer_ms as u64)))
        .await
        .map_err(|e| NsqError::fatal("E_DPUB_FAILED", format!("DPUB failed {e}")))?;
    count_published(conn, topic, 1);
    conn.respond(b"OK");
    Ok(())
}

pub async fn mpub(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let topic = topic(command, "MPUB")?;
    super::auth::check(conn, "MPUB", topic, "").await?;
    let size = command.body_size.ok_or_else(|| NsqError::fatal("E_BAD_BODY", "MPUB failed to read body size"))?;
    if size <= 0 {
        return Err(NsqError::fatal("E_BAD_BODY", format!("MPUB invalid body size {size}")));
    }
    let max = conn.config.max_body_size;
    if size as u32 > max {
        return Err(NsqError::fatal("E_BAD_BODY", format!("MPUB body too big {size} > {max}")));
    }
    let body = command.body.clone().ok_or_else(|| NsqError::fatal("E_BAD_BODY", "MPUB failed to read body"))?;
    let messages = split_mpub(body, conn.config.max_msg_size)?;
    conn.channels
        .publish(topic, &messages, None)
        .await
        .map_err(|e| NsqError::fatal("E_MPUB_FAILED", format!("MPUB failed {e}")))?;
    count_published(conn, topic, messages.len() as u64);
    conn.respond(b"OK");
    Ok(())
}

/// nsqd's per-connection `pub_counts`, shown in `/stats` under `producers`.
fn count_published(conn: &Conn, topic: &str, messages: u64) {
    conn.client.client().update(|details| match details.published.get_mut(topic) {
        Some(count) => *count += messages,
        None => {
            details.published.insert(topic.to_string(), messages);
        }
    });
}

/// `[count][size][body][size][body]...`, every size checked before the body is taken.
pub(super) fn split_mpub(mut body: Bytes, max_msg_size: u32) -> NsqResult<Vec<Bytes>> {
    if body.len() < 4 {
        return Err(NsqError::fatal("E_BAD_BODY", "MPUB failed to read message count"));
    }
    let count = body.get_i32();
    if count <= 0 || count as usize > MPUB_MESSAGES_MAX {
        return Err(NsqError::fatal("E_BAD_BODY", format!("MPUB invalid message count {count}")));
    }
    let mut messages = Vec::with_capacity(count as usize);
    for i in 0..count {
        if body.len() < 4 {
            return Err(NsqError::fatal("E_BAD_MESSAGE", format!("MPUB failed to read message({i}) body size")));
        }
        let size = body.get_i32();
        if size <= 0 {
            return Err(NsqError::fatal("E_BAD_MESSAGE", format!("MPUB invalid message({i}) body size {size}")));
        }
        if size as u32 > max_msg_size {
            return Err(NsqError::fatal("E_BAD_MESSAGE", format!("MPUB message too big {size} > {max_msg_size}")));
        }
        if body.len() < size as usize {
            return Err(NsqError::fatal("E_BAD_MESSAGE", "MPUB failed to read message body"));
        }
        messages.push(body.split_to(size as usize));
    }
    Ok(messages)
}
