//! CLS: stop sending messages; the client finishes what it holds and closes.

use crate::connection::{Conn, ConnState};
use crate::error::{NsqError, NsqResult};
use std::sync::atomic::Ordering;

pub fn run(conn: &mut Conn) -> NsqResult<()> {
    if conn.state != ConnState::Subscribed {
        return Err(NsqError::fatal("E_INVALID", "cannot CLS in current state"));
    }
    conn.state = ConnState::Closing;
    if let Some(sub) = &conn.sub {
        sub.client.ready_count.store(0, Ordering::Relaxed);
    }
    conn.respond(b"CLOSE_WAIT");
    Ok(())
}
