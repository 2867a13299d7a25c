//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka serves them (KIP-84): the
//! server side of the exchange, the parsing of the client's two messages, and the derivation
//! of the stored credential. The primitives (SHA-2, HMAC, PBKDF2) come from RustCrypto's
//! crates; this file only composes them as the RFC says.
//!
//! An unknown user gets a challenge with a salt derived from the name and a process secret,
//! as RFC 5802 §5.1 suggests, so the reply to the first message does not tell whether a user
//! exists; the exchange then fails at the proof like a wrong password.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// Kafka's smallest iteration count for SCRAM-SHA-256/512 (`ScramMechanism.minIterations`).
pub const ITERATIONS_MIN: u32 = 4096;
/// Kafka's largest iteration count accepted by AlterUserScramCredentials.
pub const ITERATIONS_MAX: u32 = 16384;
/// Kafka's default iteration count (`kafka-configs --add-config 'SCRAM-SHA-256=[password=…]'`).
pub const ITERATIONS_DEFAULT: u32 = 4096;
/// Random bytes in a new salt and in the server's nonce (Kafka uses about 16).
const RANDOM_BYTES: usize = 24;
/// Longest client message accepted: a user name, a nonce and a proof are far shorter.
pub const MESSAGE_BYTES_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The mechanism's number in Describe/AlterUserScramCredentials (Kafka's `ScramMechanism.type`).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(kind: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.kafka_type() == kind)
    }

    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// SaltedPassword := Hi(password, salt, i), i.e. PBKDF2 with HMAC of this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        match self {
            ScramMechanism::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            ScramMechanism::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// What the server keeps of a password (RFC 5802 §3): never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredential {
    pub fn new(mechanism: ScramMechanism, password: &[u8], salt: &[u8], iterations: u32) -> ScramCredential {
        let salted = mechanism.salted_password(password, salt, iterations);
        ScramCredential::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// From the SaltedPassword a client computed (AlterUserScramCredentials sends that, so the
    /// password itself never travels).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
            iterations,
        }
    }

    /// Whether `password` is the one this credential was made from (SASL/PLAIN).
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &[u8]) -> bool {
        let candidate = ScramCredential::new(mechanism, password, &self.salt, self.iterations);
        bool::from(candidate.stored_key.ct_eq(&self.stored_key))
    }
}

/// A fresh random salt.
pub fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; RANDOM_BYTES];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

/// Why an exchange failed; logged, never sent (the client gets Kafka's generic message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("delegation tokens are not supported")]
    TokenAuth,
    #[error("the authorization id differs from the user name")]
    AuthzId,
    #[error("the nonce does not continue the server's")]
    Nonce,
    #[error("invalid proof")]
    Proof,
    #[error("message after the exchange ended")]
    State,
}

/// The client's first message (`gs2-header client-first-message-bare`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `y,,` or with `a=authzid`: echoed back base64 in the final message's `c=`.
    pub gs2_header: String,
    pub user: String,
    pub nonce: String,
    /// `n=…,r=…[,ext]`: part of the AuthMessage.
    pub bare: String,
}

/// The client's final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// Decoded `c=`: must be the first message's gs2 header.
    pub channel_binding: Vec<u8>,
    pub nonce: String,
    pub proof: Vec<u8>,
    /// Everything before `,p=`: part of the AuthMessage.
    pub without_proof: String,
}

fn text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MESSAGE_BYTES_MAX {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error (RFC 5802 §5.1).
fn decode_sasl_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in a name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

pub fn parse_client_first(message: &[u8]) -> Result<ClientFirst, ScramError> {
    let message = text(message)?;
    let mut parts = message.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("bad channel binding flag")),
    }
    let authzid = match authzid {
        "" => None,
        a => Some(decode_sasl_name(a.strip_prefix("a=").ok_or(ScramError::Malformed("bad authzid"))?)?),
    };
    let mut fields = bare.split(',');
    let user = fields.next().and_then(|f| f.strip_prefix("n=")).ok_or(ScramError::Malformed("no user name"))?;
    let user = decode_sasl_name(user)?;
    let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or(ScramError::Malformed("no nonce"))?;
    if user.is_empty() || !valid_nonce(nonce) {
        return Err(ScramError::Malformed("empty user name or bad nonce"));
    }
    for extension in fields {
        match extension.split_once('=') {
            Some(("tokenauth", value)) if value.eq_ignore_ascii_case("true") => return Err(ScramError::TokenAuth),
            Some((key, _)) if key.len() == 1 => return Err(ScramError::Malformed("unknown mandatory attribute")),
            Some(_) => {}
            None => return Err(ScramError::Malformed("bad extension")),
        }
    }
    if authzid.as_deref().is_some_and(|a| a != user) {
        return Err(ScramError::AuthzId);
    }
    let gs2_header = message[..message.len() - bare.len()].to_string();
    Ok(ClientFirst { gs2_header, user, nonce: nonce.to_string(), bare: bare.to_string() })
}

pub fn parse_client_final(message: &[u8]) -> Result<ClientFinal, ScramError> {
    let message = text(message)?;
    let (without_proof, proof) = message.rsplit_once(",p=").ok_or(ScramError::Malformed("no proof"))?;
    let mut fields = without_proof.split(',');
    let binding = fields.next().and_then(|f| f.strip_prefix("c=")).ok_or(ScramError::Malformed("no binding"))?;
    let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or(ScramError::Malformed("no nonce"))?;
    if fields.any(|f| f.split_once('=').is_none()) {
        return Err(ScramError::Malformed("bad extension"));
    }
    Ok(ClientFinal {
        channel_binding: BASE64.decode(binding).map_err(|_| ScramError::Malformed("binding is not base64"))?,
        nonce: nonce.to_string(),
        proof: BASE64.decode(proof).map_err(|_| ScramError::Malformed("proof is not base64"))?,
        without_proof: without_proof.to_string(),
    })
}

/// A process secret for the salts of unknown users (stable while the process runs, so asking
/// twice gives the same salt, as for a real user).
fn unknown_user_salt(mechanism: ScramMechanism, user: &str) -> Vec<u8> {
    static SECRET: OnceLock<Vec<u8>> = OnceLock::new();
    let secret = SECRET.get_or_init(random_salt);
    let mut salt = mechanism.hmac(secret, user.as_bytes());
    salt.truncate(RANDOM_BYTES);
    salt
}

/// One step of the server's side.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this and wait for the client's next message.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send `final_message` (`v=…`).
    Success {
        user: String,
        final_message: Vec<u8>,
    },
    Failure {
        user: Option<String>,
        error: ScramError,
    },
}

/// The server's side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

enum State {
    AwaitingFirst,
    AwaitingFinal {
        first: ClientFirst,
        server_first: String,
        /// None for an unknown user: the proof can never match.
        credential: Option<ScramCredential>,
    },
    Done,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer { mechanism, state: State::AwaitingFirst }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Feeds the client's next message; `lookup` finds the user's stored credential.
    pub fn step(&mut self, message: &[u8], lookup: impl FnOnce(&str) -> Option<ScramCredential>) -> ScramStep {
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingFirst => match parse_client_first(message) {
                Ok(first) => self.challenge(first, lookup),
                Err(error) => ScramStep::Failure { user: None, error },
            },
            State::AwaitingFinal { first, server_first, credential } => {
                let user = first.user.clone();
                match self.verify(message, &first, &server_first, credential) {
                    Ok(final_message) => ScramStep::Success { user, final_message },
                    Err(error) => ScramStep::Failure { user: Some(user), error },
                }
            }
            State::Done => ScramStep::Failure { user: None, error: ScramError::State },
        }
    }

    fn challenge(&mut self, first: ClientFirst, lookup: impl FnOnce(&str) -> Option<ScramCredential>) -> ScramStep {
        let credential = lookup(&first.user);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (unknown_user_salt(self.mechanism, &first.user), ITERATIONS_DEFAULT),
        };
        let mut server_nonce = [0u8; RANDOM_BYTES];
        rand::thread_rng().fill_bytes(&mut server_nonce);
        let server_first =
            format!("r={}{},s={},i={}", first.nonce, BASE64.encode(server_nonce), BASE64.encode(salt), iterations);
        let challenge = server_first.clone().into_bytes();
        self.state = State::AwaitingFinal { first, server_first, credential };
        ScramStep::Challenge(challenge)
    }

    fn verify(
        &self,
        message: &[u8],
        first: &ClientFirst,
        server_first: &str,
        credential: Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        let last = parse_client_final(message)?;
        if last.channel_binding != first.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBinding);
        }
        let combined_nonce = server_first.strip_prefix("r=").and_then(|r| r.split(',').next()).unwrap_or_default();
        // librdkafka before 2.6.1 (Debian's kcat and confluent-kafka among them) sends the
        // client nonce once more in front of the combined one (librdkafka#4895); Kafka 3.8.1
        // to 3.9 accept that, and so does Sluice, as exactly that form and no other.
        let librdkafka_form = last.nonce.strip_prefix(first.nonce.as_str()) == Some(combined_nonce);
        if last.nonce != combined_nonce && !librdkafka_form {
            return Err(ScramError::Nonce);
        }
        let credential = credential.ok_or(ScramError::Proof)?;
        if last.proof.len() != self.mechanism.hash_len() {
            return Err(ScramError::Proof);
        }
        let auth_message = format!("{},{},{}", first.bare, server_first, last.without_proof);
        let client_signature = self.mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = last.proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        if !bool::from(self.mechanism.hash(&client_key).ct_eq(&credential.stored_key)) {
            return Err(ScramError::Proof);
        }
        let server_signature = self.mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// The client's side, for the CLI and tests: the final message for a server-first message.
pub fn client_final(
    mechanism: ScramMechanism,
    password: &[u8],
    client_first_bare: &str,
    server_first: &str,
) -> Result<String, ScramError> {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for field in server_first.split(',') {
        match field.split_once('=') {
            Some(("r", v)) => nonce = Some(v),
            Some(("s", v)) => salt = BASE64.decode(v).ok(),
            Some(("i", v)) => iterations = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
        return Err(ScramError::Malformed("server-first message"));
    };
    let salted = mechanism.salted_password(password, &salt, iterations);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
    Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's SCRAM-SHA-256 example, end to end through the server.
    #[test]
    fn rfc7677_example_verifies() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let credential = ScramCredential::new(ScramMechanism::Sha256, b"pencil", &salt, 4096);
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").expect("first");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let server = ScramServer {
            mechanism: ScramMechanism::Sha256,
            state: State::AwaitingFinal { first, server_first: server_first.into(), credential: Some(credential) },
        };
        let final_message = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").expect("first");
        let verified = server.verify(final_message.as_bytes(), &first, server_first, server_credential(&server));
        assert_eq!(verified, Ok(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()));
    }

    fn server_credential(server: &ScramServer) -> Option<ScramCredential> {
        match &server.state {
            State::AwaitingFinal { credential, .. } => credential.clone(),
            _ => None,
        }
    }

    #[test]
    fn a_full_exchange_succeeds_and_a_wrong_password_or_unknown_user_fails() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::new(mechanism, b"right", &random_salt(), ITERATIONS_MIN);
            for (user, password, ok) in [("alice", "right", true), ("alice", "wrong", false), ("bob", "right", false)] {
                let mut server = ScramServer::new(mechanism);
                let bare = format!("n={user},r=clientnonce123");
                let lookup = |u: &str| (u == "alice").then(|| credential.clone());
                let ScramStep::Challenge(server_first) = server.step(format!("n,,{bare}").as_bytes(), lookup) else {
                    panic!("no challenge");
                };
                let server_first = String::from_utf8(server_first).expect("utf8");
                let last = client_final(mechanism, password.as_bytes(), &bare, &server_first).expect("final");
                let step = server.step(last.as_bytes(), |_| None);
                assert_eq!(matches!(step, ScramStep::Success { .. }), ok, "{user}/{password}: {step:?}");
            }
        }
    }

    #[test]
    fn client_first_parsing_follows_rfc5802() {
        let first = parse_client_first(b"n,a=al=2Cice,n=al=2Cice,r=abc,ext=1").expect("parse");
        assert_eq!((first.user.as_str(), first.gs2_header.as_str()), ("al,ice", "n,a=al=2Cice,"));
        assert_eq!(parse_client_first(b"p=tls-unique,,n=a,r=b"), Err(ScramError::ChannelBinding));
        assert_eq!(parse_client_first(b"n,,n=a,r=b,tokenauth=true"), Err(ScramError::TokenAuth));
        assert_eq!(parse_client_first(b"n,a=bob,n=alice,r=b"), Err(ScramError::AuthzId));
        assert!(parse_client_first(b"n,,n=a=xx,r=b").is_err());
        assert!(parse_client_first(b"n,,n=a").is_err());
        assert!(parse_client_first(b"").is_err());
        assert!(parse_client_final(b"c=biws,r=x").is_err());
    }
}
