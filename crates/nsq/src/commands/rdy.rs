//! RDY <count>: how many messages the client will hold in flight at once.

use crate::codec::Command;
use crate::connection::{Conn, ConnState};
use crate::error::{NsqError, NsqResult};
use std::sync::atomic::Ordering;

pub fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    if conn.state == ConnState::Closing {
        return Ok(()); // nsqd ignores RDY after CLS
    }
    let Some(sub) = conn.sub.as_ref().filter(|_| conn.state == ConnState::Subscribed) else {
        return Err(NsqError::fatal("E_INVALID", "cannot RDY in current state"));
    };
    let count = match command.params.get(1) {
        None => 1,
        Some(p) => super::base10(p).ok_or_else(|| {
            NsqError::fatal("E_INVALID", format!("RDY could not parse count {}", String::from_utf8_lossy(p)))
        })?,
    };
    let max = conn.config.max_rdy_count;
    if !(0..=max).contains(&count) {
        return Err(NsqError::fatal("E_INVALID", format!("RDY count {count} out of range 0-{max}")));
    }
    sub.client.ready_count.store(count, Ordering::Relaxed);
    Ok(())
}
