//! nsqd's two error classes: a client error answers and keeps the connection, a fatal one
//! answers and closes it. Both carry nsqd's stable code (`E_INVALID`, ...).

#[derive(Debug, Clone)]
pub struct NsqError {
    pub code: &'static str,
    pub description: String,
    pub fatal: bool,
}

impl NsqError {
    pub fn fatal(code: &'static str, description: impl Into<String>) -> NsqError {
        NsqError { code, description: description.into(), fatal: true }
    }

    pub fn client(code: &'static str, description: impl Into<String>) -> NsqError {
        NsqError { code, description: description.into(), fatal: false }
    }

    /// The error frame's body: `E_CODE description`.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.description)
    }
}

pub type NsqResult<T> = Result<T, NsqError>;

/// Go's `%q` for the ASCII names nsqd quotes in its messages.
pub fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}
