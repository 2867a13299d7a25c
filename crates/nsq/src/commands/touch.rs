//! TOUCH <id>: reset the message's timeout.

use super::{message_id, subscribed};
use crate::codec::Command;
use crate::connection::Conn;
use crate::error::{NsqError, NsqResult};
use sluice_broker::channel::ChannelOpError;

pub fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let sub = subscribed(conn, "TOUCH")?;
    let Some(param) = command.params.get(1) else {
        return Err(NsqError::fatal("E_INVALID", "TOUCH insufficient number of params"));
    };
    let result = match message_id(param)? {
        Some(id) => sub.channel.touch(id, &sub.client, conn.identity.msg_timeout),
        None => Err(ChannelOpError::NotInFlight),
    };
    result
        .map_err(|e| NsqError::client("E_TOUCH_FAILED", format!("TOUCH {} failed {e}", String::from_utf8_lossy(param))))
}
