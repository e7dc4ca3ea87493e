//! Brand material and its approval workflow (M6): templates live in the
//! central store with every version; a change is a proposal with an author,
//! a comment and a diff against the version in force; a reviewer other than
//! the author approves it (it becomes the next version, in force at once)
//! or rejects it with a comment.
//!
//! The store is the source of truth for what is in force. The files under
//! `policies/templates/` only seed it: a template the store does not know
//! becomes version 1 at start; a later edit of its file changes nothing
//! until it is proposed and approved ([`Material::seed`] names such files).
//!
//! A proposal is checked when it is made, each error with its line in the
//! proposed file: everything [`Template::parse`] checks (TOML keys, Jinja
//! syntax, known variables), that every slot it uses is declared in the
//! brand's `[slots]`, and the legally required parts: the brand's imprint in
//! the `text`, `html` and `letter` parts, `{{ unsubscribe_url }}` in the
//! email parts (`text` and `html`). A rollback is a proposal like any other,
//! whose text is the old version's, checked again against today's rules.
//!
//! When the brand says so (`brand.toml [review] dealer_slots`), a dealer's
//! slot values are brand material too, named `slots/<tenant-id>` (see
//! [`slots`]): their text is the dealer's `[slots]` table in a canonical
//! TOML form, checked against the brand's slot declarations instead of the
//! template rules. [`Material::seed_slots`] makes a dealer's file version 1
//! and turns a later change of the file into a pending proposal; until it
//! is approved, [`Material::slots_in_force`] gives the values approved last.
//!
//! Every call is blocking (sled, with a flush before anything is
//! acknowledged): call it from `spawn_blocking` in async code. The audit
//! trail is written by the control layer, except for the proposals that
//! [`Material::seed_slots`] makes from dealers' files.
//!
//! Render reads the material in force through its `MaterialSource`, which
//! approvals implements for [`Material`] and for the central store the
//! material is kept in: render, and dispatch above it, never import
//! approvals. Approvals renders its previews through render and must never
//! import dispatch.

use std::collections::BTreeMap;
use std::sync::Arc;

use touchpoint_common::domain::Timestamp;
use touchpoint_common::policy::{BrandPolicy, PolicySet};
use touchpoint_common::protocol::{
    AuditEntry, AuditOutcome, ErrorKind, Proposal, ProposalDetail, ProposalStatus, TemplateHistory,
    TemplateVersion,
};
use touchpoint_common::template::{self, Part, Template};
use touchpoint_common::toml_file::{line_of_key, ConfigError};
use touchpoint_common::TenantId;

use crate::render::{MaterialError, MaterialSource};
use crate::store::{StoreError, Stores};

/// A proposed file larger than this is refused: templates are a few KiB.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// What is looked for as the imprint when the brand names none.
pub const DEFAULT_IMPRINT_MARKER: &str = "Amtsgericht";

/// Why a request about brand material was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The proposed text breaks a rule: one `file:line: key: message` per line.
    #[error("{}", lines(.0))]
    Invalid(Vec<ConfigError>),
    #[error("{0:?} is not a template name (lower case a-z, 0-9, '_' and '-', at most 64) nor slots/<tenant-id>")]
    BadName(String),
    /// Slot material of a tenant the registry does not know.
    #[error("no tenant {0:?}: slots/<tenant-id> names the slots of a registered dealer")]
    UnknownTenant(String),
    /// Slot material proposed while the brand does not review dealers' slots.
    #[error("the brand does not review dealers' slots (brand.toml [review] dealer_slots = false): a dealer changes them in its own file")]
    SlotsNotReviewed,
    /// `brand` proposed while the brand does not review its own file.
    #[error("the brand does not review its own file (brand.toml [review] brand = false): brand.toml is in force as it is written")]
    BrandNotReviewed,
    #[error("no proposal #{0}")]
    UnknownProposal(u64),
    #[error("no template {0:?}")]
    UnknownTemplate(String),
    #[error("template {template:?} has no version {version} (it has v1 to v{last})")]
    UnknownVersion {
        template: String,
        version: u32,
        last: u32,
    },
    /// The text is the version in force already.
    #[error("nothing to propose: the text is {template} v{version}, the version in force")]
    Unchanged { template: String, version: u32 },
    #[error("four eyes: {reviewer} cannot approve proposal #{id}, which {author} proposed; another reviewer must")]
    OwnProposal {
        id: u64,
        author: String,
        reviewer: String,
    },
    /// Approved or rejected already; `was` says how ("approved by ann as v3").
    #[error("proposal #{id} is not pending: it was {was}")]
    NotPending { id: u64, was: String },
    /// The version in force moved since the proposal was made: approving it
    /// would silently undo the change approved in between.
    #[error("proposal #{id} is stale: it was made against {template} v{base}, and v{current} has been approved since; propose the change again against v{current}")]
    Stale {
        id: u64,
        template: String,
        base: u32,
        current: u32,
    },
    #[error("a rejection needs a comment saying why")]
    CommentRequired,
    /// A stored version that no longer passes `Template::parse`.
    #[error("stored template {template} v{version} is not valid any more: {}", lines(.errors))]
    Stored {
        template: String,
        version: u32,
        errors: Vec<ConfigError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ApprovalError {
    /// How the control socket reports it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApprovalError::Invalid(_)
            | ApprovalError::BadName(_)
            | ApprovalError::Unchanged { .. }
            | ApprovalError::NotPending { .. }
            | ApprovalError::Stale { .. }
            | ApprovalError::SlotsNotReviewed
            | ApprovalError::BrandNotReviewed
            | ApprovalError::CommentRequired => ErrorKind::Invalid,
            ApprovalError::UnknownProposal(_)
            | ApprovalError::UnknownTenant(_)
            | ApprovalError::UnknownTemplate(_)
            | ApprovalError::UnknownVersion { .. } => ErrorKind::NotFound,
            ApprovalError::OwnProposal { .. } => ErrorKind::Forbidden,
            // Someone decided the same proposal at the same moment.
            ApprovalError::Store(StoreError::Conflict(_)) => ErrorKind::Busy,
            ApprovalError::Stored { .. } | ApprovalError::Store(_) => ErrorKind::Internal,
        }
    }
}

/// What [`Material::seed`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Templates the store did not know: their file is version 1 now.
    pub added: Vec<String>,
    /// Templates whose file differs from the version in force. The file is
    /// not in force: it has to be proposed and approved.
    pub differs: Vec<String>,
}

/// What [`Material::seed_slots`] found (empty when the brand does not
/// review dealers' slots).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeededSlots {
    /// Tenants the store had no slots of: their file's are version 1 now.
    pub added: Vec<TenantId>,
    /// Tenants whose file's slots differ from the version in force, with
    /// the proposal made for the change.
    pub proposed: Vec<(TenantId, u64)>,
    /// Tenants whose file's change is pending already, with that proposal.
    pub pending: Vec<(TenantId, u64)>,
    /// Tenants whose file's change was rejected against the version still
    /// in force, with that proposal: not proposed again until the file
    /// changes once more.
    pub rejected: Vec<(TenantId, u64)>,
}

/// The author uid of proposals made from a dealer's file: no user's, so
/// that any reviewer may approve them.
pub const FILE_AUTHOR_UID: u32 = u32::MAX;

/// Brand material in the central store, and the rules for changing it.
pub struct Material {
    stores: Arc<Stores>,
    /// Where the policy files are, to check a `brand` proposal against.
    policy_dir: Option<std::path::PathBuf>,
}

impl Material {
    pub fn new(stores: Arc<Stores>) -> Self {
        Self {
            stores,
            policy_dir: None,
        }
    }

    /// The policy directory a `brand` proposal is checked against (the
    /// dealers' files and templates in it); without it, `brand` cannot be
    /// proposed.
    pub fn with_policy_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.policy_dir = Some(dir);
        self
    }

    /// The policy files, for checking `brand` texts against.
    fn policy_files(&self) -> Result<BTreeMap<String, String>, ApprovalError> {
        let Some(dir) = &self.policy_dir else {
            return Err(ApprovalError::BrandNotReviewed);
        };
        crate::policy::read_dir(dir, "").map_err(ApprovalError::Invalid)
    }

    /// The approved text of `brand` when it reviews its own file: put in
    /// place of `brand.toml` in `files` (the policy files as read). A file
    /// that differs becomes a pending proposal (author `brand.toml`,
    /// audited) unless the same change is pending, was rejected against the
    /// version in force, is an earlier version, or would break the set.
    /// Without a version in store or with the review off, `files` stay.
    pub fn brand_override(
        &self,
        files: &mut BTreeMap<String, String>,
    ) -> Result<brand::BrandFile, ApprovalError> {
        use brand::BrandFile;
        let Some(disk) = files.get(brand::FILE).cloned() else {
            return Ok(BrandFile::NotSeeded);
        };
        let central = self.stores.central();
        let Some(current) = central.template_in_force(brand::NAME)? else {
            return Ok(BrandFile::NotSeeded);
        };
        if !brand::reviewed(&current.text) {
            return Ok(BrandFile::Direct);
        }
        files.insert(brand::FILE.to_string(), current.text.clone());
        if disk == current.text {
            return Ok(BrandFile::InForce);
        }
        if let Some(h) = central.template_history(brand::NAME)? {
            if let Some(v) = h.versions.iter().rev().find(|v| v.text == disk) {
                return Ok(BrandFile::Earlier(v.version));
            }
        }
        let mut known = central.proposals()?;
        let change = self.file_change(
            &mut known,
            brand::NAME,
            disk.clone(),
            current.version,
            None,
            |_| brand::check(files, &disk, brand::FILE).map(|_| ()),
        )?;
        Ok(match change {
            FileChange::Proposed(id) => BrandFile::Proposed(id),
            FileChange::Pending(id) => BrandFile::Pending(id),
            FileChange::Rejected(id) => BrandFile::Rejected(id),
            FileChange::Invalid(e) => BrandFile::Invalid(e),
        })
    }

    /// After a valid set is in force: the store without `brand` gets
    /// `brand_text` (the file) as version 1; with the review off in the
    /// version in force, a file that differs is recorded as the next
    /// version (it is in force already). With the review on, does nothing
    /// ([`Material::brand_override`] proposes the file).
    pub fn seed_brand(&self, brand_text: &str) -> Result<brand::SeededBrand, ApprovalError> {
        use brand::SeededBrand;
        let central = self.stores.central();
        let Some(current) = central.template_in_force(brand::NAME)? else {
            let first = TemplateVersion {
                version: 1,
                fingerprint: slots::fingerprint(brand_text),
                text: brand_text.to_string(),
                author: format!("policies/{}", brand::FILE),
                approved_by: "seed".into(),
                at: Timestamp::now(),
                comment: "seeded from the policy file".into(),
                proposal: None,
            };
            return Ok(if central.seed_template(brand::NAME, &first)? {
                SeededBrand::Added
            } else {
                SeededBrand::Unchanged
            });
        };
        if current.text == brand_text || brand::reviewed(&current.text) {
            return Ok(SeededBrand::Unchanged);
        }
        let now = Timestamp::now();
        let comment =
            "brand.toml changed while the brand does not review it ([review] brand = false)";
        let p = central.add_proposal(
            &Proposal {
                id: 0,
                template: brand::NAME.to_string(),
                text: brand_text.to_string(),
                base_version: current.version,
                rollback_to: None,
                author: brand::FILE.to_string(),
                author_uid: FILE_AUTHOR_UID,
                comment: comment.to_string(),
                created_at: now,
                status: ProposalStatus::Pending,
            },
            slots::audience(brand::NAME),
        )?;
        let version = TemplateVersion {
            version: current.version + 1,
            fingerprint: slots::fingerprint(brand_text),
            text: brand_text.to_string(),
            author: brand::FILE.to_string(),
            approved_by: "brand.toml (review off)".into(),
            at: now,
            comment: comment.to_string(),
            proposal: Some(p.id),
        };
        let mut decided = p;
        decided.status = ProposalStatus::Approved {
            by: version.approved_by.clone(),
            at: now,
            comment: comment.to_string(),
            version: version.version,
        };
        central.record_decision(&decided, Some(&version), slots::audience(&decided.template))?;
        Ok(SeededBrand::Recorded(version.version))
    }

    /// Seeds the store from the policy files (`relative path -> text` as
    /// `crate::policy::read_dir` gives them; only `templates/<name>.toml`
    /// are looked at): every template the store does not know becomes
    /// version 1 (author `policies/templates/<name>.toml`, approved by
    /// `seed`). Files are trusted here (the policy set validated them); the
    /// rules for proposals apply to changes.
    pub fn seed(&self, files: &BTreeMap<String, String>) -> Result<Seeded, ApprovalError> {
        let central = self.stores.central();
        let mut seeded = Seeded::default();
        for (rel, text) in files {
            let Some(name) = rel
                .strip_prefix("templates/")
                .and_then(|r| r.strip_suffix(".toml"))
            else {
                continue;
            };
            let parsed = Template::parse(name, rel, text).map_err(ApprovalError::Invalid)?;
            match central.template_in_force(name)? {
                Some(v) => {
                    if v.fingerprint != parsed.version {
                        seeded.differs.push(name.to_string());
                    }
                }
                None => {
                    let first = TemplateVersion {
                        version: 1,
                        fingerprint: parsed.version,
                        text: text.clone(),
                        author: format!("policies/{rel}"),
                        approved_by: "seed".into(),
                        at: Timestamp::now(),
                        comment: "seeded from the policy file".into(),
                        proposal: None,
                    };
                    if central.seed_template(name, &first)? {
                        seeded.added.push(name.to_string());
                    }
                }
            }
        }
        Ok(seeded)
    }

    /// The templates in force, by name: what the renderer renders with
    /// (in place of the policy set's files).
    pub fn in_force(&self) -> Result<BTreeMap<String, Template>, ApprovalError> {
        templates_in_store(&self.stores)
    }

    /// Proposes `text` (the whole template file) as the next version of
    /// `template`, or as a new template. Checked against the rules with
    /// `brand`'s imprint and slots; refused with every error found.
    pub fn propose(
        &self,
        template: &str,
        text: &str,
        comment: &str,
        author: &str,
        author_uid: u32,
        brand: &BrandPolicy,
    ) -> Result<Proposal, ApprovalError> {
        self.add(template, text, None, comment, author, author_uid, brand)
    }

    /// Proposes going back to the text of `version` of `template`: a new
    /// version with the old text, once approved.
    pub fn propose_rollback(
        &self,
        template: &str,
        version: u32,
        comment: &str,
        author: &str,
        author_uid: u32,
        brand: &BrandPolicy,
    ) -> Result<Proposal, ApprovalError> {
        let history = self.history_of(template)?;
        let old = history
            .versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| ApprovalError::UnknownVersion {
                template: template.to_string(),
                version,
                last: history.in_force,
            })?;
        self.add(
            template,
            &old.text,
            Some(version),
            comment,
            author,
            author_uid,
            brand,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        template: &str,
        text: &str,
        rollback_to: Option<u32>,
        comment: &str,
        author: &str,
        author_uid: u32,
        brand: &BrandPolicy,
    ) -> Result<Proposal, ApprovalError> {
        check_name(template)?;
        let text = match slots::tenant_of(template) {
            None if brand::is_brand(template) => {
                if !brand.review.brand {
                    return Err(ApprovalError::BrandNotReviewed);
                }
                check_text_size(template, text).map_err(ApprovalError::Invalid)?;
                let files = self.policy_files()?;
                brand::check(&files, text, brand::PROPOSAL_FILE).map_err(ApprovalError::Invalid)?;
                text.to_string()
            }
            Some(tenant) => {
                if !brand.review.dealer_slots {
                    return Err(ApprovalError::SlotsNotReviewed);
                }
                if self.stores.central().tenant(&tenant)?.is_none() {
                    return Err(ApprovalError::UnknownTenant(tenant.to_string()));
                }
                // Stored canonical, so that versions compare by their text
                // and the diff shows values, not formatting.
                let values =
                    check_slots_proposal(template, text, brand).map_err(ApprovalError::Invalid)?;
                slots::to_text(&values)
            }
            None => {
                check_proposal(template, text, brand).map_err(ApprovalError::Invalid)?;
                text.to_string()
            }
        };
        let text = text.as_str();
        let current = self.stores.central().template_in_force(template)?;
        if let Some(v) = &current {
            if v.text == text {
                return Err(ApprovalError::Unchanged {
                    template: template.to_string(),
                    version: v.version,
                });
            }
        }
        let proposal = Proposal {
            id: 0,
            template: template.to_string(),
            text: text.to_string(),
            base_version: current.map_or(0, |v| v.version),
            rollback_to,
            author: author.to_string(),
            author_uid,
            comment: comment.to_string(),
            created_at: Timestamp::now(),
            status: ProposalStatus::Pending,
        };
        Ok(self
            .stores
            .central()
            .add_proposal(&proposal, slots::audience(&proposal.template))?)
    }

    /// Proposals, oldest first; pending ones only unless `all`.
    pub fn proposals(&self, all: bool) -> Result<Vec<Proposal>, ApprovalError> {
        let mut list = self.stores.central().proposals()?;
        if !all {
            list.retain(|p| p.status == ProposalStatus::Pending);
        }
        Ok(list)
    }

    /// One proposal with its unified diff against the version in force now
    /// (3 lines of context).
    pub fn detail(&self, id: u64) -> Result<ProposalDetail, ApprovalError> {
        let proposal = self.proposal(id)?;
        let current = self
            .stores
            .central()
            .template_in_force(&proposal.template)?;
        let (old, old_header) = match &current {
            Some(v) => (
                v.text.as_str(),
                format!("{} v{} (in force)", proposal.template, v.version),
            ),
            None => ("", format!("{} (new template)", proposal.template)),
        };
        let new_header = format!("{} proposal #{}", proposal.template, proposal.id);
        let diff = similar::TextDiff::from_lines(old, proposal.text.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&old_header, &new_header)
            .to_string();
        Ok(ProposalDetail {
            current_version: current.map_or(0, |v| v.version),
            proposal,
            diff,
        })
    }

    /// The proposal's text as a template, for a preview. For a dealer's
    /// slots, the template in force to show them in: `service_due` if
    /// there is one, else the first by name (the preview takes the proposed
    /// values from the proposal).
    pub fn proposed_template(&self, id: u64) -> Result<Template, ApprovalError> {
        let p = self.proposal(id)?;
        if slots::is_slots(&p.template) || brand::is_brand(&p.template) {
            let mut all = self.in_force()?;
            return all
                .remove("service_due")
                .or_else(|| all.into_values().next())
                .ok_or_else(|| ApprovalError::UnknownTemplate("service_due".into()));
        }
        Template::parse(&p.template, &proposal_file(&p.template), &p.text)
            .map_err(ApprovalError::Invalid)
    }

    /// Approves a pending proposal: it becomes the next version of its
    /// template, in force at once. Refused to its author (same uid or same
    /// user name: four eyes), and when the version in force moved since the
    /// proposal was made (it must be proposed again).
    pub fn approve(
        &self,
        id: u64,
        reviewer: &str,
        reviewer_uid: u32,
        comment: &str,
    ) -> Result<TemplateVersion, ApprovalError> {
        let mut p = self.pending(id)?;
        if p.author_uid == reviewer_uid || p.author == reviewer {
            return Err(ApprovalError::OwnProposal {
                id,
                author: p.author.clone(),
                reviewer: reviewer.to_string(),
            });
        }
        let current = self
            .stores
            .central()
            .template_in_force(&p.template)?
            .map_or(0, |v| v.version);
        if current != p.base_version {
            return Err(ApprovalError::Stale {
                id,
                template: p.template.clone(),
                base: p.base_version,
                current,
            });
        }
        let fingerprint = if brand::is_brand(&p.template) {
            // Checked again: a dealer's file may have changed since.
            if self.policy_dir.is_some() {
                let files = self.policy_files()?;
                brand::check(&files, &p.text, brand::PROPOSAL_FILE)
                    .map_err(ApprovalError::Invalid)?;
            }
            slots::fingerprint(&p.text)
        } else if slots::is_slots(&p.template) {
            slots::from_text(&proposal_file(&p.template), &p.text)
                .map_err(ApprovalError::Invalid)?;
            slots::fingerprint(&p.text)
        } else {
            Template::parse(&p.template, &proposal_file(&p.template), &p.text)
                .map_err(ApprovalError::Invalid)?
                .version
        };
        let now = Timestamp::now();
        let version = TemplateVersion {
            version: current + 1,
            fingerprint,
            text: p.text.clone(),
            author: p.author.clone(),
            approved_by: reviewer.to_string(),
            at: now,
            comment: p.comment.clone(),
            proposal: Some(p.id),
        };
        p.status = ProposalStatus::Approved {
            by: reviewer.to_string(),
            at: now,
            comment: comment.to_string(),
            version: version.version,
        };
        self.stores
            .central()
            .record_decision(&p, Some(&version), slots::audience(&p.template))?;
        Ok(version)
    }

    /// Rejects a pending proposal; the comment (why) is required. The
    /// author may reject their own proposal (withdraw it).
    pub fn reject(
        &self,
        id: u64,
        reviewer: &str,
        _reviewer_uid: u32,
        comment: &str,
    ) -> Result<Proposal, ApprovalError> {
        if comment.trim().is_empty() {
            return Err(ApprovalError::CommentRequired);
        }
        let mut p = self.pending(id)?;
        p.status = ProposalStatus::Rejected {
            by: reviewer.to_string(),
            at: Timestamp::now(),
            comment: comment.to_string(),
        };
        self.stores
            .central()
            .record_decision(&p, None, slots::audience(&p.template))?;
        Ok(p)
    }

    /// The version history of one template, or of all by name.
    pub fn history(&self, name: Option<&str>) -> Result<Vec<TemplateHistory>, ApprovalError> {
        match name {
            Some(name) => Ok(vec![self.history_of(name)?]),
            None => Ok(self.stores.central().template_histories()?),
        }
    }

    /// The text of the version of `name` whose fingerprint a message
    /// recorded, to render it again as it was sent.
    pub fn version_text(
        &self,
        name: &str,
        fingerprint: u64,
    ) -> Result<Option<String>, ApprovalError> {
        let Some(h) = self.stores.central().template_history(name)? else {
            return Ok(None);
        };
        Ok(h.versions
            .into_iter()
            .rev()
            .find(|v| v.fingerprint == fingerprint)
            .map(|v| v.text))
    }

    /// The approved slot values of `tenant`, if its slots are in the store
    /// (the brand reviews dealers' slots and the tenant has been seeded).
    pub fn slots_in_force(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<BTreeMap<String, String>>, ApprovalError> {
        slots_in_store(&self.stores, tenant)
    }

    /// With the brand reviewing dealers' slots, brings the store in line
    /// with the dealers' files of `set`: a tenant the store has no slots of
    /// gets its file's as version 1 (approved by `seed`); a file whose slots
    /// differ from the version in force becomes a pending proposal (author
    /// `dealers/<id>.toml`, audited), unless the same change is pending
    /// already or was rejected against the version still in force. The
    /// version in force stays in force. Without the review, does nothing.
    pub fn seed_slots(&self, set: &PolicySet) -> Result<SeededSlots, ApprovalError> {
        let mut seeded = SeededSlots::default();
        if !set.brand.review.dealer_slots {
            return Ok(seeded);
        }
        let central = self.stores.central();
        let mut proposals: Option<Vec<Proposal>> = None;
        for (id, t) in &set.tenants {
            let name = slots::name(id);
            let text = slots::to_text(&t.slots);
            let Some(current) = central.template_in_force(&name)? else {
                let first = TemplateVersion {
                    version: 1,
                    fingerprint: slots::fingerprint(&text),
                    text,
                    author: format!("policies/dealers/{id}.toml"),
                    approved_by: "seed".into(),
                    at: Timestamp::now(),
                    comment: "seeded from the dealer's policy file".into(),
                    proposal: None,
                };
                if central.seed_template(&name, &first)? {
                    seeded.added.push(id.clone());
                }
                continue;
            };
            if current.text == text {
                continue;
            }
            // Read once, and only when some file differs.
            let known = match &mut proposals {
                Some(p) => p,
                None => proposals.insert(central.proposals()?),
            };
            match self.file_change(known, &name, text, current.version, Some(id), |_| Ok(()))? {
                FileChange::Pending(p) => seeded.pending.push((id.clone(), p)),
                FileChange::Rejected(p) => seeded.rejected.push((id.clone(), p)),
                FileChange::Proposed(p) => seeded.proposed.push((id.clone(), p)),
                // The dealer's file is valid: the set was validated.
                FileChange::Invalid(_) => {}
            }
        }
        Ok(seeded)
    }

    /// A policy file's `text` for material `name` differs from version
    /// `base` in force: the pending proposal of the same text, or the one
    /// rejected against `base`, or (if `valid` accepts it) a new proposal
    /// whose author is the file (`dealers/<id>.toml` for a tenant's slots,
    /// else `brand.toml`), audited. `known` holds every proposal.
    fn file_change(
        &self,
        known: &mut Vec<Proposal>,
        name: &str,
        text: String,
        base: u32,
        tenant: Option<&TenantId>,
        valid: impl FnOnce(&Self) -> Result<(), Vec<ConfigError>>,
    ) -> Result<FileChange, ApprovalError> {
        let same = |p: &&Proposal| p.template == name && p.text == text;
        if let Some(p) = known
            .iter()
            .filter(same)
            .find(|p| p.status == ProposalStatus::Pending)
        {
            return Ok(FileChange::Pending(p.id));
        }
        if let Some(p) = known
            .iter()
            .filter(same)
            .find(|p| matches!(p.status, ProposalStatus::Rejected { .. }) && p.base_version == base)
        {
            return Ok(FileChange::Rejected(p.id));
        }
        if let Err(e) = valid(self) {
            return Ok(FileChange::Invalid(e));
        }
        let (author, comment) = match tenant {
            Some(id) => (
                format!("dealers/{id}.toml"),
                "slot change in the dealer's policy file",
            ),
            None => (
                brand::FILE.to_string(),
                "change of brand.toml on disk (proposed automatically)",
            ),
        };
        let central = self.stores.central();
        let p = central.add_proposal(
            &Proposal {
                id: 0,
                template: name.to_string(),
                text,
                base_version: base,
                rollback_to: None,
                author: author.clone(),
                author_uid: FILE_AUTHOR_UID,
                comment: comment.into(),
                created_at: Timestamp::now(),
                status: ProposalStatus::Pending,
            },
            slots::audience(name),
        )?;
        central.audit(AuditEntry {
            seq: 0,
            // Wall time, as every audit line.
            at: Timestamp::wall(),
            uid: FILE_AUTHOR_UID,
            user: author,
            role: None,
            action: "propose".into(),
            tenant: tenant.cloned(),
            detail: format!(
                "proposal #{} for template {name} (base v{}): {}",
                p.id, p.base_version, p.comment
            ),
            outcome: AuditOutcome::Ok,
        })?;
        let id = p.id;
        known.push(p);
        Ok(FileChange::Proposed(id))
    }

    fn history_of(&self, name: &str) -> Result<TemplateHistory, ApprovalError> {
        self.stores
            .central()
            .template_history(name)?
            .ok_or_else(|| ApprovalError::UnknownTemplate(name.to_string()))
    }

    pub fn proposal(&self, id: u64) -> Result<Proposal, ApprovalError> {
        self.stores
            .central()
            .proposal(id)?
            .ok_or(ApprovalError::UnknownProposal(id))
    }

    fn pending(&self, id: u64) -> Result<Proposal, ApprovalError> {
        let p = self.proposal(id)?;
        let was = match &p.status {
            ProposalStatus::Pending => return Ok(p),
            ProposalStatus::Approved { by, version, .. } => {
                format!("approved by {by} as {} v{version}", p.template)
            }
            ProposalStatus::Rejected { by, .. } => format!("rejected by {by}"),
        };
        Err(ApprovalError::NotPending { id, was })
    }
}

/// What [`Material::file_change`] found.
enum FileChange {
    Pending(u64),
    Rejected(u64),
    Proposed(u64),
    Invalid(Vec<ConfigError>),
}

/// [`Material::in_force`] on a store.
fn templates_in_store(stores: &Stores) -> Result<BTreeMap<String, Template>, ApprovalError> {
    let mut out = BTreeMap::new();
    for (name, v) in stores.central().templates_in_force()? {
        if slots::is_slots(&name) || brand::is_brand(&name) {
            continue;
        }
        let t = parse_stored(&name, &v)?;
        out.insert(name, t);
    }
    Ok(out)
}

/// [`Material::slots_in_force`] on a store.
fn slots_in_store(
    stores: &Stores,
    tenant: &TenantId,
) -> Result<Option<BTreeMap<String, String>>, ApprovalError> {
    let name = slots::name(tenant);
    let Some(v) = stores.central().template_in_force(&name)? else {
        return Ok(None);
    };
    let file = format!("{name}.toml (v{})", v.version);
    slots::from_text(&file, &v.text)
        .map(Some)
        .map_err(|errors| ApprovalError::Stored {
            template: name,
            version: v.version,
            errors,
        })
}

impl From<ApprovalError> for MaterialError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::Store(e) => MaterialError::Store(e),
            e => MaterialError::Invalid(e.to_string()),
        }
    }
}

/// Render reads the material in force from the central store as approvals
/// keeps it there, without knowing approvals.
impl MaterialSource for Stores {
    fn templates_in_force(&self) -> Result<BTreeMap<String, Template>, MaterialError> {
        Ok(templates_in_store(self)?)
    }

    fn history(&self, template: &str) -> Result<Option<TemplateHistory>, MaterialError> {
        Ok(self.central().template_history(template)?)
    }

    fn slots_in_force(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<BTreeMap<String, String>>, MaterialError> {
        Ok(slots_in_store(self, tenant)?)
    }
}

impl MaterialSource for Material {
    fn templates_in_force(&self) -> Result<BTreeMap<String, Template>, MaterialError> {
        MaterialSource::templates_in_force(self.stores.as_ref())
    }

    fn history(&self, template: &str) -> Result<Option<TemplateHistory>, MaterialError> {
        MaterialSource::history(self.stores.as_ref(), template)
    }

    fn slots_in_force(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<BTreeMap<String, String>>, MaterialError> {
        MaterialSource::slots_in_force(self.stores.as_ref(), tenant)
    }
}

fn parse_stored(name: &str, v: &TemplateVersion) -> Result<Template, ApprovalError> {
    let file = format!("templates/{name}.toml (v{})", v.version);
    Template::parse(name, &file, &v.text).map_err(|errors| ApprovalError::Stored {
        template: name.to_string(),
        version: v.version,
        errors,
    })
}

fn check_name(name: &str) -> Result<(), ApprovalError> {
    if slots::is_slots(name) {
        return match slots::tenant_of(name) {
            Some(_) => Ok(()),
            None => Err(ApprovalError::BadName(name.to_string())),
        };
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApprovalError::BadName(name.to_string()))
    }
}

/// How a proposed file is named in errors.
pub fn proposal_file(name: &str) -> String {
    if brand::is_brand(name) {
        brand::PROPOSAL_FILE.to_string()
    } else if slots::is_slots(name) {
        format!("{name}.toml (proposal)")
    } else {
        format!("templates/{name}.toml (proposal)")
    }
}

/// Checks a proposed `slots/<tenant-id>` text: a `[slots]` table whose
/// values the brand's slot declarations allow (see [`slots::check`]); the
/// template rules (imprint, unsubscribe link) do not apply to it.
pub fn check_slots_proposal(
    name: &str,
    text: &str,
    brand: &BrandPolicy,
) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    let file = proposal_file(name);
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(vec![ConfigError {
            file,
            line: None,
            key: String::new(),
            message: format!(
                "is {} bytes long; a proposal has at most {MAX_TEMPLATE_BYTES}",
                text.len()
            ),
        }]);
    }
    slots::check(&file, text, brand)
}

/// The four parts, read leniently: `Template::parse` reports what is wrong
/// with the keys; these checks look at whatever parts are there.
#[derive(serde::Deserialize)]
struct Parts {
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    letter: Option<String>,
}

/// Checks a proposed template file against every rule for brand material
/// (see the module docs). Errors are in line order.
pub fn check_proposal(
    name: &str,
    text: &str,
    brand: &BrandPolicy,
) -> Result<Template, Vec<ConfigError>> {
    let file = proposal_file(name);
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(vec![ConfigError {
            file,
            line: None,
            key: String::new(),
            message: format!(
                "is {} bytes long; a template file has at most {MAX_TEMPLATE_BYTES}",
                text.len()
            ),
        }]);
    }
    let (parsed, mut errors) = match Template::parse(name, &file, text) {
        Ok(t) => (Some(t), Vec::new()),
        Err(e) => (None, e),
    };
    let Ok(parts) = toml::from_str::<Parts>(text) else {
        // Not TOML: Template::parse said so.
        return Err(errors);
    };
    let imprint = if brand.brand.imprint.trim().is_empty() {
        DEFAULT_IMPRINT_MARKER
    } else {
        brand.brand.imprint.as_str()
    };
    let env = template::environment();
    for (part, source) in [
        (Part::Subject, &parts.subject),
        (Part::Text, &parts.text),
        (Part::Html, &parts.html),
        (Part::Letter, &parts.letter),
    ] {
        let Some(source) = source else {
            continue;
        };
        let key_line = line_of_key(text, part.as_str());
        let error = |line: Option<u32>, message: String| ConfigError {
            file: file.clone(),
            line,
            key: part.as_str().to_string(),
            message,
        };
        if matches!(part, Part::Text | Part::Html | Part::Letter)
            && !squash(source).contains(&squash(imprint))
        {
            errors.push(error(
                key_line,
                format!(
                    "the imprint {imprint:?} is missing; every email and letter must carry it (brand.toml [brand] imprint)"
                ),
            ));
        }
        if matches!(part, Part::Text | Part::Html) && !prints(source, "unsubscribe_url") {
            errors.push(error(
                key_line,
                "has no unsubscribe link; every email part must contain {{ unsubscribe_url }}"
                    .into(),
            ));
        }
        // A part that does not compile is reported by Template::parse.
        let full_name = format!("{name}/{part}");
        let Ok(compiled) = env.template_from_named_str(&full_name, source) else {
            continue;
        };
        let mut slots: Vec<String> = compiled
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| v == "slots" || v.starts_with("slots."))
            .collect();
        slots.sort();
        for v in slots {
            let Some(slot) = v.strip_prefix("slots.") else {
                errors.push(error(
                    line_after(text, key_line, "slots", false),
                    "`slots` must be used as slots.<name>, so that each slot can be checked against the brand's [slots]".into(),
                ));
                continue;
            };
            if !brand.slots.contains_key(slot) {
                let declared: Vec<&str> = brand.slots.keys().map(String::as_str).collect();
                errors.push(error(
                    line_after(text, key_line, &v, true),
                    format!(
                        "slot `{slot}` is not declared by the brand (brand.toml [slots.{slot}]; declared: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    if let (Some(t), true) = (&parsed, errors.is_empty()) {
        let one = std::collections::BTreeMap::from([(name.to_string(), t.clone())]);
        errors.extend(
            touchpoint_common::render::lint::check(&one, brand)
                .into_iter()
                .map(|mut e| {
                    e.file = file.clone();
                    e.line = line_of_key(text, &e.key);
                    e
                }),
        );
    }
    match parsed {
        Some(t) if errors.is_empty() => Ok(t),
        _ => {
            errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(errors)
        }
    }
}

/// Whitespace runs as single spaces, so a line break inside the imprint
/// does not hide it.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the template prints `var` itself: `{{ var }}` (whitespace
/// control markers allowed).
fn prints(source: &str, var: &str) -> bool {
    source.split("{{").skip(1).any(|rest| {
        rest.split_once("}}").is_some_and(|(inner, _)| {
            inner.trim().trim_matches('-').trim_matches('+').trim() == var
        })
    })
}

/// The first line at or after `from` that contains `needle` (as a whole
/// name when `whole`: not followed by a name character), else `from`.
fn line_after(text: &str, from: Option<u32>, needle: &str, whole: bool) -> Option<u32> {
    let start = from.unwrap_or(1).max(1) as usize;
    let found = text
        .lines()
        .enumerate()
        .skip(start - 1)
        .find(|(_, l)| {
            l.match_indices(needle).any(|(at, _)| {
                !whole
                    || !l[at + needle.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .map(|(i, _)| i as u32 + 1);
    found.or(from)
}

/// A proposed text longer than [`MAX_TEMPLATE_BYTES`] is refused.
fn check_text_size(name: &str, text: &str) -> Result<(), Vec<ConfigError>> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(vec![ConfigError {
            file: proposal_file(name),
            line: None,
            key: String::new(),
            message: format!(
                "is {} bytes long; a proposal has at most {MAX_TEMPLATE_BYTES}",
                text.len()
            ),
        }]);
    }
    Ok(())
}

pub mod brand;
pub mod preview;
pub mod slots;

#[cfg(test)]
mod tests;
