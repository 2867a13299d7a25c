//! REQ <id> <timeout_ms>: send the message back, now or after a delay (clamped to the
//! max REQ timeout, as nsqd 1.x does).

use super::{message_id, subscribed};
use crate::codec::Command;
use crate::connection::Conn;
use crate::error::{NsqError, NsqResult};
use sluice_broker::channel::ChannelOpError;
use std::time::Duration;

pub fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let sub = subscribed(conn, "REQ")?;
    let (Some(param), Some(timeout)) = (command.params.get(1), command.params.get(2)) else {
        return Err(NsqError::fatal("E_INVALID", "REQ insufficient number of params"));
    };
    let id = message_id(param)?;
    let timeout_ms = super::base10(timeout).ok_or_else(|| {
        NsqError::fatal("E_INVALID", format!("REQ could not parse timeout {}", String::from_utf8_lossy(timeout)))
    })?;
    let max_ms = conn.config.max_req_timeout.as_millis() as i64;
    let delay = Duration::from_millis(timeout_ms.clamp(0, max_ms) as u64);
    let result = match id {
        Some(id) => sub.channel.req(id, &sub.client, delay),
        None => Err(ChannelOpError::NotInFlight),
    };
    result.map_err(|e| NsqError::client("E_REQ_FAILED", format!("REQ {} failed {e}", String::from_utf8_lossy(param))))
}
