//! Tenant identifiers. A tenant id names a directory on disk, so it is validated
//! before it is ever joined to a path.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest accepted tenant id, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// A validated tenant id: 1 to 64 characters of `a-z`, `0-9`, `-` and `_`,
/// starting with a letter or digit. Lower case only, so that two tenants can
/// never share a directory on a case-insensitive file system.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id {0:?} is longer than {MAX_TENANT_ID_LEN} characters")]
    TooLong(String),
    #[error("tenant id {id:?} contains {ch:?}; allowed are a-z, 0-9, '-' and '_'")]
    BadChar { id: String, ch: char },
    #[error("tenant id {0:?} must start with a letter or digit")]
    BadStart(String),
}

impl TenantId {
    pub fn new(id: impl Into<String>) -> Result<Self, TenantIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong(id));
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(TenantIdError::BadChar { id, ch });
        }
        // Rules out ".", "..", "-rf" and other names that mean something to a shell or a path.
        if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(TenantIdError::BadStart(id));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Deserialisation validates too: a tenant id read from a frame or a file is
// untrusted input.
impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_ids() {
        for id in ["d001", "autohaus-mueller", "a", "x_1-2", &"a".repeat(64)] {
            assert!(TenantId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_unsafe_ids_with_a_reason() {
        assert_eq!(TenantId::new(""), Err(TenantIdError::Empty));
        assert!(matches!(
            TenantId::new("a".repeat(65)),
            Err(TenantIdError::TooLong(_))
        ));
        assert!(matches!(
            TenantId::new("../etc"),
            Err(TenantIdError::BadChar { ch: '.', .. })
        ));
        assert!(matches!(
            TenantId::new(".."),
            Err(TenantIdError::BadChar { .. })
        ));
        assert!(matches!(
            TenantId::new("a/b"),
            Err(TenantIdError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            TenantId::new("a\\b"),
            Err(TenantIdError::BadChar { .. })
        ));
        assert!(matches!(
            TenantId::new("D001"),
            Err(TenantIdError::BadChar { ch: 'D', .. })
        ));
        assert!(matches!(
            TenantId::new("-rf"),
            Err(TenantIdError::BadStart(_))
        ));
        assert!(matches!(
            TenantId::new("a b"),
            Err(TenantIdError::BadChar { ch: ' ', .. })
        ));
        assert!(matches!(
            TenantId::new("ü"),
            Err(TenantIdError::BadChar { .. })
        ));
        let msg = TenantId::new("../x").expect_err("must fail").to_string();
        assert!(msg.contains("\"../x\"") && msg.contains("allowed"), "{msg}");
    }

    #[test]
    fn deserialising_validates() {
        let bytes = crate::codec::encode_frame(&"../../etc".to_string()).expect("encode");
        let r: Result<TenantId, _> = crate::codec::decode_frame(&bytes);
        assert!(r.is_err());
    }
}
