//! A client certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253:
//! RDNs last first, `CN=alice,OU=ops,O=example`), which is what Kafka's default principal
//! builder makes the SSL principal of (`User:CN=alice,OU=ops,O=example`). Only the subject is
//! read, from a certificate rustls has already verified; a DER reader of a few lines, no
//! cryptography. nsqd's `common_name` (the subject's CN) comes from the same walk.

/// The subject DN of a DER certificate, or `None` if the certificate cannot be read.
pub fn subject_dn(certificate: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    let mut rest = subject(certificate)?;
    while !rest.is_empty() {
        let (tag, set, next) = tlv(rest)?;
        expect(tag, SET)?;
        rdns.push(rdn(set)?);
        rest = next;
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// The subject's common name (the last one, as Go's `pkix.Name` keeps it), unescaped: what
/// nsqd sends its auth server as `common_name`.
pub fn subject_common_name(certificate: &[u8]) -> Option<String> {
    let mut common_name = None;
    let mut rest = subject(certificate)?;
    while !rest.is_empty() {
        let (tag, mut set, next) = tlv(rest)?;
        expect(tag, SET)?;
        rest = next;
        for _ in 0..ATTRIBUTES_PER_RDN_MAX {
            if set.is_empty() {
                break;
            }
            let (tag, pair, after) = tlv(set)?;
            expect(tag, SEQUENCE)?;
            set = after;
            let (tag, oid, value) = tlv(pair)?;
            expect(tag, OID)?;
            if oid == OID_COMMON_NAME {
                common_name = Some(String::from_utf8_lossy(tlv(value)?.1).into_owned());
            }
        }
    }
    common_name
}

/// The content of `tbsCertificate.subject` (a SEQUENCE of RDN SETs).
fn subject(certificate: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = tlv(certificate)?;
    expect(tag, SEQUENCE)?;
    let (tag, mut tbs, _) = tlv(certificate)?;
    expect(tag, SEQUENCE)?;
    // version [0] (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, subject, _) = tlv(tbs)?;
    expect(tag, SEQUENCE)?;
    Some(subject)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// 2.5.4.3, `commonName`, as DER content bytes.
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
/// Most attribute-value pairs read from one RDN, and nesting is none: a bound on the work.
const ATTRIBUTES_PER_RDN_MAX: usize = 16;

fn expect(tag: u8, wanted: u8) -> Option<()> {
    (tag == wanted).then_some(())
}

/// One tag-length-value: (tag, value, what follows).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let bytes = (first & 0x7f) as usize;
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let len = rest[..bytes].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[bytes..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn rdn(mut set: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !set.is_empty() && parts.len() < ATTRIBUTES_PER_RDN_MAX {
        let (tag, pair, next) = tlv(set)?;
        expect(tag, SEQUENCE)?;
        let (tag, oid, value) = tlv(pair)?;
        expect(tag, OID)?;
        parts.push(format!("{}={}", attribute_name(oid)?, attribute_value(value)?));
        set = next;
    }
    Some(parts.join("+"))
}

fn attribute_name(oid: &[u8]) -> Option<String> {
    let dotted = dotted_oid(oid)?;
    let name = match dotted.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return Some(dotted),
    };
    Some(name.to_string())
}

fn dotted_oid(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut arcs = vec![u64::from(first / 40).min(2), u64::from(first) - 40 * u64::from(first / 40).min(2)];
    let mut value: u64 = 0;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    Some(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// A string value, escaped as RFC 2253 says; another type as `#` and its DER in hex.
fn attribute_value(der: &[u8]) -> Option<String> {
    let (tag, value, _) = tlv(der)?;
    let text = match tag {
        0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(value).into_owned(),
        0x1e => {
            let units: Vec<u16> = value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => {
            let whole = &der[..der.len() - tlv(der)?.2.len()];
            return Some(format!("#{}", whole.iter().map(|b| format!("{b:02x}")).collect::<String>()));
        }
    };
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') || (i == 0 && c == '#') || edge_space {
            out.push('\\');
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_reads_as_java_writes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/O=Example, Inc/OU=ops/CN=alice", "-keyout", "k.pem", "-outform", "DER", "-out", "c.der"])
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let der = std::fs::read(dir.path().join("c.der")).expect("read");
        assert_eq!(subject_dn(&der).as_deref(), Some("CN=alice,OU=ops,O=Example\\, Inc"));
        assert_eq!(subject_common_name(&der).as_deref(), Some("alice"));
        assert_eq!(subject_dn(&der[..40]), None);
        assert_eq!(subject_dn(b""), None);
        assert_eq!(subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_common_name(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
