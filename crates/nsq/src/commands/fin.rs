//! FIN <id>: the message is done.

use super::{message_id, subscribed};
use crate::codec::Command;
use crate::connection::Conn;
use crate::error::{NsqError, NsqResult};
use sluice_broker::channel::ChannelOpError;

pub fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    let sub = subscribed(conn, "FIN")?;
    let Some(param) = command.params.get(1) else {
        return Err(NsqError::fatal("E_INVALID", "FIN insufficient number of params"));
    };
    let result = match message_id(param)? {
        Some(id) => sub.channel.fin(id, &sub.client),
        None => Err(ChannelOpError::NotInFlight),
    };
    result.map_err(|e| NsqError::client("E_FIN_FAILED", format!("FIN {} failed {e}", String::from_utf8_lossy(param))))
}
