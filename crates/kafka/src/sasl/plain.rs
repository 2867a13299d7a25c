//! SASL/PLAIN (RFC 4616): one message `authzid NUL authcid NUL passwd`. As in Kafka's
//! `PlainSaslServer`, an authorization id other than the user's own is refused.

/// Longest PLAIN message accepted: a name and a password.
pub const MESSAGE_BYTES_MAX: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    pub user: &'a str,
    pub password: &'a [u8],
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("malformed PLAIN message")]
    Malformed,
    #[error("the authorization id differs from the user name")]
    AuthzId,
}

pub fn parse(message: &[u8]) -> Result<PlainMessage<'_>, PlainError> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(PlainError::Malformed);
    }
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PlainError::Malformed);
    };
    let user = std::str::from_utf8(user).map_err(|_| PlainError::Malformed)?;
    if user.is_empty() || password.is_empty() || password.contains(&0) {
        return Err(PlainError::Malformed);
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(PlainError::AuthzId);
    }
    Ok(PlainMessage { user, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_parse() {
        assert_eq!(parse(b"\0alice\0pw"), Ok(PlainMessage { user: "alice", password: b"pw" }));
        assert_eq!(parse(b"alice\0alice\0pw").map(|m| m.user), Ok("alice"));
        assert_eq!(parse(b"bob\0alice\0pw"), Err(PlainError::AuthzId));
        assert_eq!(parse(b"\0alice"), Err(PlainError::Malformed));
        assert_eq!(parse(b"\0\0pw"), Err(PlainError::Malformed));
        assert_eq!(parse(b"\0a\0p\0q"), Err(PlainError::Malformed));
    }
}
