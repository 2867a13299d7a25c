//! One module per verb; `exec` is the flat dispatch. Each handler checks state, then
//! argument count, then parses, then ranges against a limit, before acting (as nsqd).

mod auth;
mod cls;
mod fin;
#[doc(hidden)]
pub mod fuzz_entry;
mod identify;
mod publish;
mod rdy;
mod req;
mod sub;
mod touch;

use crate::codec::Command;
use crate::connection::{Conn, ConnState, Subscription};
use crate::error::{NsqError, NsqResult};
use sluice_broker::channel::MessageId;

/// Every verb `exec` knows, in one list so `/metrics` can time each by its index.
pub const VERBS: [&str; 12] =
    ["IDENTIFY", "FIN", "RDY", "REQ", "PUB", "MPUB", "DPUB", "NOP", "TOUCH", "SUB", "CLS", "AUTH"];

/// The index of `verb` in `VERBS`, or `VERBS.len()` for an unknown one.
pub fn verb_index(verb: &[u8]) -> usize {
    VERBS.iter().position(|known| known.as_bytes() == verb).unwrap_or(VERBS.len())
}

pub async fn exec(conn: &mut Conn, command: Command) -> NsqResult<()> {
    if command.verb() != b"IDENTIFY" {
        enforce_tls_policy(conn, command.verb())?;
    }
    match command.verb() {
        b"IDENTIFY" => identify::run(conn, &command),
        b"FIN" => fin::run(conn, &command),
        b"RDY" => rdy::run(conn, &command),
        b"REQ" => req::run(conn, &command),
        b"PUB" => publish::publish(conn, &command).await,
        b"MPUB" => publish::mpub(conn, &command).await,
        b"DPUB" => publish::dpub(conn, &command).await,
        b"NOP" => Ok(()),
        b"TOUCH" => touch::run(conn, &command),
        b"SUB" => sub::run(conn, &command).await,
        b"CLS" => cls::run(conn),
        b"AUTH" => auth::run(conn, &command).await,
        other => Err(NsqError::fatal("E_INVALID", format!("invalid command {}", String::from_utf8_lossy(other)))),
    }
}

/// nsqd's `--tls-required`: nothing but IDENTIFY before the connection is upgraded to TLS.
fn enforce_tls_policy(conn: &Conn, verb: &[u8]) -> NsqResult<()> {
    let required = conn.config.tls.as_ref().is_some_and(|tls| tls.required);
    if required && !conn.tls {
        let verb = String::from_utf8_lossy(verb);
        return Err(NsqError::fatal("E_INVALID", format!("cannot {verb} in current state (TLS required)")));
    }
    Ok(())
}

/// The subscription a FIN/REQ/TOUCH acts on, checked the way nsqd checks state.
fn subscribed<'a>(conn: &'a Conn, verb: &str) -> NsqResult<&'a Subscription> {
    match (&conn.sub, conn.state) {
        (Some(sub), ConnState::Subscribed | ConnState::Closing) => Ok(sub),
        _ => Err(NsqError::fatal("E_INVALID", format!("cannot {verb} in current state"))),
    }
}

/// A message id parameter: 16 bytes, or nsqd's fatal error. Ids that are 16 bytes but name
/// nothing this broker sent fail later as "not in flight", as in nsqd.
fn message_id(param: &[u8]) -> NsqResult<Option<MessageId>> {
    if param.len() != sluice_broker::channel::id::MESSAGE_ID_LEN {
        return Err(NsqError::fatal("E_INVALID", "invalid message ID"));
    }
    Ok(MessageId::parse(param))
}

/// A count or timeout parameter read as nsqd reads it: decimal digits only (so `-1` or `+1`
/// do not parse), an empty parameter is 0, and overflow wraps as Go's uint64 arithmetic does.
fn base10(param: &[u8]) -> Option<i64> {
    param
        .iter()
        .try_fold(0u64, |n, d| d.is_ascii_digit().then(|| n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))))
        .map(|n| n as i64)
}
