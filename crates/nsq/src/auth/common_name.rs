//! The subject common name of a client certificate (DER), which nsqd sends its auth server
//! as `common_name`. A minimal, bounds-checked walk of X.509's outer structure (no crate in
//! the tree reads subjects); anything unexpected gives `None`, never a panic.

/// The OID 2.5.4.3 (`commonName`) as DER content bytes.
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
/// `[0] EXPLICIT`: the optional version field at the start of `tbsCertificate`.
const TAG_VERSION: u8 = 0xa0;

/// The last common name in the subject (Go's `pkix.Name` keeps the last one too).
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (tag, certificate, _) = tlv(der)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(certificate)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    if tbs.first() == Some(&TAG_VERSION) {
        tbs = tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, mut subject, _) = tlv(tbs)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let mut common_name = None;
    while !subject.is_empty() {
        let (tag, mut set, rest) = tlv(subject)?;
        subject = rest;
        if tag != TAG_SET {
            return None;
        }
        while !set.is_empty() {
            let (_, attribute, rest) = tlv(set)?;
            set = rest;
            let (tag, oid, value) = tlv(attribute)?;
            if tag == TAG_OID && oid == OID_COMMON_NAME {
                let (_, text, _) = tlv(value)?;
                common_name = Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    common_name
}

/// One DER tag-length-value: `(tag, value, rest)`. Short and long lengths up to 4 bytes.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_name_of_a_certificate_made_by_openssl() {
        let dir = std::env::temp_dir().join(format!("sluice-cn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/O=Sluice/CN=alice/OU=ops", "-keyout", "key.pem", "-outform", "DER", "-out", "cert.der"])
            .current_dir(&dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let der = std::fs::read(dir.join("cert.der")).expect("read cert");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(subject_common_name(&der).as_deref(), Some("alice"));
    }

    #[test]
    fn garbage_gives_none() {
        assert_eq!(subject_common_name(b""), None);
        assert_eq!(subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject_common_name(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
    }
}
