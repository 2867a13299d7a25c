//! Small fixed-layout checkpoint files (`recovery-point`, `log-start-offset`): a 4-byte
//! magic, a payload of fixed length, then a CRC-32C of both (u32 LE). A file that is
//! missing is None; a short, foreign or damaged one is an error naming the file.

use std::fs;
use std::io;
use std::path::Path;

const MAGIC_LEN: usize = 4;
const CRC_LEN: usize = 4;

/// The file's length for a payload of `payload_len` bytes.
pub const fn sealed_len(payload_len: usize) -> usize {
    MAGIC_LEN + payload_len + CRC_LEN
}

/// `magic`, `payload` and their CRC-32C, ready to be written whole.
pub fn seal(magic: &[u8; MAGIC_LEN], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed_len(payload.len()));
    out.extend_from_slice(magic);
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The payload of `bytes` once its length, magic and checksum are right.
pub fn unseal<'a>(magic: &[u8; MAGIC_LEN], payload_len: usize, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    let len = sealed_len(payload_len);
    if bytes.len() != len {
        return Err(format!("{} bytes, expected {len}", bytes.len()));
    }
    if &bytes[..MAGIC_LEN] != magic {
        return Err("bad magic".to_string());
    }
    let crc_at = len - CRC_LEN;
    let mut crc = [0u8; CRC_LEN];
    crc.copy_from_slice(&bytes[crc_at..]);
    if crc32c::crc32c(&bytes[..crc_at]) != u32::from_le_bytes(crc) {
        return Err("checksum mismatch".to_string());
    }
    Ok(&bytes[MAGIC_LEN..crc_at])
}

/// The file's bytes, None when it does not exist; other errors name the file.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// An i64 stored little-endian at `at` in `payload`.
pub fn i64_at(payload: &[u8], at: usize) -> i64 {
    let mut out = [0u8; 8];
    out.copy_from_slice(&payload[at..at + 8]);
    i64::from_le_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves a sealed payload comes back, and a wrong length, magic or any flipped byte
    /// is refused.
    #[test]
    fn seals_and_refuses_damage() {
        let sealed = seal(b"TST1", &[1, 2, 3]);
        assert_eq!(sealed.len(), sealed_len(3));
        assert_eq!(unseal(b"TST1", 3, &sealed), Ok(&[1u8, 2, 3][..]));
        assert!(unseal(b"TST2", 3, &sealed).is_err());
        assert!(unseal(b"TST1", 4, &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(unseal(b"TST1", 3, &bad).is_err(), "byte {i} flipped");
        }
    }
}
