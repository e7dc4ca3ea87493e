//! The one place where values become bytes: stored records and socket frames.
//!
//! Records carry a schema version byte in front of their bincode body so that a
//! later release can tell old records from new ones and migrate them. Decoding
//! is always bounded, so a corrupt length prefix cannot make us allocate
//! gigabytes; and a record is refused when it is written if it is larger than
//! what decoding takes, so that no writer can store a record that can never
//! be read again.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the stored record layout. Bump it when a stored type changes in
/// a way bincode cannot read (a field added or reordered), and teach
/// [`decode_record`] to read the previous one.
pub const RECORD_SCHEMA_VERSION: u8 = 1;

/// Largest stored record (version byte and body, as stored): a larger one is
/// refused when it is encoded, and not decoded.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// What decoding one record may claim. bincode counts what a value takes in
/// memory, not on disk: a one-byte integer counts 8 (16 for a 128-bit one),
/// a string its length and 8. So a record of [`MAX_RECORD_BYTES`] may count
/// up to 16 times that, and must still decode; a corrupt length prefix can
/// claim no more than this.
const RECORD_DECODE_BUDGET: usize = 16 * MAX_RECORD_BYTES;

/// Largest socket frame either side accepts. The frame codec enforces it
/// before a byte of payload is buffered; the decoder enforces it again.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record is empty")]
    Empty,
    #[error("record has schema version {found}, this build reads version {RECORD_SCHEMA_VERSION}")]
    UnknownVersion { found: u8 },
    #[error("cannot encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("{extra} trailing bytes after the value")]
    Trailing { extra: usize },
    #[error("a record of {bytes} bytes is too large (at most {MAX_RECORD_BYTES})")]
    TooLarge { bytes: usize },
}

fn record_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<RECORD_DECODE_BUDGET>()
}

fn frame_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Encodes a stored record: one version byte, then the bincode body.
pub fn encode_record<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    encode_record_into(value, &mut out)?;
    Ok(out)
}

/// Like [`encode_record`] into a caller's buffer (cleared first), for hot loops.
/// A record over [`MAX_RECORD_BYTES`] is an error (the buffer is cleared).
pub fn encode_record_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    out.push(RECORD_SCHEMA_VERSION);
    bincode::serde::encode_into_std_write(value, out, record_config())?;
    if out.len() > MAX_RECORD_BYTES {
        let bytes = out.len();
        out.clear();
        return Err(CodecError::TooLarge { bytes });
    }
    Ok(())
}

pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(CodecError::TooLarge { bytes: bytes.len() });
    }
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != RECORD_SCHEMA_VERSION {
        return Err(CodecError::UnknownVersion { found: version });
    }
    decode_exact(body, record_config())
}

/// Encodes one protocol message (the frame payload; the length prefix is the
/// transport's business).
pub fn encode_frame<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, frame_config())?)
}

pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_exact(bytes, frame_config())
}

fn decode_exact<T: DeserializeOwned>(
    bytes: &[u8],
    config: impl bincode::config::Config,
) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Customer};

    #[test]
    fn record_round_trip_carries_version() {
        let c = Customer {
            customer_no: "K-1".into(),
            first_name: "Jürgen".into(),
            last_name: "Weiß".into(),
            address: Address {
                street: "Hauptstraße".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let bytes = encode_record(&c).expect("encode");
        assert_eq!(bytes[0], RECORD_SCHEMA_VERSION);
        let back: Customer = decode_record(&bytes).expect("decode");
        assert_eq!(back, c);
    }

    #[test]
    fn rejects_unknown_version_empty_and_trailing() {
        let mut bytes = encode_record(&42u32).expect("encode");
        bytes[0] = 99;
        assert!(matches!(
            decode_record::<u32>(&bytes),
            Err(CodecError::UnknownVersion { found: 99 })
        ));
        assert!(matches!(decode_record::<u32>(&[]), Err(CodecError::Empty)));
        let mut bytes = encode_record(&42u32).expect("encode");
        bytes.push(0);
        assert!(matches!(
            decode_record::<u32>(&bytes),
            Err(CodecError::Trailing { extra: 1 })
        ));
    }

    #[test]
    fn huge_length_prefix_is_refused_not_allocated() {
        // A Vec<u8> claiming u64::MAX elements: varint tag 253 then 8 bytes.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        let r = decode_frame::<Vec<u8>>(&bytes);
        assert!(r.is_err());
    }

    #[test]
    fn a_record_too_large_to_read_back_is_refused_when_written() {
        // Just at the limit: written, and read back.
        let fits = vec![7u8; MAX_RECORD_BYTES - 1 - 5];
        let bytes = encode_record(&serde_bytes::ByteBuf::from(fits.clone())).expect("fits");
        assert_eq!(bytes.len(), MAX_RECORD_BYTES);
        let back: serde_bytes::ByteBuf = decode_record(&bytes).expect("decode");
        assert_eq!(back.into_vec(), fits);
        // One byte more: refused, and the buffer holds nothing.
        let mut out = Vec::new();
        let e = encode_record_into(&"x".repeat(MAX_RECORD_BYTES), &mut out).expect_err("too large");
        assert!(matches!(e, CodecError::TooLarge { .. }), "{e}");
        assert!(out.is_empty());
    }

    #[test]
    fn every_record_that_is_written_is_read_back() {
        // Small integers take one byte each but count eight when decoded:
        // the worst a record can be, and it still decodes.
        let ids = vec![1u64; MAX_RECORD_BYTES - 8];
        let bytes = encode_record(&ids).expect("fits");
        assert!(bytes.len() <= MAX_RECORD_BYTES);
        let back: Vec<u64> = decode_record(&bytes).expect("read back");
        assert_eq!(back.len(), ids.len());
        // A record over the limit (from a build that wrote one) is not decoded.
        let mut over = bytes;
        over.resize(MAX_RECORD_BYTES + 1, 0);
        assert!(matches!(
            decode_record::<Vec<u64>>(&over),
            Err(CodecError::TooLarge { .. })
        ));
    }
}
