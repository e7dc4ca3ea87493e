//! What a store call can fail with. A leaf: every file of the store uses
//! it, it uses none of them.

use touchpoint_common::codec::CodecError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sled {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("corrupt record in {tree}: {source}")]
    Codec {
        tree: &'static str,
        #[source]
        source: CodecError,
    },
    /// A write refused because what it would store could not be read back.
    #[error("not stored in {tree}: {source}")]
    TooLarge {
        tree: &'static str,
        #[source]
        source: CodecError,
    },
    #[error("unknown tenant {0:?}: no dealer policy registers it")]
    UnknownTenant(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A database written by a newer build: this one would misread it.
    #[error("{path} was written by a newer touchpointd (stored schema version {found}; this build reads up to {reads}): run that version or a later one, or restore a backup made by this one")]
    NewerSchema { path: String, found: u8, reads: u8 },
    /// The store cannot serve now but may soon (it is being reopened).
    #[error("{0}")]
    Unavailable(String),
    /// An import failed after it began writing; what it wrote is undone.
    #[error("import #{import_id} into tenant {tenant} failed and nothing of it was stored{}: {source}", if *.rolled_back { "" } else { " (its writes are undone when the store is reopened)" })]
    ImportFailed {
        tenant: String,
        import_id: u64,
        rolled_back: bool,
        #[source]
        source: Box<StoreError>,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
