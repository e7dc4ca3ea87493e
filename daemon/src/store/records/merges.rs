//! Merges of the dealer's customers (M3): the merge records and which
//! customers are merged now, with the counters they change. The identity
//! pass decides what to merge; this only stores it.
//!
//! Writes the trees `merges` and `merged` (and the counters) of its parent,
//! `records`; imports nothing else of the store but `db` and the leaves.

use sled::Transactional;
use touchpoint_common::domain::{MergeRecord, Timestamp};

use super::keys::{META_COUNTERS, META_NEXT_MERGE};
use super::Records;
use crate::store::db::{decode, encode_tx, tx_err};
use crate::store::error::{Result, StoreError};

impl Records {
    pub(in crate::store) fn merges(&self, include_undone: bool) -> Result<Vec<MergeRecord>> {
        let mut out = Vec::new();
        for v in self.merges.iter().values().rev() {
            let m: MergeRecord = decode("merges", &v.map_err(self.db.err())?)?;
            if include_undone || m.undone_at.is_none() {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub(in crate::store) fn merge(&self, merge_id: u64) -> Result<Option<MergeRecord>> {
        self.merges
            .get(merge_id.to_be_bytes())
            .map_err(self.db.err())?
            .map(|b| decode("merges", &b))
            .transpose()
    }

    pub(in crate::store) fn merged_into(&self, customer_no: &str) -> Result<Option<MergeRecord>> {
        match self
            .merged
            .get(customer_no.as_bytes())
            .map_err(self.db.err())?
        {
            Some(id) => match <[u8; 8]>::try_from(id.as_ref()) {
                Ok(id) => self.merge(u64::from_be_bytes(id)),
                Err(_) => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub(in crate::store) fn merge_map(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut map = std::collections::HashMap::new();
        // Forward, unlike `merges`: sled walks a tree backwards with one
        // lookup from the root per step. A customer is merged by at most one
        // active merge, so the order does not matter.
        for v in self.merges.iter().values() {
            let m: MergeRecord = decode("merges", &v.map_err(self.db.err())?)?;
            if m.undone_at.is_none() {
                map.insert(m.merged, m.survivor);
            }
        }
        Ok(map)
    }

    pub(in crate::store) fn next_merge_id(&self) -> Result<u64> {
        let before = self.data_version()?;
        let id = self.next_id(META_NEXT_MERGE)?;
        // A number taken changes the data version and nothing else.
        self.carry(before, &Default::default(), None)?;
        Ok(id)
    }

    pub(in crate::store) fn record_merges(&self, merges: &[MergeRecord]) -> Result<()> {
        if merges.is_empty() {
            return Ok(());
        }
        self.db.writable()?;
        let mut c = self.counters()?;
        for m in merges {
            if self
                .merged
                .contains_key(m.merged.as_bytes())
                .map_err(self.db.err())?
            {
                return Err(StoreError::Conflict(format!(
                    "customer {} is already merged",
                    m.merged
                )));
            }
        }
        c.merges_active += merges.len() as u64;
        let window = self.write_window();
        let before = self.data_version()?;
        let pairs: Vec<(String, String)> = merges
            .iter()
            .map(|m| (m.merged.clone(), m.survivor.clone()))
            .collect();
        let opt_ins = self.opt_ins_delta_of_merges(&pairs)?;
        let touched: super::tracker::Touched =
            pairs.into_iter().flat_map(|(m, s)| [m, s]).collect();
        (&self.merges, &self.merged, &self.meta)
            .transaction(|(mt, md, meta)| {
                for m in merges {
                    mt.insert(&m.merge_id.to_be_bytes(), encode_tx(m)?)?;
                    md.insert(m.merged.as_bytes(), &m.merge_id.to_be_bytes())?;
                }
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        self.carry(before, &touched, Some(opt_ins))?;
        drop(window);
        self.db.flush()?;
        self.data_changed();
        Ok(())
    }

    pub(in crate::store) fn undo_merge(&self, merge_id: u64, by: &str) -> Result<MergeRecord> {
        let _w = self.db.lock_writer();
        self.db.writable()?;
        let mut m = self.merge(merge_id)?.ok_or_else(|| {
            StoreError::NotFound(format!("no merge #{merge_id} in tenant {}", self.db.id()))
        })?;
        if m.undone_at.is_some() {
            return Err(StoreError::Conflict(format!(
                "merge #{merge_id} was already undone"
            )));
        }
        m.undone_at = Some(Timestamp::now());
        m.undone_by = Some(by.to_string());
        let mut c = self.counters()?;
        c.merges_active = c.merges_active.saturating_sub(1);
        (&self.merges, &self.merged, &self.meta)
            .transaction(|(mt, md, meta)| {
                mt.insert(&m.merge_id.to_be_bytes(), encode_tx(&m)?)?;
                md.remove(m.merged.as_bytes())?;
                meta.insert(META_COUNTERS, encode_tx(&c)?)?;
                Ok(())
            })
            .map_err(tx_err(&self.db))?;
        // Rare: every derived view recomputes (an undone merge may let
        // the identity pass join what it kept apart before).
        self.forget_changes();
        self.db.flush()?;
        self.data_changed();
        Ok(m)
    }
}
