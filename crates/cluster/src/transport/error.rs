//! How a call over the transport can fail (before any reply of the peer's own).

use std::time::Duration;

use super::message::CodecError;

/// Why a call got no usable reply. The Raft network maps each to an openraft `RPCError` so
/// that openraft backs off and retries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer could not be dialled, or its last dial failed so recently that the backoff
    /// has not yet passed.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    /// The connection died (closed, reset, garbage) while the call was waiting.
    #[error("connection to {addr} lost")]
    ConnectionLost { addr: String },
    /// No reply within the call's deadline.
    #[error("no reply from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    /// The request would not fit in one frame; nothing was sent.
    #[error("request is over the frame maximum")]
    TooLarge,
    /// The request could not be encoded, or the reply decoded.
    #[error(transparent)]
    Codec(CodecError),
    /// The peer answered with a reply of another kind than the request (a bug on one side).
    #[error("peer {addr} answered {what}")]
    UnexpectedReply { addr: String, what: String },
    /// The peer does not run the group the call was for.
    #[error("peer {addr} runs no group {group}")]
    NoSuchGroup { addr: String, group: String },
    /// The peer's handler refused a node-level request, saying why.
    #[error("peer {addr} refused: {message}")]
    Remote { addr: String, message: String },
}

impl From<CodecError> for TransportError {
    fn from(error: CodecError) -> Self {
        if error.is_size_limit() {
            TransportError::TooLarge
        } else {
            TransportError::Codec(error)
        }
    }
}
