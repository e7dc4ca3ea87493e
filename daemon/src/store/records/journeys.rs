//! Journey stages as last derived, one record per recipient (M5): what the
//! planner's journey pass (`planner::journey`) found, after an import that
//! changed data and on every daily plan. Derived data: never journaled
//! (an import rolled back is followed by no pass; the next one re-derives).
//!
//! Writes the tree `journeys` of its parent, `records`; imports nothing
//! else of the store but `db` and the leaves.

use touchpoint_common::domain::JourneyRecord;

use super::Records;
use crate::store::db::{decode, encode};
use crate::store::error::Result;

/// Journey records written per sled batch: one batch of every customer's
/// record (the first derivation of a tenant) is held whole in memory.
const JOURNEY_BATCH: usize = 1024;

impl Records {
    pub(in crate::store) fn journey(&self, customer_no: &str) -> Result<Option<JourneyRecord>> {
        self.journeys
            .get(customer_no.as_bytes())
            .map_err(self.db.err())?
            .map(|b| {
                self.note_read();
                decode("journeys", &b)
            })
            .transpose()
    }

    /// Every stored journey in customer-number order.
    pub(in crate::store) fn journeys(
        &self,
    ) -> impl Iterator<Item = Result<(String, JourneyRecord)>> + '_ {
        self.journeys.iter().map(move |kv| {
            self.note_read();
            let (k, v) = kv.map_err(self.db.err())?;
            Ok((
                String::from_utf8_lossy(&k).into_owned(),
                decode("journeys", &v)?,
            ))
        })
    }

    /// Writes the changed journeys in batches of [`JOURNEY_BATCH`] (derived
    /// records: a crash between two leaves the rest to the next
    /// derivation, which derives them all on a reopened store): `None`
    /// removes a record (the customer is gone or merged into another).
    /// Changes no data version: a journey is derived from the data, not
    /// part of it. Marks the store for the shared flusher.
    pub(in crate::store) fn write_journeys(
        &self,
        changes: &[(String, Option<JourneyRecord>)],
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.db.writable()?;
        for chunk in changes.chunks(JOURNEY_BATCH) {
            let mut batch = sled::Batch::default();
            for (no, record) in chunk {
                match record {
                    Some(r) => batch.insert(no.as_bytes(), encode("journeys", r)?),
                    None => batch.remove(no.as_bytes()),
                }
            }
            self.journeys.apply_batch(batch).map_err(self.db.err())?;
        }
        self.db.touch();
        Ok(())
    }
}
