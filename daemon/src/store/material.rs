//! Brand material in the central store: templates with their versions, and
//! the proposals that change them (the rules are `crate::approvals`').
//!
//! | tree        | key                          | value                                     |
//! |-------------|------------------------------|-------------------------------------------|
//! | `templates` | name                         | the head: which version is in force       |
//! | `templates` | name, 0, version (u32 BE)    | one [`TemplateVersion`]                   |
//! | `proposals` | id (u64 BE)                  | one [`Proposal`]                          |
//! | `settings`  | `proposal_seq`               | the last proposal id given out (u64 BE)   |
//!
//! Versions are records of their own rather than a list in the head, so a
//! template's history can grow without its record ever nearing the codec's
//! size limit. Template names never contain a 0 byte, so a head's key is
//! never a prefix-with-separator of another template's keys.
//!
//! Every write is a transaction that re-checks what the caller decided on
//! (a proposal still pending, the version in force unchanged) and is flushed
//! before it returns: an approval is something people rely on.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use touchpoint_common::codec::{decode_record, encode_record};
use touchpoint_common::protocol::{
    Proposal, ProposalStatus, TemplateHistory, TemplateVersion, Topic,
};

use super::central::Central;
use super::error::{Result, StoreError};
use crate::events::Audience;

const PROPOSAL_SEQ: &[u8] = b"proposal_seq";

/// Where a template stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    /// The version in force: always the last one approved (a rollback is a
    /// new version with an old text).
    in_force: u32,
}

fn version_key(name: &str, version: u32) -> Vec<u8> {
    let mut k = version_prefix(name);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn version_prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

fn decode<T: serde::de::DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    decode_record(bytes).map_err(|source| StoreError::Codec { tree, source })
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn encode_tx<T: Serialize>(tree: &'static str, v: &T) -> TxResult<Vec<u8>> {
    encode_record(v)
        .map_err(|source| ConflictableTransactionError::Abort(StoreError::Codec { tree, source }))
}

fn decode_tx<T: serde::de::DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> TxResult<T> {
    decode_record(bytes)
        .map_err(|source| ConflictableTransactionError::Abort(StoreError::Codec { tree, source }))
}

fn tx_err(c: &Central) -> impl Fn(TransactionError<StoreError>) -> StoreError + '_ {
    move |e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(source) => c.fail()(source),
    }
}

impl Central {
    /// The version in force of a template, if the store knows the template.
    pub fn template_in_force(&self, name: &str) -> Result<Option<TemplateVersion>> {
        let Some(head) = self.head(name)? else {
            return Ok(None);
        };
        self.template_version(name, head.in_force)
    }

    /// Every known template's version in force, by name.
    pub fn templates_in_force(&self) -> Result<Vec<(String, TemplateVersion)>> {
        let mut out = Vec::new();
        for name in self.template_names()? {
            if let Some(v) = self.template_in_force(&name)? {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    /// One version of a template.
    pub fn template_version(&self, name: &str, version: u32) -> Result<Option<TemplateVersion>> {
        self.db()?
            .templates
            .get(version_key(name, version))
            .map_err(self.fail())?
            .map(|b| decode("templates", &b))
            .transpose()
    }

    /// A template with every version, oldest first.
    pub fn template_history(&self, name: &str) -> Result<Option<TemplateHistory>> {
        let Some(head) = self.head(name)? else {
            return Ok(None);
        };
        let versions = self
            .db()?
            .templates
            .scan_prefix(version_prefix(name))
            .values()
            .map(|v| decode("templates", &v.map_err(self.fail())?))
            .collect::<Result<Vec<TemplateVersion>>>()?;
        Ok(Some(TemplateHistory {
            name: name.to_string(),
            in_force: head.in_force,
            versions,
        }))
    }

    /// Every template with every version, by name.
    pub fn template_histories(&self) -> Result<Vec<TemplateHistory>> {
        let mut out = Vec::new();
        for name in self.template_names()? {
            out.extend(self.template_history(&name)?);
        }
        Ok(out)
    }

    /// Names of the templates the store knows, sorted.
    pub fn template_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for k in self.db()?.templates.iter().keys() {
            let k = k.map_err(self.fail())?;
            if !k.contains(&0) {
                names.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        Ok(names)
    }

    fn head(&self, name: &str) -> Result<Option<Head>> {
        self.db()?
            .templates
            .get(name.as_bytes())
            .map_err(self.fail())?
            .map(|b| decode("templates", &b))
            .transpose()
    }

    /// Stores `first` as version 1 of a template the store does not know,
    /// durably. Returns false (and writes nothing) if it knows it already.
    pub fn seed_template(&self, name: &str, first: &TemplateVersion) -> Result<bool> {
        if name.is_empty() || name.contains('\0') || first.version != 1 {
            return Err(StoreError::Conflict(format!(
                "cannot seed template {name:?} with version {}",
                first.version
            )));
        }
        let c = self.db()?;
        let added = c
            .templates
            .transaction(|t| {
                if t.get(name.as_bytes())?.is_some() {
                    return Ok(false);
                }
                t.insert(version_key(name, 1), encode_tx("templates", first)?)?;
                t.insert(
                    name.as_bytes(),
                    encode_tx("templates", &Head { in_force: 1 })?,
                )?;
                Ok(true)
            })
            .map_err(tx_err(self))?;
        if added {
            self.flush_db(&c)?;
        }
        Ok(added)
    }

    /// Stores a new proposal under the next id (1, 2, ...), durably, and
    /// returns it with its id. `audience`: whose material it is, so that
    /// only those who may see it hear of it (`crate::approvals` knows).
    pub fn add_proposal(&self, proposal: &Proposal, audience: Audience) -> Result<Proposal> {
        let c = self.db()?;
        let stored = (&c.settings, &c.proposals)
            .transaction(|(settings, proposals)| {
                let last = match settings.get(PROPOSAL_SEQ)? {
                    Some(b) => <[u8; 8]>::try_from(b.as_ref())
                        .map(u64::from_be_bytes)
                        .or_else(|_| {
                            abort(StoreError::Conflict("corrupt proposal counter".into()))
                        })?,
                    None => 0,
                };
                let mut p = proposal.clone();
                p.id = last + 1;
                settings.insert(PROPOSAL_SEQ, &p.id.to_be_bytes())?;
                proposals.insert(&p.id.to_be_bytes(), encode_tx("proposals", &p)?)?;
                Ok(p)
            })
            .map_err(tx_err(self))?;
        self.flush_db(&c)?;
        drop(c);
        self.events.publish_to(&[Topic::Approvals], audience);
        Ok(stored)
    }

    pub fn proposal(&self, id: u64) -> Result<Option<Proposal>> {
        self.db()?
            .proposals
            .get(id.to_be_bytes())
            .map_err(self.fail())?
            .map(|b| decode("proposals", &b))
            .transpose()
    }

    /// Every proposal, oldest first.
    pub fn proposals(&self) -> Result<Vec<Proposal>> {
        self.db()?
            .proposals
            .iter()
            .values()
            .map(|v| decode("proposals", &v.map_err(self.fail())?))
            .collect()
    }

    /// Records the decision on a proposal (`decided` carries its new status),
    /// with the version it becomes if approved, atomically and durably.
    /// `audience` as for [`Central::add_proposal`].
    ///
    /// Refused with [`StoreError::Conflict`], writing nothing, if the stored
    /// proposal is no longer pending or the new version is not the one after
    /// the version in force (someone decided or approved in the meantime).
    pub fn record_decision(
        &self,
        decided: &Proposal,
        approved: Option<&TemplateVersion>,
        audience: Audience,
    ) -> Result<()> {
        let name = decided.template.as_str();
        let c = self.db()?;
        (&c.proposals, &c.templates)
            .transaction(|(proposals, templates)| {
                let Some(stored) = proposals.get(decided.id.to_be_bytes())? else {
                    return abort(StoreError::NotFound(format!("no proposal #{}", decided.id)));
                };
                let stored: Proposal = decode_tx("proposals", &stored)?;
                if stored.status != ProposalStatus::Pending {
                    return abort(StoreError::Conflict(format!(
                        "proposal #{} was decided in the meantime",
                        decided.id
                    )));
                }
                if let Some(v) = approved {
                    let in_force = match templates.get(name.as_bytes())? {
                        Some(b) => decode_tx::<Head>("templates", &b)?.in_force,
                        None => 0,
                    };
                    if v.version != in_force + 1 {
                        return abort(StoreError::Conflict(format!(
                            "template {name:?} moved to v{in_force} in the meantime"
                        )));
                    }
                    templates.insert(version_key(name, v.version), encode_tx("templates", v)?)?;
                    templates.insert(
                        name.as_bytes(),
                        encode_tx(
                            "templates",
                            &Head {
                                in_force: v.version,
                            },
                        )?,
                    )?;
                }
                proposals.insert(&decided.id.to_be_bytes(), encode_tx("proposals", decided)?)?;
                Ok(())
            })
            .map_err(tx_err(self))?;
        self.flush_db(&c)?;
        drop(c);
        self.events.publish_to(&[Topic::Approvals], audience);
        Ok(())
    }

    /// Removes one piece of material whole, durably: its head, every
    /// version and every proposal of it (a dealer who leaves takes its
    /// `slots/<tenant>` along). Returns how many records went; nothing
    /// stored is no error. `audience` as for [`Central::add_proposal`].
    pub fn remove_material(&self, name: &str, audience: Audience) -> Result<u64> {
        if name.is_empty() || name.contains('\0') {
            return Err(StoreError::Conflict(format!("{name:?} names no material")));
        }
        let c = self.db()?;
        let mut removed = 0;
        if c.templates
            .remove(name.as_bytes())
            .map_err(self.fail())?
            .is_some()
        {
            removed += 1;
        }
        for k in c.templates.scan_prefix(version_prefix(name)).keys() {
            c.templates
                .remove(k.map_err(self.fail())?)
                .map_err(self.fail())?;
            removed += 1;
        }
        for kv in c.proposals.iter() {
            let (k, v) = kv.map_err(self.fail())?;
            let p: Proposal = decode("proposals", &v)?;
            if p.template == name {
                c.proposals.remove(k).map_err(self.fail())?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.flush_db(&c)?;
            drop(c);
            self.events.publish_to(&[Topic::Approvals], audience);
        }
        Ok(removed)
    }
}
