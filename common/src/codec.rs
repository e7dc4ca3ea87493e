//! The one place where values become bytes: stored records and socket frames.
//!
//! Records carry a schema version byte in front of their bincode body so that a
//! later release can tell old records from new ones and migrate them. Decoding
//! is always bounded, so a corrupt length prefix cannot make us allocate
//! gigabytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the stored record layout. Bump it when a stored type changes in
/// a way bincode cannot read (a field added or reordered), and teach
/// [`decode_record`] to read the previous one.
pub const RECORD_SCHEMA_VERSION: u8 = 1;

/// Largest stored record we will decode.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

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
}

fn record_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
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
pub fn encode_record_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    out.push(RECORD_SCHEMA_VERSION);
    bincode::serde::encode_into_std_write(value, out, record_config())?;
    Ok(())
}

pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
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
}
