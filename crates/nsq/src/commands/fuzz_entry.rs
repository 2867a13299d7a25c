//! Pure entry points for the fuzz targets `nsq_command`, `nsq_stream` and `nsq_auth` in
//! `fuzz/`: a client's byte stream through the codec and every argument parser a handler runs
//! before it touches the broker; the compressed stream decoders; what AUTH reads from the
//! network (the auth server's HTTP answer and JSON, the client certificate's subject).

use super::identify::IdentifyData;
use super::{message_id, publish};
use crate::codec::{decode, BodyLimits, Command, MAGIC_V2};
use crate::compress::Inflater;
use bytes::BytesMut;
use sluice_broker::channel::is_valid_nsq_name;

/// Commands decoded from one stream at most: bounds a run on a long input of tiny commands.
const COMMANDS_MAX: usize = 10_000;
/// nsqd's defaults for the two body limits (1 MiB message, 5 MiB MPUB/IDENTIFY body).
const LIMITS: BodyLimits = BodyLimits { msg: 1 << 20, body: 5 << 20 };

/// Feeds `bytes` (optionally starting with the `"  V2"` magic) to the command codec and
/// parses each command's arguments. Returns how many commands were decoded.
pub fn parse_commands(bytes: &[u8]) -> usize {
    let bytes = bytes.strip_prefix(MAGIC_V2.as_slice()).unwrap_or(bytes);
    let mut buf = BytesMut::from(bytes);
    let mut decoded = 0;
    while decoded < COMMANDS_MAX {
        match decode(&mut buf, LIMITS) {
            Ok(Some(command)) => {
                decoded += 1;
                parse_arguments(&command);
            }
            Ok(None) | Err(_) => break,
        }
    }
    decoded
}

/// The parsing each verb's handler does before acting; results are dropped, only panics count.
fn parse_arguments(command: &Command) {
    match command.verb() {
        b"FIN" | b"TOUCH" | b"REQ" => {
            let _ = command.params.get(1).map(|p| message_id(p));
            let _ = command.params.get(2).map(|t| std::str::from_utf8(t).ok().and_then(|t| t.parse::<i64>().ok()));
        }
        b"PUB" | b"DPUB" => {
            let _ = publish::topic(command, "PUB");
        }
        b"MPUB" => {
            let _ = publish::topic(command, "MPUB");
            if let Some(body) = &command.body {
                let _ = publish::split_mpub(body.clone(), LIMITS.msg);
            }
        }
        b"IDENTIFY" => {
            if let Some(body) = &command.body {
                let _ = serde_json::from_slice::<IdentifyData>(body);
            }
        }
        b"AUTH" => {
            // The secret goes to the auth server escaped into a query string.
            if let Some(body) = &command.body {
                let secret = String::from_utf8_lossy(body);
                let _ = crate::auth::encode_query(&auth_request(&secret));
            }
        }
        b"SUB" => {
            for name in command.params.iter().skip(1) {
                let _ = std::str::from_utf8(name).map(is_valid_nsq_name);
            }
        }
        _ => {}
    }
}

/// What a connection lets one feed produce (a few commands' worth); fuzzing at the same
/// bound keeps runs fast and checks the bound itself.
const INFLATE_LIMIT: usize = 1 << 20;

/// Feeds `bytes` to the snappy and deflate stream decoders a connection switches to after
/// IDENTIFY, in two pieces so partial chunks are exercised. Returns the plain bytes produced.
pub fn inflate_streams(bytes: &[u8]) -> usize {
    let split = bytes.first().map_or(0, |&b| usize::from(b)).min(bytes.len());
    let mut produced = 0;
    for mut inflater in
        [Inflater::Snappy(snap::raw::Decoder::new()), Inflater::Deflate(Box::new(flate2::Decompress::new(false)))]
    {
        let mut plain = BytesMut::new();
        let mut raw = BytesMut::from(&bytes[..split]);
        if inflater.feed(&mut raw, &mut plain, INFLATE_LIMIT).is_ok() {
            raw.extend_from_slice(&bytes[split..]);
            let _ = inflater.feed(&mut raw, &mut plain, INFLATE_LIMIT);
        }
        assert!(plain.len() <= INFLATE_LIMIT + crate::compress::SNAPPY_CHUNK_MAX);
        produced += plain.len();
    }
    produced
}

fn auth_request(secret: &str) -> crate::auth::AuthRequest<'_> {
    crate::auth::AuthRequest { remote_ip: std::net::IpAddr::from([127, 0, 0, 1]), tls: true, common_name: "", secret }
}

/// What AUTH reads from others: the first byte picks the reader, the rest is its input —
/// 0: an auth server's whole HTTP answer (status, headers, chunked or sized body) and then
/// its JSON; 1: the JSON alone (permissions, regular expressions, TTL); 2: a client
/// certificate (DER) whose subject common name is sent to the auth server. Returns whether
/// the input was accepted.
pub fn auth_inputs(bytes: &[u8]) -> bool {
    let Some((&selector, input)) = bytes.split_first() else { return false };
    match selector % 3 {
        0 => crate::auth::parse_response(input).is_ok_and(|body| crate::auth::parse_reply(&body).is_ok()),
        1 => crate::auth::parse_reply(input).is_ok_and(|state| {
            // Matching runs on every PUB/SUB: any name against the parsed patterns.
            let name = String::from_utf8_lossy(&input[..input.len().min(64)]);
            let _ = state.allows(&name, "") || state.allows(&name, &name);
            true
        }),
        _ => crate::auth::subject_common_name(input).is_some(),
    }
}

#[cfg(test)]
mod tests {
    /// The committed seeds of `nsq_auth` are accepted (so the fuzzer starts from inputs that
    /// reach the deep paths), and nothing panics on their truncations.
    #[test]
    fn auth_seeds_are_accepted_and_truncations_do_not_panic() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/nsq_auth");
        let mut seen = 0;
        for entry in std::fs::read_dir(corpus).expect("nsq_auth corpus") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("seed");
            assert!(super::auth_inputs(&bytes), "a seed is accepted");
            for len in 0..bytes.len() {
                super::auth_inputs(&bytes[..len]);
            }
            seen += 1;
        }
        assert!(seen >= 4);
        assert_eq!(super::parse_commands(b"  V2AUTH\n\x00\x00\x00\x03abc"), 1);
    }
}
