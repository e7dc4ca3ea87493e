//! One dealer's sealed data room: the handle the rest of the daemon holds,
//! bound to one tenant's database at open time (none of its methods takes a
//! tenant id), speaking in domain terms: customers, consents, messages,
//! ledger rows; never keys or trees.
//!
//! It owns no tree. It opens the database ([`TenantDb`]) and its parts, each
//! of which owns the trees it writes (fields private to the part's file and
//! its children), and hands every call to the part that answers it:
//!
//! | tree            | key                              | value            | written by |
//! |-----------------|----------------------------------|------------------|------------|
//! | `customers`     | customer_no                      | Customer         | `records/import/apply.rs` |
//! | `vehicles`      | vin                              | Vehicle          | `records/import/apply.rs` |
//! | `owner`         | customer_no 0x00 vin             | ()               | `records/import/apply.rs` |
//! | `consents`      | customer_no 0x00 channel(1)      | Consent          | `records/import/apply.rs`; `records.rs` (`record_consent`, `record_consents_and_bad_addresses`) |
//! | `visits`        | vin date(4) kind                 | ServiceVisit     | `records/import/apply.rs` |
//! | `responses`     | customer_no 0x00 vin 0x00 date(4) kind(1) | ReportedResponse | `records/import/apply.rs` |
//! | `imports`       | import_id(8)                     | ImportReport     | `records/import.rs` (`finish`); `records.rs` (`record_import`, `update_import`) |
//! | `import_hash`   | content hash                     | import_id(8)     | `records/import.rs` (`finish`) |
//! | `merges`        | merge_id(8)                      | MergeRecord      | `records/merges.rs` |
//! | `merged`        | customer_no, active merges only  | merge_id(8)      | `records/merges.rs` |
//! | `bad_addresses` | address, trimmed, lower case     | reason           | `records.rs` (`mark_bad_address`, `record_consents_and_bad_addresses`) |
//! | `journeys`      | customer_no                      | JourneyRecord    | `records/journeys.rs` |
//! | `as_of`         | `c` 0x00 customer_no, `v` 0x00 vin | Date (the export's "as of") | `records/import/apply.rs` |
//! | `suppressed`    | keyed hash(32) of an erased person's identifier | Suppression | `records/erasure.rs` |
//! | `objections`    | customer_no                      | Objection        | `records/erasure.rs` |
//! | `meta`          | `counters`                       | Counters         | `records/import.rs` (`finish`); `records.rs` (`record_import`); `records/merges.rs` |
//! |                 | `next_import_id`, `next_merge_id`, `generation` | u64 | `records.rs` (`next_id`, `bump_generation`) |
//! |                 | `pending_import` (an earlier version's marker) | ImportReport | `records/import.rs` (`finish` removes it) |
//! |                 | `parked_standing` (written at a close, removed at the open) | the journeys' tracker, the planner's standing, the opt-in counts | `records/changes.rs` (`park`, `unpark`) |
//! |                 | `next_message_id`, `plan_stamp`  | u64              | `outbox/write.rs` |
//! | `outbox`        | id(8)                            | Message          | `outbox/write.rs` |
//! | `occasions`     | occasion key                     | id(8)            | `outbox/write.rs` |
//! | `contacts`      | recipient 0x00 send day(4) id(8) | MessageStatus    | `outbox/write.rs` |
//! | `by_day`        | send day(4) id(8)                | ()               | `outbox/write.rs` |
//! | `queue`         | channel(1) due ms(8) id(8)       | ()               | `outbox/write.rs` |
//! | `inflight`      | id(8)                            | ()               | `outbox/write.rs` |
//! | `ledger`        | month yyyymm(4) service          | LedgerEntry      | `outbox/write.rs` |
//! | `daily`         | day(4)                           | emails sent, u64 | `outbox/write.rs` |
//! | `credits`       | id(8)                            | Credited (the response credited to the message or control record) | `outbox/write.rs` |
//! | `tracking`      | id(8)                            | TrackedLinks (click tracking: the links an email was sent with, its clicks) | `outbox/write.rs` |
//!
//! Rolling an import back (`records/import/journal.rs`, `replay`) restores
//! what the import wrote, in the trees it wrote.
//!
//! Integers are big-endian and days [`touchpoint_common::Date::key_bytes`],
//! so every scan runs in key order; each part's `keys.rs` encodes its keys.
//! `meta` is the one tree two parts share: each holds its own handle and
//! writes only its own keys, whose names are private to its `keys.rs`.
//!
//! `records/erasure.rs` also removes a person's records from the trees of
//! `records/import/apply.rs` and scrubs findings in `imports` (an erasure).
//!
//! On disk: `<tenant>/store/` is the sled database (`<tenant>/store.rewrite/`
//! only while it is being rewritten, see `rewrite.rs`), `<tenant>/import.staging`
//! an import being written, `<tenant>/import.undo/` the undo journal of
//! one being applied (see [`super::ImportTxn`]) and `<tenant>/standing.seal`
//! the seal of a standing written down at the last close (`seal.rs`).
//!
//! Uses `db`, `records`, `outbox`, `central` and the leaf modules; nothing
//! in the store imports it but the root (`store.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

use touchpoint_common::domain::{
    Channel, Consent, Customer, FieldSet, ImportReport, JourneyRecord, MergeRecord, ServiceVisit,
    TenantStats, Timestamp, Vehicle,
};
use touchpoint_common::outbox::{LedgerEntry, Message, TrackedLinks};
use touchpoint_common::protocol::OptIns;
use touchpoint_common::report::{Credited, ReportedResponse};
use touchpoint_common::{Date, TenantId};

use super::central::{FigureBoard, TenantFigures};
use super::db::TenantDb;
use super::error::Result;
use super::outbox::index::OutboxIndex;
use super::outbox::write::{Change, PlanWrite};
use super::outbox::{Contact, Outbox};
use super::records::changes::Seal;
use super::records::erasure::{Erased, Suppression};
use super::records::import::{self, ImportTxn};
pub use super::records::tracker::{Park, Standing};
use super::records::Records;

/// This executable, as far as a standing written down by it is concerned:
/// its version, size and modification time (another build, or the same
/// rebuilt, is another). One that cannot be read is unlike every other.
fn build_identity() -> u64 {
    static ID: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .ok()
            .and_then(|m| {
                let at = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some((m.len(), at.as_nanos()))
            });
        let text = match exe {
            Some((len, at)) => format!("{} {len} {at}", env!("CARGO_PKG_VERSION")),
            // Unlike any other process's: a random key of this one.
            None => {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u32(std::process::id());
                format!("unknown {}", h.finish())
            }
        };
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    })
}

pub struct TenantStore {
    db: Arc<TenantDb>,
    records: Records,
    outbox: Outbox,
}

/// A derived view's own state kept with the open store (the identity
/// pass's match keys), with the customers changed since it was made.
pub type Tracked = (
    std::collections::BTreeSet<String>,
    Box<dyn std::any::Any + Send>,
);

impl TenantStore {
    pub(super) fn open(
        id: TenantId,
        dir: &Path,
        cache_bytes: u64,
        events: Arc<crate::events::Events>,
        board: FigureBoard,
    ) -> Result<Self> {
        // First, so that a leftover of an interrupted import never takes
        // the space the database needs to open.
        import::before_open(dir)?;
        super::rewrite::before_open(dir)?;
        // Before sled touches the files: whether nothing wrote them since
        // the last close sealed its standing.
        let sealed = super::seal::take(dir).map(|token| Seal {
            build: build_identity(),
            token,
        });
        let db = Arc::new(TenantDb::open(id, dir, cache_bytes, events)?);
        let store = Self {
            records: Records::open(db.clone(), board)?,
            outbox: Outbox::open(db.clone())?,
            db,
        };
        import::recover(&store.records)?;
        // After recovery: a standing kept at the last close is read back
        // only while the data stands where it was then.
        store.records.unpark(store.outbox.writes(), sealed)?;
        // Whatever recovery did, and whatever an earlier run wrote after
        // its figures: the listing shows this store as it is.
        if let Err(e) = store.publish_figures() {
            tracing::warn!(tenant = %store.id(), error = %e, "cannot write the tenant's figures");
        }
        Ok(store)
    }

    pub fn id(&self) -> &TenantId {
        self.db.id()
    }

    /// Why this handle is out of service, if it is: it met an I/O error,
    /// refuses writes, and the open set reopens the database once nobody
    /// holds it (see [`super::Stores::tenant`]).
    pub fn trouble(&self) -> Option<String> {
        self.db.trouble()
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()
    }

    pub(super) fn flush_if_dirty(&self) -> Result<()> {
        self.db.flush_if_dirty()
    }

    /// The file sled locks while the database is open.
    pub(super) fn lock_file(&self) -> PathBuf {
        self.db.lock_file()
    }

    /// What the tenants listing shows of this tenant.
    pub fn figures(&self) -> Result<TenantFigures> {
        self.records.figures()
    }

    /// Writes this tenant's figures to the central store.
    pub(super) fn publish_figures(&self) -> Result<()> {
        self.records.publish_figures()
    }

    /// Writes the figures if a change is pending (the flusher's round).
    pub(super) fn publish_figures_if_due(&self) {
        self.records.publish_figures_if_due()
    }

    /// Held by a planning run that writes, and by dispatch while it moves
    /// messages, from reading to committing.
    pub fn plan_lock(&self) -> MutexGuard<'_, ()> {
        self.outbox.plan_lock()
    }

    /// Takes the writer lock for a multi-step change (identity pass).
    pub fn writer(&self) -> MutexGuard<'_, ()> {
        self.db.lock_writer()
    }

    // ----- the dealer's data ------------------------------------------------------

    pub fn customer(&self, customer_no: &str) -> Result<Option<Customer>> {
        self.records.customer(customer_no)
    }

    /// All customers in customer-number order.
    pub fn customers(&self) -> impl Iterator<Item = Result<Customer>> + '_ {
        self.records.customers()
    }

    pub fn vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.records.vehicle(vin)
    }

    /// All vehicles in VIN order.
    pub fn vehicles(&self) -> impl Iterator<Item = Result<Vehicle>> + '_ {
        self.records.vehicles()
    }

    /// Vehicles whose current holder is this customer number.
    pub fn vehicles_of(&self, customer_no: &str) -> Result<Vec<Vehicle>> {
        self.records.vehicles_of(customer_no)
    }

    /// Vehicles kept whose holder is not a known customer: how many, and
    /// the first `limit` (VIN, customer number).
    pub fn parked_vehicles(&self, limit: usize) -> Result<(u64, Vec<(String, String)>)> {
        self.records.parked_vehicles(limit)
    }

    /// The latest consent statement per channel of one customer.
    pub fn consents_of(&self, customer_no: &str) -> Result<Vec<Consent>> {
        self.records.consents_of(customer_no)
    }

    pub fn consent(&self, customer_no: &str, channel: Channel) -> Result<Option<Consent>> {
        self.records.consent(customer_no, channel)
    }

    /// All current consent statements, grouped by customer number.
    pub fn consents(&self) -> impl Iterator<Item = Result<Consent>> + '_ {
        self.records.consents()
    }

    /// The journey stages of one recipient as last derived.
    pub fn journey(&self, customer_no: &str) -> Result<Option<JourneyRecord>> {
        self.records.journey(customer_no)
    }

    /// Every stored journey, in customer-number order.
    pub fn journeys(&self) -> impl Iterator<Item = Result<(String, JourneyRecord)>> + '_ {
        self.records.journeys()
    }

    /// Writes changed journeys (`None` removes one); see
    /// `planner::journey::refresh`, the one caller.
    pub fn write_journeys(&self, changes: &[(String, Option<JourneyRecord>)]) -> Result<()> {
        self.records.write_journeys(changes)
    }

    /// Service visits of one vehicle in date order.
    pub fn visits_of(&self, vin: &str) -> Result<Vec<ServiceVisit>> {
        self.records.visits_of(vin)
    }

    /// All service visits, grouped by VIN, each vehicle's in date order.
    pub fn visits(&self) -> impl Iterator<Item = Result<ServiceVisit>> + '_ {
        self.records.visits()
    }

    /// All responses reported in response files (appointments, offers
    /// accepted), grouped by customer number.
    pub fn responses(&self) -> impl Iterator<Item = Result<ReportedResponse>> + '_ {
        self.records.responses()
    }

    /// Responses reported in response files that name this customer number.
    pub fn responses_of(&self, customer_no: &str) -> Result<Vec<ReportedResponse>> {
        self.records.responses_of(customer_no)
    }

    pub fn stats(&self) -> Result<TenantStats> {
        self.records.stats()
    }

    /// Recipients by what they allow: email and phone consent given and not
    /// withdrawn, post refused. Counted once per data version (a consent
    /// changes it), so listing many tenants often costs no scan.
    pub fn opt_ins(&self) -> Result<OptIns> {
        self.records.opt_ins()
    }

    // ----- imports ----------------------------------------------------------------

    /// Starts an atomic import in which every field of a record is replaced.
    /// Blocks while another writer is active.
    pub fn begin_import(&self, import_id: u64) -> Result<ImportTxn<'_>> {
        import::begin(&self.records, import_id, FieldSet::ALL, Timestamp::now())
    }

    /// Starts an atomic import of a file that has the columns `present`;
    /// `now` stamps consent statements without a date.
    pub fn begin_import_with(
        &self,
        import_id: u64,
        present: FieldSet,
        now: Timestamp,
    ) -> Result<ImportTxn<'_>> {
        import::begin(&self.records, import_id, present, now)
    }

    /// True once after this store completed, when it opened, an import an
    /// earlier version had interrupted after its commit point (it still
    /// needs its identity pass).
    pub fn take_completed_import(&self) -> bool {
        self.records.take_completed_import()
    }

    /// Newest first.
    pub fn imports(&self, limit: usize) -> Result<Vec<ImportReport>> {
        self.records.imports(limit)
    }

    pub fn import(&self, import_id: u64) -> Result<Option<ImportReport>> {
        self.records.import(import_id)
    }

    /// The committed import that had exactly these bytes, if any.
    pub fn import_by_hash(&self, content_hash: &str) -> Result<Option<u64>> {
        self.records.import_by_hash(content_hash)
    }

    /// Records an import that changed no data (failed, or already imported).
    pub fn record_import(&self, report: &ImportReport) -> Result<()> {
        self.records.record_import(report)
    }

    /// Replaces a stored import report (the identity pass adds its merge count).
    pub fn update_import(&self, report: &ImportReport) -> Result<()> {
        self.records.update_import(report)
    }

    pub fn next_import_id(&self) -> Result<u64> {
        self.records.next_import_id()
    }

    // ----- merges -----------------------------------------------------------------

    pub fn merges(&self, include_undone: bool) -> Result<Vec<MergeRecord>> {
        self.records.merges(include_undone)
    }

    pub fn merge(&self, merge_id: u64) -> Result<Option<MergeRecord>> {
        self.records.merge(merge_id)
    }

    /// The active merge that folded this customer into another, if any.
    pub fn merged_into(&self, customer_no: &str) -> Result<Option<MergeRecord>> {
        self.records.merged_into(customer_no)
    }

    /// Merged customer number -> surviving customer number, for every active merge.
    pub fn merge_map(&self) -> Result<std::collections::HashMap<String, String>> {
        self.records.merge_map()
    }

    pub fn next_merge_id(&self) -> Result<u64> {
        self.records.next_merge_id()
    }

    /// Stores new merges atomically and durably. The caller holds [`Self::writer`].
    /// A merge whose `merged` customer is already merged is refused.
    pub fn record_merges(&self, merges: &[MergeRecord]) -> Result<()> {
        self.records.record_merges(merges)
    }

    /// Undoes one merge: the merged customer is a recipient of its own again.
    pub fn undo_merge(&self, merge_id: u64, by: &str) -> Result<MergeRecord> {
        self.records.undo_merge(merge_id, by)
    }

    /// Entries and bytes of keys and values per tree, and the database's
    /// size on disk: where the store's bytes go (benchmarks). Reads every
    /// record.
    pub fn tree_bytes(&self) -> Result<(Vec<super::db::TreeBytes>, u64)> {
        Ok((self.db.tree_bytes()?, self.db.size_on_disk()))
    }

    // ----- what dispatch learns about the dealer's data ------------------------------

    /// Changes whenever the tenant's data changes (imports, merges, undos,
    /// consent changes): the planner skips a tenant whose data, policy and day
    /// are those of its last run.
    pub fn data_version(&self) -> Result<u64> {
        self.records.data_version()
    }

    /// The customers whose journeys must be derived again on `day` under
    /// the policy fingerprint `policy` (changed since the journeys were
    /// last derived for everyone), with the data version to hand to
    /// [`TenantStore::journeys_derived`]; `None`: every recipient's
    /// (`records/changes.rs`).
    pub fn journeys_pending(
        &self,
        day: Date,
        policy: u64,
    ) -> Result<Option<(u64, std::collections::BTreeSet<String>)>> {
        self.records.journeys_pending(day, policy)
    }

    /// The journeys stored are derived on `day` under `policy` from the
    /// data at `version`: every recipient's (`all`), or those pending then.
    pub fn journeys_derived(&self, day: Date, policy: u64, version: u64, all: bool) {
        self.records.journeys_derived(day, policy, version, all)
    }

    /// The identity pass's own state (its match keys) and the customers
    /// changed since, if nothing else changed; taken out, to be given back
    /// with [`TenantStore::identity_keep`].
    pub fn identity_take(&self) -> Result<Option<Tracked>> {
        self.records.identity_take()
    }

    /// Keeps the identity pass's state, made from the data at `version`.
    pub fn identity_keep(&self, version: u64, state: Box<dyn std::any::Any + Send>) {
        self.records.identity_keep(version, state)
    }

    /// The last committed planning run's own state (the planner's
    /// incremental re-plan) and the customers changed since, if nothing
    /// else changed; taken out, to be given back with
    /// [`TenantStore::plan_keep`].
    pub fn plan_take(&self) -> Result<Option<(std::collections::BTreeSet<String>, Standing)>> {
        self.records.plan_take()
    }

    /// Keeps a committed planning run's state, planned from the data at
    /// `version`; written down when the store closes, if the state says
    /// how ([`Park`]), and read back when it opens.
    pub fn plan_keep(&self, version: u64, state: Box<dyn Park>) {
        self.records.plan_keep(version, state)
    }

    /// Writes down what the next open may read back of the derived views'
    /// standing (`records::changes`): as the store closes. Returns the
    /// token to seal the closed database's files with (`seal.rs`), if
    /// anything was written.
    pub(super) fn park(&self) -> Result<Option<u64>> {
        let token = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(self.outbox.writes());
            h.finish()
        };
        let seal = Seal {
            build: build_identity(),
            token,
        };
        Ok(self
            .records
            .park(self.outbox.writes(), seal)?
            .then_some(token))
    }

    /// The tenant's folder (its database is in `store/`).
    pub(super) fn dir(&self) -> &Path {
        self.db.dir()
    }

    /// Drops what the store knows of what changed since the derived views
    /// were computed: the next planning run plans every recipient.
    #[cfg(test)]
    pub fn forget_changes(&self) {
        self.records.forget_changes()
    }

    /// Records of the dealer's data (customers, vehicles, consents,
    /// visits, journeys) decoded since the store was opened: a debug
    /// figure; tests check with it that a small import reads a small part
    /// of a large tenant.
    pub fn records_read(&self) -> u64 {
        self.records.records_read()
    }

    /// Marks the data changed for writers that leave the counters alone.
    pub fn bump_generation(&self) -> Result<()> {
        self.records.bump_generation()
    }

    /// Records an address that hard-bounced: it is not used again.
    pub fn mark_bad_address(&self, address: &str, reason: &str) -> Result<()> {
        self.records.mark_bad_address(address, reason)
    }

    /// Why an address is not used, if it hard-bounced.
    pub fn bad_address(&self, address: &str) -> Result<Option<String>> {
        self.records.bad_address(address)
    }

    /// Every address that hard-bounced (lower case), with the reason.
    pub fn bad_addresses(&self) -> Result<Vec<(String, String)>> {
        self.records.bad_addresses()
    }

    /// Records a consent statement unless a later one is on record (an
    /// unsubscribe, a call-centre answer). Returns whether it was recorded.
    pub fn record_consent(&self, c: &Consent) -> Result<bool> {
        self.records.record_consent(c)
    }

    /// Records consent statements (each unless a later one is on record)
    /// and addresses not to use again (address, reason) in one
    /// transaction, all or none, without flushing. Returns how many
    /// statements were recorded.
    pub fn record_consents_and_bad_addresses(
        &self,
        consents: &[Consent],
        bad: &[(String, String)],
    ) -> Result<usize> {
        self.records
            .record_consents_and_bad_addresses(consents, bad)
    }

    // ----- a data subject's rights (`records/erasure.rs`) -------------------------

    /// Removes every record of one person (`numbers`: a customer number
    /// and those merged into it; `people`: their customer records) and
    /// scrubs the import findings containing any of `needles`. The outbox
    /// is the caller's (through [`TenantStore::apply`]); what stays on disk
    /// until the store is rewritten is `Stores::rewrite_tenant`'s.
    pub fn erase_people(
        &self,
        numbers: &std::collections::BTreeSet<String>,
        people: &[Customer],
        needles: &[String],
    ) -> Result<Erased> {
        self.records.erase_people(numbers, people, needles)
    }

    /// Removes the workshop visits and reported responses of a day before
    /// `before` (retention); returns how many of each went. What stays on
    /// disk until the store is rewritten is `Stores::rewrite_tenant`'s.
    pub fn prune_responses(&self, before: Date) -> Result<(u64, u64)> {
        self.records.prune_responses(before)
    }

    /// Adds keyed hashes to the suppression list.
    pub fn suppress(&self, entries: &[([u8; 32], Suppression)]) -> Result<()> {
        self.records.suppress(entries)
    }

    /// The suppression entry of a keyed hash, if any.
    pub fn suppressed(&self, hash: &[u8; 32]) -> Result<Option<Suppression>> {
        self.records.suppressed(hash)
    }

    /// Whether someone may have been erased after `t` (a suppression
    /// entry of `t`'s day or later stands; entries keep the day only).
    pub fn erased_since(&self, t: Timestamp) -> Result<bool> {
        self.records.erased_since(t)
    }

    /// Removes every suppression entry of one person (by pseudonym).
    pub fn unsuppress(&self, person: &str) -> Result<u64> {
        self.records.unsuppress(person)
    }

    /// Records or lifts a customer's objection to advertising.
    pub fn set_objection(
        &self,
        customer_no: &str,
        objection: Option<&touchpoint_common::domain::Objection>,
    ) -> Result<()> {
        self.records.set_objection(customer_no, objection)
    }

    pub fn objection(
        &self,
        customer_no: &str,
    ) -> Result<Option<touchpoint_common::domain::Objection>> {
        self.records.objection(customer_no)
    }

    /// The customer numbers with an objection standing.
    pub fn objections(&self) -> Result<std::collections::BTreeSet<String>> {
        self.records.objections()
    }

    // ----- the outbox ----------------------------------------------------------

    pub fn message(&self, id: u64) -> Result<Option<Message>> {
        self.outbox.message(id)
    }

    /// All messages, oldest first.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = Result<Message>> + '_ {
        self.outbox.messages()
    }

    /// The response credited to a message or control record, if any.
    pub fn credit(&self, id: u64) -> Result<Option<Credited>> {
        self.outbox.credit(id)
    }

    /// A tracked email's links and the clicks on them (click tracking).
    pub fn tracking(&self, id: u64) -> Result<Option<TrackedLinks>> {
        self.outbox.tracking(id)
    }

    /// Every tracked email's links and clicks, by message id.
    pub fn all_tracking(&self) -> Result<BTreeMap<u64, TrackedLinks>> {
        self.outbox.all_tracking()
    }

    /// Every credited response, by message id.
    pub fn credits(&self) -> Result<BTreeMap<u64, Credited>> {
        self.outbox.credits()
    }

    /// The tenant's responses by month, as the last attribution pass
    /// counted them.
    pub fn response_months(&self) -> Result<touchpoint_common::report::ResponseMonths> {
        self.outbox.response_months()
    }

    /// Keeps an attribution pass's count of responses by month.
    pub fn set_response_months(
        &self,
        months: &touchpoint_common::report::ResponseMonths,
    ) -> Result<()> {
        self.outbox.set_response_months(months)
    }

    pub fn message_count(&self) -> usize {
        self.outbox.message_count()
    }

    /// The message an occasion was planned into, if any.
    pub fn planned_occasion(&self, key: &str) -> Result<Option<u64>> {
        self.outbox.planned_occasion(key)
    }

    /// A recipient's messages that count as contacts, in date order.
    pub fn contacts_of(&self, recipient: &str) -> Result<Vec<Contact>> {
        self.outbox.contacts_of(recipient)
    }

    /// Messages not yet sent per send day, from `from` on.
    pub fn day_load(&self, from: Date) -> Result<BTreeMap<Date, u32>> {
        self.outbox.day_load(from)
    }

    /// Messages not yet sent whose send day is `from` or later.
    pub fn pending_messages(&self, from: Date) -> Result<Vec<Message>> {
        self.outbox.pending_messages(from)
    }

    /// The messages not yet sent (planned or rendered) with a send day
    /// from `from` on whose recipient is one of `recipients`, in send-day
    /// and id order (as [`TenantStore::pending_messages`] lists them).
    pub fn pending_messages_of<'a>(
        &self,
        from: Date,
        recipients: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Message>> {
        self.outbox.pending_messages_of(from, recipients)
    }

    /// Counts the outbox writes made by anything but a planning run's
    /// commit (dispatch, operators, erasure, retention) since the store
    /// was opened: equal at two moments, nothing but planning wrote the
    /// outbox in between.
    pub fn outbox_writes(&self) -> u64 {
        self.outbox.writes()
    }

    /// Ids of planned or rendered messages whose send day is `day` or earlier.
    pub fn releasable(&self, day: Date) -> Result<Vec<u64>> {
        self.outbox.releasable(day)
    }

    /// Ids of messages queued or deferred on `channel` and due at `now_ms`
    /// or earlier, earliest first, at most `limit`.
    pub fn due(&self, channel: Channel, now_ms: i64, limit: usize) -> Result<Vec<u64>> {
        self.outbox.due(channel, now_ms, limit)
    }

    /// Like [`TenantStore::due`], from after the `(due, id)` position a
    /// previous page ended at: a caller that skips messages (paused, a busy
    /// domain) reads on instead of seeing the same ones again.
    pub fn due_after(
        &self,
        channel: Channel,
        now_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<(i64, u64)>> {
        self.outbox.due_after(channel, now_ms, after, limit)
    }

    /// When the next queued or deferred message on `channel` is due (unix ms).
    pub fn next_due(&self, channel: Channel) -> Result<Option<i64>> {
        self.outbox.next_due(channel)
    }

    /// Messages queued or deferred per channel.
    pub fn queued_count(&self, channel: Channel) -> usize {
        self.outbox.queued_count(channel)
    }

    /// Ids of messages marked sending: handed to a transport when the daemon
    /// last stopped, or now.
    pub fn in_flight(&self) -> Result<Vec<u64>> {
        self.outbox.in_flight()
    }

    /// Emails sent on `day`.
    pub fn sent_on(&self, day: Date) -> Result<u64> {
        self.outbox.sent_on(day)
    }

    pub fn ledger_entry(&self, month: u32, service: &str) -> Result<LedgerEntry> {
        self.outbox.ledger_entry(month, service)
    }

    /// Every ledger row, by month then service.
    pub fn ledger(&self) -> Result<Vec<(u32, String, LedgerEntry)>> {
        self.outbox.ledger()
    }

    /// Runs `f` on the outbox index, building it first (one scan of the
    /// outbox) if this is the first time since the store was opened.
    /// Its recipients' texts (name, postcode, city, email domain) are read
    /// from the dealer's data first: all of them after the data changed
    /// (an import, its rollback, a merge), else those new since.
    pub fn with_index<R>(&self, f: impl FnOnce(&OutboxIndex) -> R) -> Result<R> {
        let epoch = self.records.people_epoch();
        self.outbox.with_index_prepared(
            |ix| ix.refresh_people(epoch, |no| self.records.customer(no)),
            f,
        )
    }

    /// Like [`TenantStore::with_index`], without reading its recipients'
    /// texts first: for what looks at messages only (a listing without
    /// free text, the overview's digest), so that no customer is read.
    /// Their texts are read by the next [`TenantStore::with_index`].
    pub fn with_index_unnamed<R>(&self, f: impl FnOnce(&OutboxIndex) -> R) -> Result<R> {
        self.outbox.with_index_prepared(|_| Ok(()), f)
    }

    /// The outbox index, if built, taken out: for a store about to close
    /// (`Stores::keep_index`); a later look builds it again.
    pub(crate) fn take_index(&self) -> Option<OutboxIndex> {
        self.outbox.take_index()
    }

    /// Reserves `n` message ids; returns the first.
    pub fn reserve_message_ids(&self, n: u64) -> Result<u64> {
        self.outbox.reserve_message_ids(n)
    }

    pub fn plan_stamp(&self) -> Result<Option<u64>> {
        self.outbox.plan_stamp()
    }

    /// Writes one planning run durably, revisions first (a cancelled
    /// message frees its occasion keys, and a new message of the same run
    /// may take them again), in chunks of whole messages, the stamp with
    /// the last chunk.
    pub fn commit_plan(&self, w: &PlanWrite) -> Result<()> {
        self.outbox.commit_plan(w)
    }

    /// Writes a group of transitions and flushes once.
    pub fn apply(&self, changes: &[Change]) -> Result<()> {
        self.outbox.apply(changes)
    }

    /// Writes a group of transitions without flushing: the caller flushes
    /// (once for several groups) before anything outside relies on them.
    pub fn apply_unflushed(&self, changes: &[Change]) -> Result<()> {
        self.outbox.apply_unflushed(changes)
    }

    /// Writes a group of transitions in one transaction, all or none,
    /// without flushing (a group of moderate size: it is held in memory
    /// whole until it commits).
    pub fn apply_as_one(&self, changes: &[Change]) -> Result<()> {
        self.outbox.apply_as_one(changes)
    }
}

#[cfg(test)]
impl TenantStore {
    /// The dealer's data part, for tests that look at its trees.
    pub(super) fn records(&self) -> &Records {
        &self.records
    }

    /// Takes the handle out of service, as an I/O error does.
    pub(crate) fn mark_broken(&self, why: &str) {
        self.db.mark_broken(why)
    }
}
