//! Stream compression negotiated by IDENTIFY: snappy (framing format) or raw deflate, in
//! both directions, from the response after IDENTIFY's on.

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Largest snappy chunk (the framing format's limit on uncompressed data per chunk).
pub(crate) const SNAPPY_CHUNK_MAX: usize = 65_536;
/// Largest compressed chunk a peer may send (snappy's worst-case expansion of a full chunk).
const SNAPPY_FRAME_MAX: usize = 76_490 + 4;
const SNAPPY_STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";
/// Output produced per deflate step; the loop runs until the input is consumed.
const DEFLATE_STEP: usize = 64 * 1024;

pub enum Inflater {
    Plain,
    Snappy(snap::raw::Decoder),
    Deflate(Box<Decompress>),
}

pub enum Deflater {
    Plain,
    Snappy { encoder: Box<snap::raw::Encoder>, started: bool },
    Deflate(Box<Compress>),
}

#[derive(Debug)]
pub struct CorruptStream(pub String);

impl Inflater {
    /// Moves what can be decoded from `raw` into `plain`, stopping once `plain` holds
    /// `limit` bytes; undecoded input stays in `raw`. The limit keeps a compression bomb
    /// (deflate expands up to ~1000x) from growing `plain` past one command's worth: the
    /// caller runs the commands in `plain` and feeds again.
    pub fn feed(&mut self, raw: &mut BytesMut, plain: &mut BytesMut, limit: usize) -> Result<(), CorruptStream> {
        match self {
            Inflater::Plain => {
                plain.extend_from_slice(raw);
                raw.clear();
                Ok(())
            }
            Inflater::Snappy(decoder) => snappy_decode(decoder, raw, plain, limit),
            Inflater::Deflate(d) => deflate_decode(d, raw, plain, limit),
        }
    }
}

fn snappy_decode(
    decoder: &mut snap::raw::Decoder,
    raw: &mut BytesMut,
    plain: &mut BytesMut,
    limit: usize,
) -> Result<(), CorruptStream> {
    while raw.len() >= 4 && plain.len() < limit {
        let kind = raw[0];
        let len = usize::from(raw[1]) | usize::from(raw[2]) << 8 | usize::from(raw[3]) << 16;
        if len > SNAPPY_FRAME_MAX {
            return Err(CorruptStream(format!("snappy chunk of {len} bytes")));
        }
        if raw.len() < 4 + len {
            break;
        }
        let chunk = raw.split_to(4 + len);
        let data = &chunk[4..];
        match kind {
            0x00 | 0x01 => {
                if data.len() < 4 {
                    return Err(CorruptStream("snappy chunk without checksum".into()));
                }
                let decoded = if kind == 0x00 {
                    let n = snap::raw::decompress_len(&data[4..]).map_err(|e| CorruptStream(e.to_string()))?;
                    if n > SNAPPY_CHUNK_MAX {
                        return Err(CorruptStream(format!("snappy chunk expands to {n} bytes")));
                    }
                    decoder.decompress_vec(&data[4..]).map_err(|e| CorruptStream(e.to_string()))?
                } else {
                    data[4..].to_vec()
                };
                let expected = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                if masked_crc(&decoded) != expected {
                    return Err(CorruptStream("snappy chunk checksum mismatch".into()));
                }
                plain.extend_from_slice(&decoded);
            }
            0xff if data != &SNAPPY_STREAM_ID[4..] => {
                return Err(CorruptStream("bad snappy stream identifier".into()));
            }
            0x02..=0x7f => return Err(CorruptStream(format!("unskippable snappy chunk type {kind}"))),
            _ => {} // padding and skippable chunks
        }
    }
    Ok(())
}

fn deflate_decode(
    d: &mut Decompress,
    raw: &mut BytesMut,
    plain: &mut BytesMut,
    limit: usize,
) -> Result<(), CorruptStream> {
    while !raw.is_empty() && plain.len() < limit {
        let mut out = Vec::with_capacity(DEFLATE_STEP.min(limit - plain.len()));
        let before_in = d.total_in();
        let status =
            d.decompress_vec(raw, &mut out, FlushDecompress::None).map_err(|e| CorruptStream(e.to_string()))?;
        let consumed = (d.total_in() - before_in) as usize;
        raw.advance(consumed);
        plain.extend_from_slice(&out);
        if status == Status::StreamEnd || (consumed == 0 && out.is_empty()) {
            break;
        }
    }
    Ok(())
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

impl Deflater {
    pub fn deflate(level: u32) -> Deflater {
        Deflater::Deflate(Box::new(Compress::new(Compression::new(level), false)))
    }

    pub fn snappy() -> Deflater {
        Deflater::Snappy { encoder: Box::new(snap::raw::Encoder::new()), started: false }
    }

    /// Encodes `plain` for the wire (a deflate sync flush, so the peer can decode it now).
    pub fn encode(&mut self, plain: &[u8], wire: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Deflater::Plain => wire.extend_from_slice(plain),
            Deflater::Snappy { encoder, started } => {
                if !*started {
                    wire.extend_from_slice(SNAPPY_STREAM_ID);
                    *started = true;
                }
                for chunk in plain.chunks(SNAPPY_CHUNK_MAX) {
                    let compressed = encoder.compress_vec(chunk).map_err(std::io::Error::other)?;
                    let (kind, data) =
                        if compressed.len() < chunk.len() { (0u8, &compressed[..]) } else { (1u8, chunk) };
                    let len = data.len() + 4;
                    wire.extend_from_slice(&[kind, len as u8, (len >> 8) as u8, (len >> 16) as u8]);
                    wire.extend_from_slice(&masked_crc(chunk).to_le_bytes());
                    wire.extend_from_slice(data);
                }
            }
            Deflater::Deflate(c) => {
                let mut input = plain;
                loop {
                    wire.reserve(DEFLATE_STEP);
                    let before_in = c.total_in();
                    c.compress_vec(input, wire, FlushCompress::Sync).map_err(std::io::Error::other)?;
                    input = &input[(c.total_in() - before_in) as usize..];
                    // Done when all input is taken and the flush left spare room in the output.
                    if input.is_empty() && wire.len() < wire.capacity() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mut deflater: Deflater, mut inflater: Inflater) {
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        deflater.encode(&message, &mut wire).expect("encode");
        deflater.encode(b"tail", &mut wire).expect("encode");
        let mut raw = BytesMut::new();
        let mut plain = BytesMut::new();
        for piece in wire.chunks(777) {
            raw.extend_from_slice(piece);
            inflater.feed(&mut raw, &mut plain, usize::MAX).expect("feed");
        }
        assert_eq!(plain.len(), message.len() + 4);
        assert_eq!(&plain[..message.len()], &message[..]);
    }

    #[test]
    fn deflate_bomb_expands_only_up_to_the_limit_per_feed() {
        let zeros = vec![0u8; 8 << 20];
        let mut wire = Vec::new();
        Deflater::deflate(9).encode(&zeros, &mut wire).expect("encode");
        assert!(wire.len() < 64 * 1024, "8 MiB of zeros compress to {} bytes", wire.len());
        let mut inflater = Inflater::Deflate(Box::new(Decompress::new(false)));
        let (mut raw, mut plain) = (BytesMut::from(&wire[..]), BytesMut::new());
        let mut total = 0;
        while !raw.is_empty() {
            inflater.feed(&mut raw, &mut plain, 100_000).expect("feed");
            assert!(plain.len() <= 100_000, "plain grew to {}", plain.len());
            total += plain.len();
            plain.clear();
        }
        assert_eq!(total, zeros.len());
    }

    #[test]
    fn snappy_and_deflate_streams_round_trip_in_pieces() {
        round_trip(Deflater::snappy(), Inflater::Snappy(snap::raw::Decoder::new()));
        round_trip(Deflater::deflate(6), Inflater::Deflate(Box::new(Decompress::new(false))));
    }
}
