//! The staging file of an import: a plain sequential file of the records
//! the dealer's file yields, written by [`super::ImportTxn`] and read back
//! once per group of trees by `apply.rs`.
//!
//! ```text
//! magic "TPSTAGE2" (absent in an earlier version's file)
//! record  op(1) len(u32 LE) bincode record     the first one a Header
//! ```
//!
//! A leaf of the import: uses only the store's error type and file helpers.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use touchpoint_common::domain::{FieldSet, Timestamp};
use touchpoint_common::Date;

use crate::store::error::Result;
use crate::store::files::io_err;

/// Name of the staging file in a tenant's directory while an import is written.
pub const STAGING_FILE: &str = "import.staging";

/// Starts every staging file written by this version. A staging file
/// without it is an earlier version's, which its pending marker may need.
pub(super) const STAGING_MAGIC: &[u8; 8] = b"TPSTAGE2";

pub(super) const OP_HEADER: u8 = 0;
pub(super) const OP_CUSTOMER: u8 = 1;
pub(super) const OP_VEHICLE: u8 = 2;
pub(super) const OP_CONSENT: u8 = 3;
pub(super) const OP_VISIT: u8 = 4;
pub(super) const OP_RESPONSE: u8 = 5;
/// A rejected row's vehicle and customer ([`Rejected`]).
pub(super) const OP_REJECTED: u8 = 6;
/// A customer of a row, with its fields dropped and its export's "as of"
/// ([`Staged`]).
pub(super) const OP_CUSTOMER_ROW: u8 = 7;
/// A vehicle of a row, as [`OP_CUSTOMER_ROW`].
pub(super) const OP_VEHICLE_ROW: u8 = 8;
/// The highest op this version writes.
pub(super) const OP_LAST: u8 = OP_VEHICLE_ROW;

/// Written first into every staging file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) import_id: u64,
    /// Columns the file had; other fields of stored records are kept.
    pub(super) present: FieldSet,
    /// Time stamped on consent statements that carry no date of their own.
    pub(super) now: Timestamp,
}

/// A customer or vehicle of one row of the file: the fields of the row
/// that were dropped (bad optional values: what is stored of them stays),
/// the day the export's data is as of (an older one never overwrites a
/// newer), and the row's line (stale rows are counted once).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Staged<R> {
    pub(super) record: R,
    pub(super) dropped: FieldSet,
    pub(super) as_of: Date,
    pub(super) line: u64,
}

/// Whom a rejected row of the file is about, as far as it could be read:
/// its VIN and customer number, each empty when not read; both empty when
/// neither could be. What earlier imports stored of them is not corrected
/// away by this file (see `apply.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Rejected {
    pub(super) vin: String,
    pub(super) customer_no: String,
}

/// Reads a staging file's records in order.
pub(super) struct Reader<'p> {
    r: BufReader<File>,
    path: &'p Path,
}

impl<'p> Reader<'p> {
    pub(super) fn open(path: &'p Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(io_err(path))?;
        if &magic != STAGING_MAGIC {
            // An earlier version's file starts with its header record.
            r.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        }
        Ok(Self { r, path })
    }

    /// The next record whose op is `wanted`, into `buf`; skips the others.
    pub(super) fn next(
        &mut self,
        buf: &mut Vec<u8>,
        wanted: &dyn Fn(u8) -> bool,
    ) -> Result<Option<u8>> {
        let path = self.path;
        loop {
            let mut head = [0u8; 5];
            match self.r.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(io_err(path)(e)),
            }
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if wanted(head[0]) {
                buf.resize(len, 0);
                self.r.read_exact(buf).map_err(io_err(path))?;
                return Ok(Some(head[0]));
            }
            std::io::copy(&mut (&mut self.r).take(len as u64), &mut std::io::sink())
                .map_err(io_err(path))?;
        }
    }
}

/// Whether a staging file is this version's (or too short to be anything
/// an earlier version could complete), read without following a link.
pub(super) fn is_ours(staging: &Path) -> bool {
    match std::fs::symlink_metadata(staging) {
        Ok(m) if m.is_file() => {
            let mut magic = [0u8; 8];
            File::open(staging)
                .and_then(|mut f| f.read_exact(&mut magic))
                .map(|()| &magic == STAGING_MAGIC)
                // Too short to hold the magic: nothing an earlier version
                // could complete either.
                .unwrap_or(true)
        }
        Ok(_) => true,
        Err(_) => false,
    }
}
