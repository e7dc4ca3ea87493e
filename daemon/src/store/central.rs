//! The agency-level database: the tenant registry, the audit log, and the
//! brand material with its proposals (`material.rs`). Later: pooled
//! aggregates. Never holds a dealer's customer data.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use touchpoint_common::codec::{decode_record, encode_record};
use touchpoint_common::domain::{ImportReport, TenantStats, Timestamp};
use touchpoint_common::protocol::{AuditEntry, OptIns, Pause, Topic};
use touchpoint_common::TenantId;

use super::{sled_err, Result, StoreError};
use crate::events::Events;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub registered_at: Timestamp,
}

/// What the tenants listing shows of one tenant: kept in the central store
/// by the tenant's store at every write that changes it, so that listing
/// hundreds of tenants opens none of their databases. Counts and the last
/// import's outcome only: no customer data (the last import goes without
/// its row errors, which quote the file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantFigures {
    /// `disk_bytes` is not kept: it is read from the file system.
    pub stats: TenantStats,
    pub opt_ins: OptIns,
    pub last_import: Option<ImportReport>,
}

/// Where a tenant's store writes its figures.
#[derive(Clone)]
pub(super) struct FigureBoard {
    tree: sled::Tree,
}

impl FigureBoard {
    pub(super) fn put(&self, id: &TenantId, figures: &TenantFigures) -> Result<()> {
        let bytes = encode_record(figures).map_err(|source| StoreError::Codec {
            tree: "figures",
            source,
        })?;
        self.tree.insert(id.as_str(), bytes).map_err(Central::err)?;
        Ok(())
    }
}

pub struct Central {
    db: sled::Db,
    pub(super) events: Arc<Events>,
    tenants: sled::Tree,
    figures: sled::Tree,
    audit: sled::Tree,
    pub(super) settings: sled::Tree,
    /// Brand material: template heads and versions (see `material.rs`).
    pub(super) templates: sled::Tree,
    /// Proposed changes of brand material by id.
    pub(super) proposals: sled::Tree,
}

const PAUSES: &[u8] = b"dispatch_pauses";

impl Central {
    pub(super) fn open(path: &Path, cache_bytes: u64, events: Arc<Events>) -> Result<Self> {
        let err = sled_err(path);
        super::remove_unfinished_snapshots(path);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(&err)?;
        Ok(Self {
            tenants: db.open_tree("tenants").map_err(&err)?,
            figures: db.open_tree("figures").map_err(&err)?,
            audit: db.open_tree("audit").map_err(&err)?,
            settings: db.open_tree("settings").map_err(&err)?,
            templates: db.open_tree("templates").map_err(&err)?,
            proposals: db.open_tree("proposals").map_err(&err)?,
            db,
            events,
        })
    }

    pub(super) fn err(source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: "central".into(),
            source,
        }
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(Self::err)?;
        Ok(())
    }

    /// Registers a tenant or updates its display name. Returns true if it is new.
    pub fn register_tenant(&self, id: &TenantId, name: &str) -> Result<bool> {
        let existing = self.tenant(id)?;
        if let Some(t) = &existing {
            if t.name == name {
                return Ok(false);
            }
        }
        let rec = TenantRecord {
            id: id.clone(),
            name: name.to_string(),
            registered_at: existing
                .as_ref()
                .map(|t| t.registered_at)
                .unwrap_or_else(Timestamp::now),
        };
        let bytes = encode_record(&rec).map_err(|source| StoreError::Codec {
            tree: "tenants",
            source,
        })?;
        self.tenants.insert(id.as_str(), bytes).map_err(Self::err)?;
        self.flush()?;
        Ok(existing.is_none())
    }

    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>> {
        self.tenants
            .get(id.as_str())
            .map_err(Self::err)?
            .map(|b| {
                decode_record(&b).map_err(|source| StoreError::Codec {
                    tree: "tenants",
                    source,
                })
            })
            .transpose()
    }

    /// All registered tenants in id order.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.tenants
            .iter()
            .values()
            .map(|r| {
                r.map_err(Self::err).and_then(|b| {
                    decode_record(&b).map_err(|source| StoreError::Codec {
                        tree: "tenants",
                        source,
                    })
                })
            })
            .collect()
    }

    /// A tenant's figures as its store last wrote them.
    pub fn figures(&self, id: &TenantId) -> Result<Option<TenantFigures>> {
        self.figures
            .get(id.as_str())
            .map_err(Self::err)?
            .map(|b| {
                decode_record(&b).map_err(|source| StoreError::Codec {
                    tree: "figures",
                    source,
                })
            })
            .transpose()
    }

    pub(super) fn figure_board(&self) -> FigureBoard {
        FigureBoard {
            tree: self.figures.clone(),
        }
    }

    /// Records durably that the stores are open. True when they were
    /// already: the previous run ended without closing them.
    pub(super) fn mark_running(&self) -> Result<bool> {
        let was = self
            .settings
            .insert(super::RUNNING, &[1u8])
            .map_err(Self::err)?
            .is_some();
        self.flush()?;
        Ok(was)
    }

    /// Records durably that the stores were closed in order.
    pub(super) fn mark_stopped(&self) -> Result<()> {
        self.settings.remove(super::RUNNING).map_err(Self::err)?;
        self.flush()
    }

    /// Dispatch pauses in force (they outlive a restart).
    pub fn pauses(&self) -> Result<Vec<Pause>> {
        match self.settings.get(PAUSES).map_err(Self::err)? {
            None => Ok(Vec::new()),
            Some(b) => decode_record(&b).map_err(|source| StoreError::Codec {
                tree: "settings",
                source,
            }),
        }
    }

    /// Replaces the pauses in force, durably.
    pub fn set_pauses(&self, pauses: &[Pause]) -> Result<()> {
        let bytes = encode_record(pauses).map_err(|source| StoreError::Codec {
            tree: "settings",
            source,
        })?;
        self.settings.insert(PAUSES, bytes).map_err(Self::err)?;
        self.flush()?;
        self.events.publish(&[Topic::Dispatch], None);
        Ok(())
    }

    /// Appends to the audit log, durably. The sequence number is assigned here.
    pub fn audit(&self, mut entry: AuditEntry) -> Result<u64> {
        let seq = self.db.generate_id().map_err(Self::err)?;
        entry.seq = seq;
        let bytes = encode_record(&entry).map_err(|source| StoreError::Codec {
            tree: "audit",
            source,
        })?;
        self.audit
            .insert(seq.to_be_bytes(), bytes)
            .map_err(Self::err)?;
        self.flush()?;
        self.events.publish(&[Topic::Audit], entry.tenant.as_ref());
        Ok(seq)
    }

    /// Newest first: up to `limit` entries for which `keep` holds, looking
    /// at no more than `max_scan` entries (a filter that matches little on a
    /// long log answers with what it found, not after reading all of it).
    pub fn audit_search(
        &self,
        limit: usize,
        max_scan: usize,
        mut keep: impl FnMut(&AuditEntry) -> bool,
    ) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for v in self.audit.iter().values().rev().take(max_scan) {
            let e: AuditEntry =
                decode_record(&v.map_err(Self::err)?).map_err(|source| StoreError::Codec {
                    tree: "audit",
                    source,
                })?;
            if keep(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Newest first, optionally only entries about one tenant.
    pub fn audit_log(&self, tenant: Option<&TenantId>, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for v in self.audit.iter().values().rev() {
            let e: AuditEntry =
                decode_record(&v.map_err(Self::err)?).map_err(|source| StoreError::Codec {
                    tree: "audit",
                    source,
                })?;
            if tenant.is_none() || e.tenant.as_ref() == tenant {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
