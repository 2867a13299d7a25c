//! Pure entry point for the fuzz target `nsq_command` in `fuzz/`: a client's byte stream
//! through the codec and every argument parser a handler runs before it touches the broker.

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
