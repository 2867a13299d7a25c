//! SASL messages from unauthenticated clients: PLAIN's message, SCRAM's client-first and
//! client-final parsing, a whole SCRAM exchange against a stored credential (the input split
//! into the two client messages), and a client certificate's subject DN. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_kafka::sasl::plain;
use sluice_kafka::sasl::scram::{
    parse_client_final, parse_client_first, ScramCredential, ScramMechanism, ScramServer, ScramStep,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            let _ = plain::parse(rest);
        }
        1 => {
            if let Ok(first) = parse_client_first(rest) {
                assert!(!first.user.is_empty());
                assert!(first.bare.len() <= rest.len());
            }
            let _ = parse_client_final(rest);
        }
        2 => {
            // Two client messages separated by the first NUL byte.
            let split = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let (first, second) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
            let mechanism = if selector & 0x10 == 0 { ScramMechanism::Sha256 } else { ScramMechanism::Sha512 };
            // The minimum iteration count keeps each run fast enough for the fuzzer.
            let credential = ScramCredential::new(mechanism, b"pencil", b"fuzz-salt", 1);
            let mut server = ScramServer::new(mechanism);
            if let ScramStep::Challenge(_) = server.step(first, |_| Some(credential.clone())) {
                // A random proof must never verify.
                assert!(!matches!(server.step(second, |_| None), ScramStep::Success { .. }));
            }
        }
        _ => {
            let _ = sluice_tls::subject_dn(rest);
        }
    }
});
