//! Sluice's own AUTH source for deployments without an auth server (`--nsq-auth-tokens-file`):
//! a JSON file of tokens, each the SHA-256 of a secret (never the secret itself) with what an
//! nsqd auth server would answer for it:
//!
//! ```json
//! {"tokens": [{"secret_sha256": "<64 hex digits>", "identity": "billing", "ttl": 3600,
//!   "authorizations": [{"topic": "^orders$", "channels": [".*"], "permissions": ["publish"]}]}]}
//! ```
//!
//! `ttl` defaults to an hour; permissions are checked as the auth server's (`reply.rs`). The file
//! is read at start; a token that is not in it falls through to the auth servers, if any.

use super::reply::{parse_reply, AuthState};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Largest tokens file read: a token is a few hundred bytes.
const FILE_BYTES_MAX: u64 = 16 << 20;
/// A token's permissions are re-checked after an hour unless its entry says otherwise.
const TTL_DEFAULT_S: i64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    secret_sha256: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    identity_url: String,
    ttl: Option<i64>,
    authorizations: Vec<serde_json::Value>,
}

/// The tokens, by the SHA-256 of their secret; each value is the auth reply it stands for.
pub struct Tokens {
    replies: HashMap<[u8; 32], Vec<u8>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.replies.len())
    }
}

impl Tokens {
    /// Reads and checks the file; every problem names the token by its position.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = Vec::new();
        file.take(FILE_BYTES_MAX + 1).read_to_end(&mut text).map_err(|e| format!("{}: {e}", path.display()))?;
        if text.len() as u64 > FILE_BYTES_MAX {
            return Err(format!("{}: larger than {FILE_BYTES_MAX} bytes", path.display()));
        }
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &[u8]) -> Result<Tokens, String> {
        let file: TokensFile = serde_json::from_slice(text).map_err(|e| format!("invalid tokens file: {e}"))?;
        let mut replies = HashMap::with_capacity(file.tokens.len());
        for (i, token) in file.tokens.into_iter().enumerate() {
            let hash = parse_hash(&token.secret_sha256)
                .ok_or_else(|| format!("token {i}: secret_sha256 must be 64 hex digits"))?;
            let reply = serde_json::json!({
                "ttl": token.ttl.unwrap_or(TTL_DEFAULT_S),
                "identity": token.identity,
                "identity_url": token.identity_url,
                "authorizations": token.authorizations,
            });
            let reply = serde_json::to_vec(&reply).map_err(|e| format!("token {i}: {e}"))?;
            parse_reply(&reply).map_err(|e| format!("token {i}: {e}"))?;
            if replies.insert(hash, reply).is_some() {
                return Err(format!("token {i}: the same secret twice"));
            }
        }
        Ok(Tokens { replies })
    }

    /// What `secret` may do, with a fresh TTL; `None` for a secret that is no token here.
    pub fn lookup(&self, secret: &str) -> Option<AuthState> {
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
        let hash: [u8; 32] = digest.as_ref().try_into().ok()?;
        parse_reply(self.replies.get(&hash)?).ok()
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_A_HASH: &str = "9f7ec3d8a2";

    #[test]
    fn tokens_are_found_by_their_hash_and_checked_at_load() {
        let hash = ring::digest::digest(&ring::digest::SHA256, b"s3cret");
        let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let file = format!(
            r#"{{"tokens":[{{"secret_sha256":"{hex}","identity":"billing",
            "authorizations":[{{"topic":"^orders$","channels":[".*"],"permissions":["publish"]}}]}}]}}"#
        );
        let tokens = Tokens::parse(file.as_bytes()).expect("valid file");
        let state = tokens.lookup("s3cret").expect("known secret");
        assert_eq!(state.identity, "billing");
        assert!(state.allows("orders", "") && !state.allows("other", ""));
        assert!(tokens.lookup("S3cret").is_none());
        let bad_hash = file.replace(&hex, NOT_A_HASH);
        assert!(Tokens::parse(bad_hash.as_bytes()).err().unwrap_or_default().contains("64 hex digits"));
        let bad_permission = file.replace("publish", "admin");
        assert!(Tokens::parse(bad_permission.as_bytes()).err().unwrap_or_default().contains("unknown permission"));
        assert!(Tokens::parse(b"{\"tokens\":[], \"extra\":1}").is_err(), "unknown keys are refused");
    }
}
