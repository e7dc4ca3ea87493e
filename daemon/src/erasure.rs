//! Data subjects' rights (GDPR Art. 15, 17, 20, 21; M12): erasing a
//! customer so that nothing of them is left on disk, the suppression list
//! that keeps an erased person from coming back with the next import, an
//! objection to advertising, a person's data exported whole, and a dealer
//! who leaves erased with everything of theirs.
//!
//! An erasure ([`Erasure::erase`]) takes the person a customer number
//! stands for (the survivor of its merges and every number merged into
//! it, as `touchpoint customer` shows them) and, in this order:
//! 1. adds keyed hashes of their identifiers to the tenant's suppression
//!    list (first, so that a kill later cannot let them come back);
//! 2. cancels their messages not yet sent (the reservation released) and
//!    pseudonymises every message of theirs: the recipient becomes
//!    [`pseudonym`] (a keyed hash of the customer number), the address,
//!    the transport's answers, the history's texts and the occasions'
//!    keys and vehicles go; status, service, days and money stay, so the
//!    ledger and the results keep their counts and sums;
//! 3. removes their customer records, vehicles, visits, consents,
//!    responses, journeys and merges, and scrubs the import findings that
//!    name them (`store/records/erasure.rs`); removes their emails from
//!    the local spool and
//!    takes them out of the letter batches and call lists already written
//!    (`erasure/outputs.rs`: their rows, and the text of their letters'
//!    pages; a file that held only them removed);
//! 4. rewrites the tenant's store (`Stores::rewrite_tenant`): sled keeps
//!    old values in its log until it reuses the space, so only a fresh
//!    database holding the live records alone has them gone from disk.
//!
//! A kill before step 4 ends leaves the person erased from the live
//! records but perhaps still in the old log: the erasure was not reported
//! done, and running it again (the customer is gone, the suppression entry
//! is there) rewrites the store.
//!
//! Keyed hashes: BLAKE3 in keyed mode under a secret of the installation
//! (`<state>/erasure.key`, 0600, made at the first start), over the
//! tenant, the kind of identifier and its normalised form (`identity`'s
//! match keys), so a hash names nobody without the key and is not the
//! same for two dealers.
//!
//! Must not import planner, control or import (import asks this module,
//! through [`Erasure::check_row`]); of dispatch only `dispatch::spool`'s
//! file names.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use touchpoint_common::domain::{Customer, Objection, Timestamp};
use touchpoint_common::outbox::{Message, MessageStatus};
use touchpoint_common::protocol::{AuditOutcome, CustomerExport, ExportMessage, ExportVehicle};
use touchpoint_common::{Date, TenantId};

use crate::identity::normalize;

pub(crate) mod outputs;
use crate::store::{Change, Erased, Identifier, StoreError, Stores, Suppression, TenantStore};

/// The file of the installation's erasure key, in the state directory.
pub const KEY_FILE: &str = "erasure.key";

/// An export of one customer larger than this is refused (it would not
/// fit a frame of the wire with room to spare).
pub const MAX_EXPORT_BYTES: usize = touchpoint_common::codec::MAX_FRAME_BYTES - (256 << 10);

/// How a pseudonym begins.
pub const PSEUDONYM_PREFIX: &str = "erased-";

/// Why a history line or a *why* line of an erased person's message reads
/// as it does.
const ERASED_TEXT: &str = "(erased)";

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    /// Cannot be done now; the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = ErasureError> = std::result::Result<T, E>;

/// What an erasure did, in counts; the person is named only by pseudonym.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErasureReport {
    pub pseudonym: String,
    /// Customer numbers of the person (the survivor and those merged in).
    pub numbers: u64,
    pub erased: Erased,
    /// Messages not yet sent, cancelled.
    pub cancelled: u64,
    /// Messages kept with their money and counts, pseudonymised.
    pub pseudonymised: u64,
    /// Keyed hashes added to the suppression list.
    pub suppressed: u64,
    /// Their emails removed from the local email spool.
    pub spooled: u64,
    /// Letter batches and call lists written before, rewritten without
    /// them, and those removed (they held only them).
    pub outputs_rewritten: u64,
    pub outputs_removed: u64,
    /// Files of the inbox's archive (exports as they came, their reports)
    /// that named them, removed.
    pub archived_removed: u64,
    /// Audit lines of the tenant that named one of their numbers, which
    /// now name their pseudonym.
    pub audit_lines: u64,
}

/// The rights of data subjects over the tenants' stores.
pub struct Erasure {
    stores: Arc<Stores>,
    key: [u8; 32],
    /// The folders that hold a folder per tenant outside the store (the
    /// inbox, the email spool, letter batches, call lists).
    tenant_folders: Vec<std::path::PathBuf>,
    /// The email spool (no relay configured: emails are written there).
    email_spool: Option<std::path::PathBuf>,
    /// The folders of letter batches and call lists (a folder per tenant):
    /// an erased person is taken out of the files there (`outputs`).
    outputs: Vec<std::path::PathBuf>,
    /// The inbox's archive of exports as they came: files that name an
    /// erased person are removed (`outputs::scrub_archive`).
    archive: Option<outputs::Archive>,
}

impl Erasure {
    /// Reads (or makes, at the first start) the installation's key.
    pub fn open(stores: Arc<Stores>) -> Result<Self> {
        let path = stores.state_dir().join(KEY_FILE);
        let key = crate::files::secret(&path).map_err(|e| ErasureError::Setup(e.to_string()))?;
        Ok(Self {
            stores,
            key,
            tenant_folders: Vec::new(),
            email_spool: None,
            archive: None,
            outputs: Vec::new(),
        })
    }

    /// Where emails are spooled when no relay is configured: an erased
    /// person's emails there are removed with them.
    pub fn with_email_spool(mut self, spool: std::path::PathBuf) -> Self {
        self.email_spool = Some(spool);
        self
    }

    /// The folders of letter batches and call lists: an erased person's
    /// rows and letters are taken out of the files there.
    pub fn with_outputs(mut self, letters: std::path::PathBuf, calls: std::path::PathBuf) -> Self {
        self.outputs = vec![letters, calls];
        self
    }

    /// The inbox's archive (see [`outputs::Archive`]).
    pub fn with_archive(mut self, archive: outputs::Archive) -> Self {
        self.archive = Some(archive);
        self
    }

    /// The folders with a folder per tenant that erasing a tenant removes
    /// that tenant's folder of.
    pub fn with_tenant_folders(mut self, roots: Vec<std::path::PathBuf>) -> Self {
        self.tenant_folders = roots;
        self
    }

    pub fn stores(&self) -> &Arc<Stores> {
        &self.stores
    }

    fn hash(&self, tenant: &TenantId, id: Identifier, value: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"touchpoint suppression v1\0");
        h.update(tenant.as_str().as_bytes());
        h.update(&[0, id as u8, 0]);
        h.update(value.as_bytes());
        *h.finalize().as_bytes()
    }

    /// What stands for an erased customer where a record must stay (a
    /// message's recipient, the audit log): `erased-` and 16 hex digits of
    /// the keyed hash of the customer number.
    pub fn pseudonym(&self, tenant: &TenantId, customer_no: &str) -> String {
        let h = self.hash(tenant, Identifier::CustomerNo, customer_no.trim());
        let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PSEUDONYM_PREFIX}{hex}")
    }

    /// The keyed hashes of a customer's identifiers that the suppression
    /// list keeps: number, email, phone, and name with postcode (each when
    /// the record has it in a form that identifies).
    fn identifiers(&self, tenant: &TenantId, c: &Customer) -> Vec<(Identifier, [u8; 32])> {
        let mut out = vec![(
            Identifier::CustomerNo,
            self.hash(tenant, Identifier::CustomerNo, c.customer_no.trim()),
        )];
        if let Some(e) = c.email.as_deref().and_then(normalize::email) {
            out.push((Identifier::Email, self.hash(tenant, Identifier::Email, &e)));
        }
        if let Some(p) = c.phone.as_deref().and_then(normalize::phone) {
            out.push((Identifier::Phone, self.hash(tenant, Identifier::Phone, &p)));
        }
        if let Some(np) = name_and_postcode(c) {
            out.push((
                Identifier::NameAndPostcode,
                self.hash(tenant, Identifier::NameAndPostcode, &np),
            ));
        }
        out
    }

    /// Whether an imported row is about an erased person: its customer
    /// number, or (for a row with the customer's record) their email,
    /// phone or name with postcode, is on the tenant's suppression list.
    /// `Some(reason)` is the finding the import reports, the row skipped:
    /// `customer 10042 was erased on 2026-12-10; row skipped`.
    pub fn check_row(
        &self,
        store: &TenantStore,
        customer_no: &str,
        customer: Option<&Customer>,
    ) -> Result<Option<String>, StoreError> {
        let tenant = store.id();
        let mut ids = Vec::new();
        if !customer_no.trim().is_empty() {
            ids.push((
                Identifier::CustomerNo,
                self.hash(tenant, Identifier::CustomerNo, customer_no.trim()),
            ));
        }
        if let Some(c) = customer {
            ids.extend(
                self.identifiers(tenant, c)
                    .into_iter()
                    .filter(|(i, _)| *i != Identifier::CustomerNo),
            );
        }
        for (id, h) in ids {
            if let Some(s) = store.suppressed(&h)? {
                let how = match id {
                    Identifier::CustomerNo => String::new(),
                    other => format!(" (same {} as {})", other.as_str(), s.person),
                };
                return Ok(Some(format!(
                    "customer {customer_no} was erased on {}{how}; row skipped",
                    s.erased_on
                )));
            }
        }
        Ok(None)
    }

    /// Takes a person off the suppression list, all their entries: the
    /// dealer stated a new legal basis for holding their data again.
    /// `who` is the customer number they were erased under, or the
    /// pseudonym a finding named (a row matched by email, phone or name
    /// under another number). Returns the pseudonym and how many entries
    /// went. Blocking.
    pub fn reinstate(&self, tenant: &TenantId, who: &str) -> Result<(String, u64)> {
        let store = self.stores.tenant(tenant)?;
        let who = who.trim();
        let person = if who.starts_with(PSEUDONYM_PREFIX) {
            who.to_string()
        } else {
            let h = self.hash(tenant, Identifier::CustomerNo, who);
            match store.suppressed(&h)? {
                Some(s) => s.person,
                None => who.to_string(),
            }
        };
        let n = store.unsuppress(&person)?;
        if n == 0 {
            return Err(ErasureError::NotFound(format!(
                "{who} is not on the suppression list of tenant {tenant}"
            )));
        }
        Ok((person, n))
    }

    /// Erases a customer (see the module documentation). Blocking.
    pub fn erase(&self, tenant: &TenantId, customer_no: &str) -> Result<ErasureReport> {
        let mut report = {
            let store = self.stores.tenant(tenant)?;
            self.erase_records(&store, customer_no)?
        };
        // No handle of ours is left: the rewrite closes the store.
        self.stores.rewrite_tenant(tenant)?;
        // The audit lines that named them were replaced: the old values
        // go from the central store's files too.
        if report.audit_lines > 0 {
            self.stores.rewrite_central()?;
        }
        report.pseudonym = self.pseudonym(tenant, customer_no);
        Ok(report)
    }

    fn erase_records(&self, store: &TenantStore, customer_no: &str) -> Result<ErasureReport> {
        let tenant = store.id().clone();
        let _plan = store.plan_lock();
        let (numbers, people) = match crate::customer::person(store, customer_no)? {
            Some((_, numbers)) => {
                let mut people = Vec::new();
                for n in &numbers {
                    if let Some(c) = store.customer(n)? {
                        people.push(c);
                    }
                }
                (numbers, people)
            }
            None => {
                // Erased before, its rewrite perhaps interrupted: again.
                let h = self.hash(&tenant, Identifier::CustomerNo, customer_no.trim());
                if store.suppressed(&h)?.is_some() {
                    // What a first try may not have reached: the files
                    // (the person's rows are found by number) and the audit.
                    let numbers = BTreeSet::from([customer_no.trim().to_string()]);
                    let tokens: Vec<String> = numbers.iter().cloned().collect();
                    let (files, archived) =
                        self.scrub_outputs(&tenant, &numbers, &[], &tokens, &[])?;
                    return Ok(ErasureReport {
                        audit_lines: self.scrub_audit(&tenant, &numbers, customer_no)?,
                        outputs_rewritten: files.rewritten,
                        outputs_removed: files.removed,
                        archived_removed: archived,
                        pseudonym: self.pseudonym(&tenant, customer_no),
                        ..ErasureReport::default()
                    });
                }
                return Err(ErasureError::NotFound(format!(
                    "tenant {tenant} has no customer {customer_no}"
                )));
            }
        };
        let numbers: BTreeSet<String> = numbers.into_iter().collect();
        let mut ids = Vec::new();
        for n in &numbers {
            ids.extend(store.with_index(|ix| ix.of_recipient(n))?);
        }
        let mut messages = Vec::new();
        for id in ids {
            if let Some(m) = store.message(id)? {
                messages.push(m);
            }
        }
        if let Some(m) = messages.iter().find(|m| m.status == MessageStatus::Sending) {
            return Err(ErasureError::Refused(format!(
                "message {} of this customer is being sent right now; erase again in a moment",
                m.id
            )));
        }
        let mut vins = BTreeSet::new();
        for n in &numbers {
            vins.extend(store.vehicles_of(n)?.into_iter().map(|v| v.vin));
        }
        let mut needles: Vec<String> = numbers.iter().cloned().collect();
        needles.extend(vins.iter().cloned());
        for c in &people {
            needles.extend(person_texts(c));
        }

        // 1. Suppressed first: whatever happens next, they do not come back.
        let pseudonym = self.pseudonym(&tenant, customer_no);
        let today = Date::today();
        let entries: Vec<([u8; 32], Suppression)> = people
            .iter()
            .flat_map(|c| self.identifiers(&tenant, c))
            .chain(
                numbers
                    .iter()
                    .map(|n| self.hash(&tenant, Identifier::CustomerNo, n.trim()))
                    .map(|h| (Identifier::CustomerNo, h)),
            )
            .map(|(identifier, h)| {
                (
                    h,
                    Suppression {
                        erased_on: today,
                        identifier,
                        person: pseudonym.clone(),
                    },
                )
            })
            .collect();
        store.suppress(&entries)?;

        // 2. The files dispatch wrote (letter batches, call lists): before
        // the records, so that a failure here (a file too large to read)
        // leaves the person findable and the erasure is done whole again.
        let mut tokens: Vec<String> = numbers.iter().cloned().collect();
        tokens.extend(vins.iter().cloned());
        let emails: Vec<String> = people.iter().filter_map(|c| c.email.clone()).collect();
        let (files, archived) =
            self.scrub_outputs(&tenant, &numbers, &needles, &tokens, &emails)?;

        // 3. Messages: cancelled if not sent, pseudonymised.
        let cancelled = pseudonymise(store, &messages, &|_| pseudonym.clone(), &|_| {
            needles.clone()
        })?;

        // 4. The dealer's records, and their emails in the local spool.
        let erased = store.erase_people(&numbers, &people, &needles)?;
        let spooled = self.unspool(&tenant, &messages)?;
        let audit_lines = self.scrub_audit(&tenant, &numbers, customer_no)?;
        Ok(ErasureReport {
            audit_lines,
            outputs_rewritten: files.rewritten,
            outputs_removed: files.removed,
            archived_removed: archived,
            pseudonym,
            numbers: numbers.len() as u64,
            erased,
            cancelled,
            pseudonymised: messages.len() as u64,
            suppressed: entries.len() as u64,
            spooled,
        })
    }

    /// The person out of the tenant's letter batches and call lists
    /// ([`outputs::scrub`]).
    /// and out of the inbox's archive ([`outputs::scrub_archive`]: files
    /// naming one of `tokens`, customer numbers and VINs, or `emails`).
    fn scrub_outputs(
        &self,
        tenant: &TenantId,
        numbers: &BTreeSet<String>,
        needles: &[String],
        tokens: &[String],
        emails: &[String],
    ) -> Result<(outputs::Scrubbed, u64)> {
        let files = outputs::scrub(&self.outputs, tenant, numbers, needles)
            .map_err(|e| ErasureError::Refused(format!("letter batches and call lists: {e}")))?;
        let archived = match &self.archive {
            Some(a) => outputs::scrub_archive(a, tenant, tokens, emails)
                .map_err(|e| ErasureError::Refused(format!("the inbox's archive: {e}")))?,
            None => 0,
        };
        Ok((files, archived))
    }

    /// Replaces the person's customer `numbers` in every audit line of the
    /// tenant (its text and its outcome's reason) with their pseudonym;
    /// returns how many lines changed.
    fn scrub_audit(
        &self,
        tenant: &TenantId,
        numbers: &BTreeSet<String>,
        customer_no: &str,
    ) -> Result<u64> {
        let pseudonym = self.pseudonym(tenant, customer_no);
        let hide = |text: &str| {
            numbers
                .iter()
                .fold(text.to_string(), |t, n| replace_number(&t, n, &pseudonym))
        };
        Ok(self.stores.central().rewrite_audit(|mut e| {
            if e.tenant.as_ref() == Some(tenant) {
                e.detail = hide(&e.detail);
                e.outcome = match e.outcome {
                    AuditOutcome::Ok => AuditOutcome::Ok,
                    AuditOutcome::Refused(r) => AuditOutcome::Refused(hide(&r)),
                    AuditOutcome::Failed(r) => AuditOutcome::Failed(hide(&r)),
                    AuditOutcome::Partial(r) => AuditOutcome::Partial(hide(&r)),
                };
            }
            Some(e)
        })?)
    }

    /// Removes the spooled emails of `messages` (never through a link);
    /// returns how many there were.
    fn unspool(&self, tenant: &TenantId, messages: &[Message]) -> Result<u64> {
        let Some(root) = &self.email_spool else {
            return Ok(0);
        };
        let io = |e: crate::files::FilesError| ErasureError::Refused(format!("email spool: {e}"));
        let Some(folder) = crate::files::Dir::open(root, crate::files::Perms::PRIVATE)
            .map_err(io)?
            .map(|d| d.open_sub(tenant.as_str()))
            .transpose()
            .map_err(io)?
            .flatten()
        else {
            return Ok(0);
        };
        let mut removed = 0;
        for m in messages {
            let name = crate::dispatch::spool::file_name(m.id);
            if folder.is_file(&name).map_err(io)? {
                folder.remove(&name).map_err(io)?;
                removed += 1;
            }
        }
        if removed > 0 {
            folder.sync().map_err(io)?;
        }
        Ok(removed)
    }

    /// Records (or, with `lift`, takes back) a customer's objection to
    /// advertising. Blocking.
    pub fn object(
        &self,
        tenant: &TenantId,
        customer_no: &str,
        by: &str,
        reason: &str,
        lift: bool,
    ) -> Result<()> {
        let store = self.stores.tenant(tenant)?;
        let Some((customer, _)) = crate::customer::person(&store, customer_no)? else {
            return Err(ErasureError::NotFound(format!(
                "tenant {tenant} has no customer {customer_no}"
            )));
        };
        // Kept under the survivor's number: what the planner and
        // `touchpoint customer` look up first.
        let me = customer.customer_no;
        if lift {
            store.set_objection(&me, None)?;
            if me != customer_no {
                store.set_objection(customer_no, None)?;
            }
        } else {
            store.set_objection(
                &me,
                Some(&Objection {
                    at: Timestamp::now(),
                    by: by.to_string(),
                    reason: reason.to_string(),
                }),
            )?;
        }
        Ok(())
    }

    /// Everything stored about the person a customer number stands for
    /// (Art. 15/20), bounded: an export that would not fit one answer is
    /// refused whole, never cut. Blocking.
    pub fn export(&self, tenant: &TenantId, customer_no: &str) -> Result<CustomerExport> {
        let store = self.stores.tenant(tenant)?;
        let export = export_of(&store, tenant, customer_no)?.ok_or_else(|| {
            ErasureError::NotFound(format!("tenant {tenant} has no customer {customer_no}"))
        })?;
        let size = touchpoint_common::codec::encode_frame(&export)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > MAX_EXPORT_BYTES {
            return Err(ErasureError::Refused(format!(
                "the export of customer {customer_no} is larger than the {MAX_EXPORT_BYTES} bytes one answer may carry"
            )));
        }
        Ok(export)
    }
}

/// What a retention run did in one tenant (see [`Erasure::expire`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Messages past their months, pseudonymised.
    pub messages: u64,
    /// Their emails removed from the local email spool.
    pub spooled: u64,
    pub visits: u64,
    pub responses: u64,
    /// Whether the store was rewritten (something personal went).
    pub rewritten: bool,
}

impl Erasure {
    /// Retention (brand `[retention]`, run by `crate::retention`) in one
    /// tenant: every message that ended (sent, failed, cancelled, a control
    /// record, …: not one still to go or going) with a send day before
    /// `messages_before`, and `settled` (the planner can no longer find any
    /// of its occasions again: freeing their keys plans nothing twice), is
    /// pseudonymised as an erasure does it, each under
    /// the pseudonym of its recipient's number (the same an erasure of
    /// them gives), its spooled email removed; the workshop visits and
    /// reported responses of a day before `responses_before` are removed.
    /// When anything went, the store is rewritten, so it is gone from disk
    /// too. Blocking.
    pub fn expire(
        &self,
        tenant: &TenantId,
        messages_before: Option<Date>,
        responses_before: Option<Date>,
        settled: &dyn Fn(&Message) -> bool,
    ) -> Result<Expired> {
        let mut out = Expired::default();
        {
            let store = self.stores.tenant(tenant)?;
            let _plan = store.plan_lock();
            if let Some(before) = messages_before {
                let mut old = Vec::new();
                for m in store.messages() {
                    let m = m?;
                    if m.send_on < before
                        && !pending(m.status)
                        && m.status != MessageStatus::Sending
                        && !m.recipient.starts_with(PSEUDONYM_PREFIX)
                        && settled(&m)
                    {
                        old.push(m.id);
                    }
                }
                // In slices: a long history is not held in memory whole.
                let mut texts: HashMap<String, Vec<String>> = HashMap::new();
                for ids in old.chunks(EXPIRE_SLICE) {
                    let mut slice = Vec::with_capacity(ids.len());
                    for &id in ids {
                        slice.extend(store.message(id)?);
                    }
                    for m in &slice {
                        if !texts.contains_key(&m.recipient) {
                            let mut t = vec![m.recipient.clone()];
                            if let Some(c) = store.customer(&m.recipient)? {
                                t.extend(person_texts(&c));
                            }
                            texts.insert(m.recipient.clone(), t);
                        }
                    }
                    // Each message is scrubbed of its own recipient's texts.
                    pseudonymise(
                        &store,
                        &slice,
                        &|m| self.pseudonym(tenant, &m.recipient),
                        &|m| {
                            let mut n = texts.get(&m.recipient).cloned().unwrap_or_default();
                            n.extend(m.occasions.iter().filter_map(|o| o.vin.clone()));
                            n
                        },
                    )?;
                    out.messages += slice.len() as u64;
                    out.spooled += self.unspool(tenant, &slice)?;
                }
            }
            if let Some(before) = responses_before {
                (out.visits, out.responses) = store.prune_responses(before)?;
            }
        }
        if out.messages + out.visits + out.responses > 0 {
            // No handle of ours is left: the rewrite closes the store.
            self.stores.rewrite_tenant(tenant)?;
            out.rewritten = true;
        }
        Ok(out)
    }
}

impl Erasure {
    /// Retention of files in one tenant: its letter batches, call lists
    /// and the inbox's archive last changed before `before` are removed
    /// ([`outputs::expire_files`]). Returns how many.
    pub fn expire_files(&self, tenant: &TenantId, before: std::time::SystemTime) -> Result<u64> {
        outputs::expire_files(&self.outputs, self.archive.as_ref(), tenant, before)
            .map_err(|e| ErasureError::Refused(format!("old files: {e}")))
    }
}

/// Messages retention pseudonymises at once (`Erasure::expire`).
const EXPIRE_SLICE: usize = 1_000;

/// What erasing a dealer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantErased {
    /// Customers (people, merges resolved) whose export went to the archive.
    pub archived: u64,
    /// Folders removed besides the store (inbox, spool, batches, calls).
    pub folders: u64,
    /// Records of the dealer's brand material removed (`slots/<tenant>`:
    /// its versions and proposals).
    pub material: u64,
}

impl Erasure {
    /// A dealer who leaves (see `Request::EraseTenant`): every person's
    /// export written to `archive` first (a folder created new, 0700, one
    /// file per person, 0600), then the store removed with the registry
    /// entry and its figures, then its slots (`slots/<tenant>`, brand
    /// material in the central store, every version and proposal), then `folders` (the tenant's inbox, email
    /// spool, letter batches and call lists), never through a link. The
    /// caller checks that no dealer policy registers the tenant any more.
    /// The audit log keeps the tenant's lines; the brand's pooled figures
    /// are computed from the stores present at each report, so the dealer
    /// drops out of them, and a learned value already in force stays
    /// (it was pooled from at least `min_dealers` dealers).
    /// Blocking.
    pub fn erase_tenant(
        &self,
        tenant: &TenantId,
        archive: Option<&std::path::Path>,
    ) -> Result<TenantErased> {
        let folders: Vec<std::path::PathBuf> = self
            .tenant_folders
            .iter()
            .map(|root| root.join(tenant.as_str()))
            .collect();
        let mut out = TenantErased::default();
        if let Some(dir) = archive {
            if std::fs::symlink_metadata(dir).is_ok() {
                return Err(ErasureError::Refused(format!(
                    "{}: exists; the archive is written to a new folder",
                    dir.display()
                )));
            }
            let folder = crate::files::Dir::create(dir, crate::files::Perms::PRIVATE)
                .map_err(|e| ErasureError::Refused(format!("archive: {e}")))?;
            if let Some(store) = self.stores.tenant_if_exists(tenant)? {
                let merge_map = store.merge_map()?;
                let numbers: Vec<String> = store
                    .customers()
                    .map(|c| c.map(|c| c.customer_no))
                    .collect::<Result<_, _>>()?;
                for no in numbers.iter().filter(|n| !merge_map.contains_key(*n)) {
                    let Some(export) = export_of(&store, tenant, no)? else {
                        continue;
                    };
                    let bytes = serde_json::to_vec_pretty(&export)
                        .map_err(|e| ErasureError::Setup(format!("archive: {e}")))?;
                    let name = format!("customer-{:06}.json", out.archived + 1);
                    folder
                        .write(name.as_str(), &[&bytes], crate::files::Replace::No)
                        .map_err(|e| ErasureError::Refused(format!("archive: {e}")))?;
                    out.archived += 1;
                }
                folder
                    .sync()
                    .map_err(|e| ErasureError::Refused(format!("archive: {e}")))?;
            }
        }
        self.stores.remove_tenant(tenant)?;
        out.material = self.stores.central().remove_material(
            &crate::approvals::slots::name(tenant),
            crate::events::Audience::Tenant(tenant.clone()),
        )?;
        for dir in &folders {
            match std::fs::symlink_metadata(dir) {
                Ok(m) if m.is_dir() => {
                    std::fs::remove_dir_all(dir)
                        .map_err(|e| ErasureError::Refused(format!("{}: {e}", dir.display())))?;
                    out.folders += 1;
                }
                // A link or a file where the tenant's folder should be:
                // not ours to follow, removed itself.
                Ok(_) => {
                    std::fs::remove_file(dir)
                        .map_err(|e| ErasureError::Refused(format!("{}: {e}", dir.display())))?;
                    out.folders += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ErasureError::Refused(format!("{}: {e}", dir.display()))),
            }
        }
        Ok(out)
    }
}

/// `text` with every whole occurrence of the customer number `number`
/// (not part of a longer word or number) replaced by `with`.
pub fn replace_number(text: &str, number: &str, with: &str) -> String {
    let number = number.trim();
    if number.is_empty() || !text.contains(number) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(number) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + number.len()..].chars().next();
        let whole =
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { number });
        rest = &rest[i + number.len()..];
    }
    out.push_str(rest);
    out
}

/// A status a message has before it goes out: an erasure cancels it.
fn pending(s: MessageStatus) -> bool {
    matches!(
        s,
        MessageStatus::Planned
            | MessageStatus::Rendered
            | MessageStatus::Queued
            | MessageStatus::Deferred
            | MessageStatus::Held
    )
}

/// Messages of a tenant made anonymous (erasure's step 2, and retention's
/// for messages past their months): those not yet sent cancelled (the
/// reservation released), the occasions freed; then each [`scrub`]bed
/// under `pseudonym_of` it (two moves: the occasions' keys are freed by
/// the keys they had). Returns how many were cancelled. The caller holds
/// the planning lock.
fn pseudonymise(
    store: &TenantStore,
    messages: &[Message],
    pseudonym_of: &dyn Fn(&Message) -> String,
    needles_of: &dyn Fn(&Message) -> Vec<String>,
) -> Result<u64> {
    let now = Timestamp::now();
    let mut first = Vec::with_capacity(messages.len());
    let mut cancelled = 0;
    for m in messages {
        let mut c = Change::new(m.clone(), m.clone());
        c.free_occasions = true;
        if pending(m.status) {
            c.after.set_status(
                now,
                MessageStatus::Cancelled,
                "cancelled: the customer was erased",
            );
            crate::ledger::release(&mut c);
            cancelled += 1;
        }
        first.push(c);
    }
    store.apply(&first)?;
    let second: Vec<Change> = first
        .into_iter()
        .map(|c| {
            let after = scrub(
                c.after.clone(),
                &pseudonym_of(&c.after),
                &needles_of(&c.after),
            );
            Change::new(c.after, after)
        })
        .collect();
    store.apply(&second)?;
    Ok(cancelled)
}

/// The texts of a customer record that name them, for scrubbing what
/// quotes them (import findings, a message's *why*).
fn person_texts(c: &Customer) -> Vec<String> {
    let mut out = vec![
        c.first_name.clone(),
        c.last_name.clone(),
        c.display_name(),
        c.address.street.clone(),
    ];
    out.extend(c.company.clone());
    out.extend(c.email.clone());
    out.extend(c.phone.clone());
    out.retain(|t| !t.trim().is_empty());
    out
}

/// A message of an erased person as it stays: what counts and costs, and
/// nothing that names them.
fn scrub(mut m: Message, pseudonym: &str, needles: &[String]) -> Message {
    m.recipient = pseudonym.to_string();
    m.dispatch.address = String::new();
    m.dispatch.last_error = String::new();
    for (_, _, text) in &mut m.history {
        *text = ERASED_TEXT.into();
    }
    let lower: Vec<String> = needles
        .iter()
        .map(|n| n.to_lowercase())
        .filter(|n| n.chars().count() >= 3)
        .collect();
    for w in &mut m.why {
        let t = w.text.to_lowercase();
        if lower.iter().any(|n| t.contains(n.as_str())) {
            w.text = ERASED_TEXT.into();
        }
    }
    for o in &mut m.occasions {
        o.key = format!("{}:{}:{}", o.service, pseudonym, o.due);
        o.vin = None;
        o.reason = ERASED_TEXT.into();
    }
    m
}

/// The name with the postcode, in match-key form: how a person is known
/// again under a new number and without email or phone.
fn name_and_postcode(c: &Customer) -> Option<String> {
    let postcode = normalize::postcode(&c.address.postcode);
    let name = if c.is_company {
        normalize::company(c.company.as_deref().unwrap_or(&c.last_name))
    } else {
        format!(
            "{} {}",
            normalize::name(&c.first_name),
            normalize::name(&c.last_name)
        )
    };
    let name = name.trim().to_string();
    (!postcode.is_empty() && !name.is_empty()).then(|| format!("{name}|{postcode}"))
}

fn export_of(
    store: &TenantStore,
    tenant: &TenantId,
    customer_no: &str,
) -> Result<Option<CustomerExport>> {
    let Some((customer, numbers)) = crate::customer::person(store, customer_no)? else {
        return Ok(None);
    };
    let mut records = Vec::new();
    let mut vehicles = Vec::new();
    let mut consents = Vec::new();
    let mut responses = Vec::new();
    let mut ids = Vec::new();
    let mut objection = None;
    for n in &numbers {
        records.extend(store.customer(n)?);
        for v in store.vehicles_of(n)? {
            vehicles.push(ExportVehicle {
                visits: store.visits_of(&v.vin)?,
                vehicle: v,
            });
        }
        consents.extend(store.consents_of(n)?);
        responses.extend(store.responses_of(n)?);
        ids.extend(store.with_index(|ix| ix.of_recipient(n))?);
        if objection.is_none() {
            objection = store.objection(n)?;
        }
    }
    ids.sort_unstable();
    let mut messages = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(message) = store.message(id)? {
            messages.push(ExportMessage {
                credited: store.credit(id)?,
                message,
            });
        }
    }
    let merges = store
        .merges(true)?
        .into_iter()
        .filter(|m| numbers.contains(&m.survivor) || numbers.contains(&m.merged))
        .collect();
    Ok(Some(CustomerExport {
        tenant: tenant.clone(),
        exported_at: Timestamp::now(),
        journey: store.journey(&customer.customer_no)?,
        customer,
        numbers,
        records,
        vehicles,
        consents,
        responses,
        merges,
        objection,
        messages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: &str, last: &str, postcode: &str) -> Customer {
        let mut c = Customer {
            first_name: first.into(),
            last_name: last.into(),
            ..Customer::default()
        };
        c.address.postcode = postcode.into();
        c
    }

    #[test]
    fn a_customer_number_is_replaced_only_where_it_stands_whole() {
        assert_eq!(
            replace_number(
                "customer 10042, not 100421 or A10042; (10042)",
                "10042",
                "erased-1"
            ),
            "customer erased-1, not 100421 or A10042; (erased-1)"
        );
        assert_eq!(replace_number("nothing", "10042", "x"), "nothing");
    }

    #[test]
    fn a_name_with_its_postcode_is_known_again_in_another_spelling() {
        let a = name_and_postcode(&person("Jürgen", "Weiß", "80331"));
        assert_eq!(a, name_and_postcode(&person("JUERGEN", "Weiss", " 80331")));
        assert_ne!(a, name_and_postcode(&person("Jürgen", "Weiß", "80333")));
        assert_eq!(name_and_postcode(&person("Jürgen", "Weiß", "")), None);
    }
}
